"""The darknet role's ARCH flags from a compute capability (tasks/arch.yml, no GPU needed when the
capability is given, as the CDK stack's GpuSm output gives it on AWS)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.ansible.runner import run_playbook

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


def _arch(tmp_path: Path, value: object):
    playbook = tmp_path / "arch.yml"
    playbook.write_text(PLAYBOOK, encoding="utf-8")
    extra = {"darknet_cuda_arch": value, "ansible_python_interpreter": sys.executable}
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
