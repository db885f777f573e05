"""Run ansible-playbook / ansible-lint from the project's virtualenv for the Ansible tests.

``run_playbook(playbook, inventory, extra_vars)`` -> :class:`PlaybookRun` with the return code,
the full output and the PLAY RECAP counters per host (``{"localhost": {"ok": 12, "changed": 0,
...}}``). The environment points Ansible at ``ansible/ansible.cfg`` and keeps its temporary
files inside the test's directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from training_scripts.emulation.playbook import PlaybookRun, parse_recap

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_DIR = REPO / "ansible"
ROLES_DIR = REPO / "roles"
VENV_BIN = Path(sys.executable).parent

# The roles of the training playbook (issue 7); the edge roles are tested with edge.yml.
TRAINING_ROLES: tuple[str, ...] = (
    "training_tools",
    "darknet",
    "darkflow",
    "dataset",
    "train",
    "evaluate",
    "export",
    "publish",
)


def ansible_env(tmp: Path) -> dict[str, str]:
    """Environment for ansible commands: our ansible.cfg, the venv first on PATH, private temp dirs."""
    env = dict(os.environ)
    env.update(
        {
            "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"),
            "ANSIBLE_LOCAL_TEMP": str(tmp / "ansible-local"),
            "ANSIBLE_REMOTE_TEMP": str(tmp / "ansible-remote"),
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_NOCOLOR": "1",
            "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        }
    )
    return env


def run_playbook(
    playbook: Path,
    *,
    inventory: str,
    tmp: Path,
    extra_vars: dict[str, object] | None = None,
    args: tuple[str, ...] = (),
    timeout: float = 900,
) -> PlaybookRun:
    """Run ``ansible-playbook`` and return its code, output and recap (never raises on failure)."""
    command = [str(VENV_BIN / "ansible-playbook"), "-i", inventory, str(playbook), *args]
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]
    proc = subprocess.run(
        command,
        cwd=REPO,
        env=ansible_env(tmp),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = proc.stdout + proc.stderr
    return PlaybookRun(proc.returncode, output, parse_recap(proc.stdout))
