"""The darknet role's ARCH flags from a compute capability (tasks/arch.yml, no GPU needed when the
capability is given, as the CDK stack's GpuSm output gives it on AWS), and its refusal of a CUDA that
cannot compile them (CUDA 13 with sm_70). ``nvcc --version`` comes from a stand-in CUDA home that
reports the release under test; the real toolkit is exercised by test_darknet_gpu.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.ansible.runner import REPO, run_playbook

PLAYBOOK = """\
- name: Compute darknet's ARCH flags with the role's tasks
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Run the darknet role's arch tasks
      ansible.builtin.include_role:
        name: darknet
        tasks_from: arch.yml
    - name: Print the result
      ansible.builtin.debug:
        msg: "ARCH={{ darknet_arch_flags }}"
"""


def fake_cuda_home(root: Path, release: str) -> Path:
    """A directory whose bin/nvcc prints ``release`` the way nvcc --version does."""
    home = root / f"cuda-{release}"
    (home / "bin").mkdir(parents=True, exist_ok=True)
    nvcc = home / "bin" / "nvcc"
    nvcc.write_text(
        "#!/bin/sh\necho 'nvcc: NVIDIA (R) Cuda compiler driver'\n"
        f"echo 'Cuda compilation tools, release {release}, V{release}.0'\n"
    )
    nvcc.chmod(0o755)
    return home


def _arch(tmp_path: Path, value: object, cuda: str = "12.3"):
    playbook = tmp_path / "arch.yml"
    playbook.write_text(PLAYBOOK, encoding="utf-8")
    extra = {
        "darknet_cuda_arch": value,
        "darknet_cuda_home": str(fake_cuda_home(tmp_path, cuda)),
        "ansible_python_interpreter": sys.executable,
    }
    return run_playbook(playbook, inventory="localhost,", tmp=tmp_path, extra_vars=extra, timeout=300)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7.0", "-gencode arch=compute_70,code=[sm_70,compute_70]"),  # V100 (p3), nvidia-smi style
        ("sm_75", "-gencode arch=compute_75,code=[sm_75,compute_75]"),  # T4, the stack's GpuSm output
        ("compute_86", "-gencode arch=compute_86,code=[sm_86,compute_86]"),
        (
            ["8.9", "89", "9.0"],
            "-gencode arch=compute_89,code=[sm_89,compute_89] "
            "-gencode arch=compute_90,code=[sm_90,compute_90]",
        ),
    ],
)
def test_arch_flags(tmp_path: Path, value: object, expected: str) -> None:
    run = _arch(tmp_path, value)
    assert run.returncode == 0, run.tail()
    line = next(x for x in run.output.splitlines() if '"msg": "ARCH=' in x)
    assert json.loads("{" + line.strip() + "}")["msg"] == f"ARCH={expected}"


@pytest.mark.parametrize("value", ["compute_30", "3.5", "sm_x"])
def test_old_or_bad_architectures_are_refused(tmp_path: Path, value: str) -> None:
    run = _arch(tmp_path, value)
    assert run.returncode != 0
    assert "compute_30, darknet's old default ARCH, is rejected by CUDA 11 and later" in run.output


@pytest.mark.parametrize(
    ("cuda", "value", "ok"),
    [
        ("13.0", "7.0", False),  # CUDA 13 dropped sm_70: the V100 needs a CUDA 12.x
        ("13.2", ["7.5", "8.9"], True),
        ("12.3", "7.0", True),  # the p3.2xlarge row of the GPU matrix
        ("11.8", "10.0", False),  # sm_100 is newer than CUDA 11.8
    ],
)
def test_cuda_that_cannot_compile_the_arch_is_refused(
    tmp_path: Path, cuda: str, value: object, ok: bool
) -> None:
    run = _arch(tmp_path, value, cuda=cuda)
    if ok:
        assert run.returncode == 0, run.tail()
        return
    assert run.returncode != 0
    assert f"CUDA {cuda} in {tmp_path}/cuda-{cuda} cannot compile" in run.output
    if cuda == "13.0":
        assert "cannot compile sm_70" in run.output and "CUDA 13 dropped sm_70 (V100)" in run.output


def test_role_cuda_ranges_match_the_gpu_matrix() -> None:
    """roles/darknet/vars/main.yml's table is the CDK matrix's CUDA_COMPUTE_RANGE."""
    import yaml

    from cdk.edgeyolo_cdk.gpu import CUDA_COMPUTE_RANGE

    role_vars = yaml.safe_load((REPO / "roles" / "darknet" / "vars" / "main.yml").read_text())
    table = {int(k): tuple(v) for k, v in role_vars["__darknet_cuda_compute_range"].items()}
    assert table == CUDA_COMPUTE_RANGE
