"""The GPU compatibility matrix: instance type → GPU → SM → driver branch → DLAMI → CUDA darknet builds with.

One table (``MATRIX``) is the only place these facts live: the stacks take the AMI and the stack outputs
(``GpuSm``, ``CudaHome``) from it, the darknet role takes ``ARCH`` and the CUDA path from those outputs,
and ``cdk/README.md``'s matrix is rendered from it (``render_markdown``; a test keeps them equal).

Sources (AWS DLAMI developer guide release notes, read 2026-12-02, and NVIDIA's documentation):

- "Deep Learning Base OSS Nvidia Driver GPU AMI" (Ubuntu 22.04 / Amazon Linux 2023), 2026 releases
  (e.g. the AL2023 20260519 and 20260901 notes): driver 595.x, CUDA stack 12.8, 12.9, 13.0, 13.2
  (default 13.2), supported instances G4dn, G5, G6, Gr6, G6e, P4d, P4de, P5, ... and no P3. The "OSS"
  driver is NVIDIA's open GPU kernel module, which supports Turing (sm_75) and newer only.
- "Deep Learning Base Proprietary Nvidia Driver AMI (Amazon Linux 2)": Version 71.6 (2026-01-02) lists
  G3, P3, P3dn, Inf1 with driver 570.195.03 and CUDA 12.1, 12.2, 12.3; Version 73.1 (2026-06-05) lists
  G3, P4d, Inf1: P3 is gone. 71.6 is therefore the last DLAMI for a V100, found by its exact name and
  owner ``amazon`` (``cdk.ami`` resolves it at deploy time; no lookup at synth).
- NVIDIA: R580 is the last driver branch for Volta; CUDA 13 removed sm_70 (and everything below
  sm_75) from nvcc; CUDA 12.x compiles sm_50 through sm_90 (12.8+: sm_100, sm_120).

>>> ROW_BY_INSTANCE_TYPE["p3.2xlarge"].cuda_home
'/usr/local/cuda-12.3'
>>> GPU_BY_INSTANCE_TYPE["g4dn.xlarge"].sm
'sm_75'
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_image.contract.errors import UserError


@dataclass(frozen=True)
class GpuInfo:
    """One GPU model: ``name`` (e.g. "V100"), ``compute`` capability as "major.minor"."""

    name: str
    compute: str

    @property
    def sm(self) -> str:
        """The nvcc real-architecture name, e.g. "7.0" -> "sm_70"."""
        return "sm_" + self.compute.replace(".", "")

    @property
    def compute_arch(self) -> str:
        """The nvcc virtual-architecture name, e.g. "7.0" -> "compute_70"."""
        return "compute_" + self.compute.replace(".", "")

    @property
    def compute_int(self) -> int:
        """70 for "7.0"."""
        return int(self.compute.replace(".", ""))


V100 = GpuInfo("V100", "7.0")
T4 = GpuInfo("T4", "7.5")
A10G = GpuInfo("A10G", "8.6")
L4 = GpuInfo("L4", "8.9")
L40S = GpuInfo("L40S", "8.9")


@dataclass(frozen=True)
class DriverBranch:
    """An NVIDIA driver branch: the newest CUDA it runs and the oldest GPU it still drives."""

    name: str
    max_cuda: str
    min_compute: int


R570 = DriverBranch("R570", max_cuda="12.8", min_compute=50)
R580 = DriverBranch("R580", max_cuda="13.0", min_compute=50)  # the last branch with Maxwell..Volta
R595 = DriverBranch("R595", max_cuda="13.2", min_compute=75)
# NVIDIA's open GPU kernel module (the DLAMIs' "OSS" driver) drives Turing and newer only.
OPEN_MODULE_MIN_COMPUTE = 75


@dataclass(frozen=True)
class Dlami:
    """How the stack finds the AMI: an SSM public parameter (resolved by CloudFormation) or, where no
    parameter points at a usable release, an exact image name and owner (resolved by ``cdk.ami``)."""

    title: str
    os: str
    root_device: str
    ssm_parameter: str | None = None
    image_name: str | None = None
    owner: str = "amazon"
    checked: str = "2026-12-02"


UBUNTU_OSS = Dlami(
    title="Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04), latest",
    os="Ubuntu 22.04",
    root_device="/dev/sda1",
    ssm_parameter="/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id",
)
AL2_PROPRIETARY_71_6 = Dlami(
    title="Deep Learning Base Proprietary Nvidia Driver AMI (Amazon Linux 2) Version 71.6",
    os="Amazon Linux 2",
    root_device="/dev/xvda",
    image_name="Deep Learning Base Proprietary Nvidia Driver AMI (Amazon Linux 2) Version 71.6*",
)

# Oldest and newest compute capability each CUDA major compiles (nvcc --list-gpu-arch).
CUDA_COMPUTE_RANGE: dict[int, tuple[int, int]] = {11: (35, 90), 12: (50, 120), 13: (75, 121)}


@dataclass(frozen=True)
class MatrixRow:
    """One allowed training instance type and everything that must agree with it."""

    instance_type: str
    gpu: GpuInfo
    driver: DriverBranch
    dlami: Dlami
    cuda: str  # the CUDA under /usr/local/cuda-<cuda> that darknet is built with

    @property
    def cuda_home(self) -> str:
        return f"/usr/local/cuda-{self.cuda}"


# Single-GPU sizes only: darknet trains Tiny-YOLOv2 on one GPU, so bigger sizes would only cost more.
MATRIX: tuple[MatrixRow, ...] = (
    MatrixRow(instance_type="p3.2xlarge", gpu=V100, driver=R570, dlami=AL2_PROPRIETARY_71_6, cuda="12.3"),
    MatrixRow(instance_type="g4dn.xlarge", gpu=T4, driver=R595, dlami=UBUNTU_OSS, cuda="12.9"),
    MatrixRow(instance_type="g4dn.2xlarge", gpu=T4, driver=R595, dlami=UBUNTU_OSS, cuda="12.9"),
    MatrixRow(instance_type="g5.xlarge", gpu=A10G, driver=R595, dlami=UBUNTU_OSS, cuda="12.9"),
    MatrixRow(instance_type="g5.2xlarge", gpu=A10G, driver=R595, dlami=UBUNTU_OSS, cuda="12.9"),
    MatrixRow(instance_type="g6.xlarge", gpu=L4, driver=R595, dlami=UBUNTU_OSS, cuda="12.9"),
    MatrixRow(instance_type="g6.2xlarge", gpu=L4, driver=R595, dlami=UBUNTU_OSS, cuda="12.9"),
    MatrixRow(instance_type="g6e.xlarge", gpu=L40S, driver=R595, dlami=UBUNTU_OSS, cuda="12.9"),
)
ROW_BY_INSTANCE_TYPE: dict[str, MatrixRow] = {row.instance_type: row for row in MATRIX}
GPU_BY_INSTANCE_TYPE: dict[str, GpuInfo] = {row.instance_type: row.gpu for row in MATRIX}
DEFAULT_INSTANCE_TYPE = "p3.2xlarge"


def _version(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


def working_choice(row: MatrixRow) -> str:
    """'instanceType=p3.2xlarge with its default AMI and cudaVersion=12.3' (for error messages)."""
    return f"instanceType={row.instance_type} with its default AMI and cudaVersion={row.cuda}"


def check_combination(
    row: MatrixRow, *, ami_ssm_parameter: str | None = None, cuda: str | None = None
) -> None:
    """Refuse a combination the matrix says cannot work; the UserError names a working choice.

    ``ami_ssm_parameter``: a user override of the AMI; ``cuda``: a user override of the CUDA version.
    """
    gpu = row.gpu
    oss = bool(ami_ssm_parameter) and "oss-nvidia-driver" in (ami_ssm_parameter or "")
    if oss and gpu.compute_int < OPEN_MODULE_MIN_COMPUTE:
        raise UserError(
            f"amiSsmParameter: the OSS-driver DLAMIs use NVIDIA's open kernel module, which cannot drive "
            f"a {gpu.name} ({gpu.sm}); use {working_choice(row)} ({row.dlami.title})"
        )
    if cuda is None:
        return
    major, minor = _version(cuda)
    lo, hi = CUDA_COMPUTE_RANGE.get(major, (0, -1))
    if not lo <= gpu.compute_int <= hi:
        raise UserError(
            f"cudaVersion: CUDA {cuda} cannot compile {gpu.sm} ({gpu.name}); use {working_choice(row)}"
        )
    if (major, minor) > _version(row.driver.max_cuda):
        raise UserError(
            f"cudaVersion: CUDA {cuda} needs a newer driver than {row.driver.name} (runs CUDA <= "
            f"{row.driver.max_cuda}) on {row.dlami.title}; use {working_choice(row)}"
        )


def render_markdown() -> str:
    """The matrix as the Markdown table in cdk/README.md (between the ``gpu-matrix`` markers)."""
    lines = [
        "| Instance type | GPU | SM | Driver branch | DLAMI (how it is found) | OS "
        "| CUDA darknet builds with |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in MATRIX:
        d = row.dlami
        how = f"SSM `{d.ssm_parameter}`" if d.ssm_parameter else f"name `{d.image_name}`, owner `{d.owner}`"
        lines.append(
            f"| `{row.instance_type}` | {row.gpu.name} | {row.gpu.sm} | {row.driver.name} "
            f"| {d.title} ({how}) | {d.os} | {row.cuda} (`{row.cuda_home}`) |"
        )
    return "\n".join(lines) + "\n"
