"""training_tools picks a Python the pinned requirements install on.

numpy 2.4 and TensorFlow 2.21 need Python >= 3.11; the Deep Learning AMI (Ubuntu 22.04) has 3.10.
The role's python.yml chooses ``training_tools_python`` when it is new enough, else the fallback
(``python3.11``, which setup-Debian.yml installs from the distribution).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.ansible.runner import run_playbook

PLAYBOOK = """\
- name: Choose the virtualenv interpreter
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Run the role's interpreter choice
      ansible.builtin.include_role:
        name: training_tools
        tasks_from: python.yml
    - name: Show it
      ansible.builtin.debug:
        msg: "CHOSEN={{ training_tools_venv_interpreter }}"
"""


def _fake_python(path: Path, version: str) -> Path:
    path.write_text(f"#!/bin/sh\necho {version}\n", encoding="utf-8")
    path.chmod(0o755)
    return path


@pytest.mark.parametrize(
    ("version", "expect_fallback"), [("3.10", True), ("3.9", True), ("3.11", False), ("3.12", False)]
)
def test_old_python_falls_back_to_python311(tmp_path: Path, version: str, expect_fallback: bool) -> None:
    fake = _fake_python(tmp_path / f"python{version}", version)
    playbook = tmp_path / "choose.yml"
    playbook.write_text(PLAYBOOK, encoding="utf-8")
    run = run_playbook(
        playbook, inventory="localhost,", tmp=tmp_path,
        extra_vars={"ansible_python_interpreter": sys.executable, "training_tools_python": str(fake)},
        timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.tail()
    chosen = "python3.11" if expect_fallback else str(fake)
    assert f'"msg": "CHOSEN={chosen}"' in run.output, run.tail()
