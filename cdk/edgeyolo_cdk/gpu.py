"""Training instance types the stacks accept and the GPU each one carries.

The compute capability is what the darknet role needs to build with the right ``ARCH`` flags
(``-gencode arch=compute_70,code=[sm_70,compute_70]``); values from NVIDIA's CUDA GPU table, as listed
in docs/reference (V100 7.0, T4 7.5, A10G 8.6, L4 8.9).

>>> GPU_BY_INSTANCE_TYPE["g4dn.xlarge"].sm
'sm_75'
"""

from __future__ import annotations

from dataclasses import dataclass


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


V100 = GpuInfo("V100", "7.0")
T4 = GpuInfo("T4", "7.5")
A10G = GpuInfo("A10G", "8.6")
L4 = GpuInfo("L4", "8.9")

# Single-GPU sizes only: pjreddie darknet trains on one GPU (``-gpus`` splits batches but gains little
# for Tiny-YOLOv2), so bigger sizes would only cost more.
GPU_BY_INSTANCE_TYPE: dict[str, GpuInfo] = {
    "p3.2xlarge": V100,
    "g4dn.xlarge": T4,
    "g4dn.2xlarge": T4,
    "g5.xlarge": A10G,
    "g5.2xlarge": A10G,
    "g6.xlarge": L4,
    "g6.2xlarge": L4,
}

DEFAULT_INSTANCE_TYPE = "p3.2xlarge"
