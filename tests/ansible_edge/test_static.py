"""Static checks of ansible/edge.yml and the edge roles: lint, syntax, argument specs,
READMEs, inventories, pins. No host is touched (argument validation fails before any task)."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from tests.ansible_edge.helpers import (
    BIN,
    EDGE_PLAYBOOK,
    PLAYBOOKS,
    REPO,
    ROLES,
    run_playbook,
    write_inventory,
)

INVENTORIES = REPO / "ansible" / "inventories"


def _load(path):  # type: ignore[no-untyped-def]
    return yaml.safe_load(path.read_text())


def _ansible_env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env.update(ANSIBLE_CONFIG=str(REPO / "ansible" / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.mark.slow
def test_ansible_lint_production_profile() -> None:
    targets = [str(EDGE_PLAYBOOK)] + [str(REPO / "roles" / role) for role in ROLES]
    proc = subprocess.run(
        [str(BIN / "ansible-lint"), "--profile", "production", "--nocolor", *targets],
        cwd=REPO,
        env=_ansible_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "Passed" in proc.stdout + proc.stderr


@pytest.mark.parametrize("inventory", ["edge-local.yml", "pis.example.yml"])
def test_syntax_check(inventory: str) -> None:
    proc = subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "--syntax-check",
            "-i",
            str(INVENTORIES / inventory),
            str(EDGE_PLAYBOOK),
        ],
        cwd=REPO,
        env=_ansible_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "playbook: " in proc.stdout


def test_playbook_is_a_rolling_deploy_to_pis() -> None:
    (play,) = _load(EDGE_PLAYBOOK)
    assert play["hosts"] == "pis"
    assert "edge_serial" in play["serial"] and "[1, '25%']" in play["serial"]
    assert "edge_max_fail_percentage" in play["max_fail_percentage"]
    roles = [task["ansible.builtin.include_role"]["name"] for task in play["tasks"]]
    assert roles == ["edge_base", "ncsdk", "openvino_runtime", "edge_service"]


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_mirror_defaults_and_readme(role: str) -> None:
    root = REPO / "roles" / role
    defaults = _load(root / "defaults" / "main.yml")
    spec = _load(root / "meta" / "argument_specs.yml")["argument_specs"]["main"]
    options = spec["options"]
    assert spec["short_description"] and spec["description"]
    assert set(options) == set(defaults), set(options) ^ set(defaults)
    readme = (root / "README.md").read_text()
    assert "## Role Variables" in readme
    variables = readme.split("## Role Variables", 1)[1]
    for name, option in options.items():
        assert name.startswith(f"{role}_"), f"{name} is not prefixed with the role name"
        assert option.get("description"), f"{role}: {name} has no description"
        if "default" in option:
            assert option["default"] == defaults[name], (
                f"{role}: {name} default differs from defaults/main.yml"
            )
        else:
            # Computed defaults stay out of the spec: Ansible templates the spec itself, so a
            # template there would break validation of the very variables it depends on.
            assert "{{" in str(defaults[name]), f"{role}: {name} has no default in meta/argument_specs.yml"
        assert f"`{name}`" in variables, f"{role}/README.md does not document {name}"
    meta = _load(root / "meta" / "main.yml")["galaxy_info"]
    assert meta["role_name"] == role
    assert (root / "tasks" / "main.yml").is_file()
    setups = [p.name for p in (root / "tasks").glob("setup-*.yml")]
    assert setups == ["setup-Debian.yml"], setups


@pytest.mark.parametrize(
    ("role", "bad", "message"),
    [
        ("ncsdk", {"ncsdk_api_version": 3}, "ncsdk_api_version must be one of: 1, 2"),
        ("edge_service", {"edge_service_model_source": "ftp"}, "edge_service_model_source must be one of"),
        ("edge_base", {"edge_base_raspberry_pi": "maybe"}, "edge_base_raspberry_pi must be one of"),
        ("openvino_runtime", {"openvino_runtime_verify": "perhaps"}, "openvino_runtime_verify"),
    ],
)
def test_argument_validation_rejects_bad_values(tmp_path, role: str, bad: dict, message: str) -> None:  # type: ignore[no-untyped-def]
    inventory = write_inventory(
        tmp_path / "hosts.yml", {"localhost": {"ansible_connection": "local"}}, group="all_nodes"
    )
    run = run_playbook(PLAYBOOKS / "argspec.yml", inventory, extra_vars={"role_under_test": role, **bad})
    assert run.returncode != 0
    assert "Validating arguments against arg spec" in run.output
    assert message in run.output, run.output[-3000:]
    assert run.counts("localhost")["failed"] == 1


def _inventory(path) -> dict:  # type: ignore[no-untyped-def]
    proc = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(path), "--list"],
        cwd=REPO,
        env=_ansible_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout)


def test_example_inventory_gets_fleet_group_vars() -> None:
    inv = _inventory(INVENTORIES / "pis.example.yml")
    hosts = inv["pis"]["hosts"]
    assert hosts == ["pi-kitchen", "pi-garage"]
    kitchen = inv["_meta"]["hostvars"]["pi-kitchen"]
    garage = inv["_meta"]["hostvars"]["pi-garage"]
    assert kitchen["edge_use_ncsdk"] is True and kitchen["edge_service_model_source"] == "s3"
    assert garage["edge_use_openvino"] is True and garage["edge_service_backend"]["device"] == "MYRIAD"
    ignored = (REPO / ".gitignore").read_text().splitlines()
    assert "ansible/inventories/pis.yml" in ignored


def test_local_inventory_puts_localhost_in_pis() -> None:
    inv = _inventory(INVENTORIES / "edge-local.yml")
    assert inv["edge_local"]["hosts"] == ["localhost"]
    assert "edge_local" in inv["pis"]["children"]
    local = inv["_meta"]["hostvars"]["localhost"]
    assert local["ansible_connection"] == "local"
    assert local["edge_use_ncsdk"] is False and local["edge_base_camera_enabled"] is False
    assert local["edge_service_model_source"] == "local"
    assert local["edge_service_source"]["kind"] == "video"


def test_make_edge_runs_the_playbook() -> None:
    proc = subprocess.run(["make", "-n", "edge"], cwd=REPO, capture_output=True, text=True, check=True)
    assert "ansible-playbook -i ansible/inventories/edge-local.yml ansible/edge.yml" in proc.stdout
