"""Static checks of the Ansible code: syntax-check, ansible-lint (production profile), pinned collections."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import yaml

from tests.ansible.runner import ANSIBLE_DIR, REPO, TRAINING_ROLES, VENV_BIN, ansible_env, run_playbook

TRAIN_YML = ANSIBLE_DIR / "train.yml"
LINT_ARGS = ("-c", "ansible/.ansible-lint", "--nocolor", "-f", "pep8", "ansible", "roles")


def _check_collections() -> ModuleType:
    """ansible/check_collections.py (a script: `import ansible...` would find Ansible itself)."""
    spec = importlib.util.spec_from_file_location("check_collections", ANSIBLE_DIR / "check_collections.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_playbook_syntax(tmp_path: Path) -> None:
    run = run_playbook(TRAIN_YML, inventory="localhost,", tmp=tmp_path, args=("--syntax-check",))
    assert run.returncode == 0, run.tail()
    assert "playbook: " in run.output


def test_train_playbook_lists_every_role_in_order(tmp_path: Path) -> None:
    run = run_playbook(TRAIN_YML, inventory="localhost,", tmp=tmp_path, args=("--list-tasks",))
    assert run.returncode == 0, run.tail()
    firsts = []
    for line in run.output.splitlines():
        role = line.strip().split(" : ", 1)[0] if " : " in line else None
        if role and (not firsts or firsts[-1] != role):
            firsts.append(role)
    assert tuple(firsts) == TRAINING_ROLES


def test_ansible_lint_production_profile(tmp_path: Path) -> None:
    """ansible-lint over ansible/ and roles/ (train and edge playbooks, inventories, every role)."""
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-lint"), *LINT_ARGS],
        cwd=REPO,
        env=ansible_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    assert "Profile 'production' was required, and it passed" in output


def test_inventories_parse(tmp_path: Path) -> None:
    """The local inventory puts localhost in `training`; the aws one is a valid aws_ec2 plugin config."""
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-inventory"), "-i", "ansible/inventories/local", "--graph", "training"],
        cwd=REPO,
        env=ansible_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "|--localhost" in proc.stdout
    aws = yaml.safe_load((ANSIBLE_DIR / "inventories/aws/aws_ec2.yml").read_text(encoding="utf-8"))
    assert aws["plugin"] == "amazon.aws.aws_ec2"
    assert aws["filters"]["tag:Project"] == "edgeyolo"
    assert aws["filters"]["tag:Role"] == "training-host"
    assert "EDGEYOLO_STAGE" in aws["filters"]["tag:Stage"]
    assert aws["groups"] == {"training": True}


def test_pinned_collections_are_the_bundled_ones() -> None:
    proc = subprocess.run(
        [sys.executable, str(ANSIBLE_DIR / "check_collections.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [
        "ok amazon.aws 10.1.2",
        "ok ansible.posix 2.1.0",
        "ok community.aws 10.0.0",
        "ok community.general 11.4.2",
    ]


def test_collection_check_reports_a_wrong_pin(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.yml"
    requirements.write_text("collections:\n  - name: amazon.aws\n    version: 9.0.0\n", encoding="utf-8")
    check = _check_collections()
    installed = check.installed_collections({"/site": {"amazon.aws": {"version": "10.1.2"}}})
    lines = check.compare(check.read_pins(requirements), installed)
    assert lines == ["error: amazon.aws: pinned 9.0.0, installed 10.1.2"]
