"""Role layout and documentation: argument_specs, role-prefixed defaults, README "Role Variables"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from tests.ansible.runner import ROLES_DIR, TRAINING_ROLES

ALL_ROLES = sorted(p.name for p in ROLES_DIR.iterdir() if (p / "tasks" / "main.yml").is_file())


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _options(role: str) -> dict[str, dict[str, Any]]:
    return _yaml(ROLES_DIR / role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]


def _defaults(role: str) -> dict[str, Any]:
    return _yaml(ROLES_DIR / role / "defaults" / "main.yml") or {}


def test_the_training_roles_exist() -> None:
    assert set(TRAINING_ROLES) <= set(ALL_ROLES)


@pytest.mark.parametrize("role", ALL_ROLES)
def test_argument_specs_are_valid(role: str) -> None:
    """Every role: a main entry point whose options have a type and a description, and which
    ansible's own validator accepts as an argument spec."""
    specs = _yaml(ROLES_DIR / role / "meta" / "argument_specs.yml")["argument_specs"]
    assert "main" in specs
    for entry, spec in specs.items():
        assert spec.get("short_description"), f"{role}:{entry} lacks short_description"
        for name, option in spec.get("options", {}).items():
            assert option.get("type"), f"{role}:{entry}:{name} lacks a type"
            assert option.get("description"), f"{role}:{entry}:{name} lacks a description"
        argument_spec = {
            name: {k: v for k, v in option.items() if k != "description"}
            for name, option in spec.get("options", {}).items()
        }
        result = ArgumentSpecValidator(argument_spec).validate({})
        unexpected = [m for m in result.error_messages if "missing required" not in m]
        assert not unexpected, f"{role}:{entry}: {unexpected}"
    meta = _yaml(ROLES_DIR / role / "meta" / "main.yml")
    assert meta["galaxy_info"]["role_name"] == role


@pytest.mark.parametrize("role", TRAINING_ROLES)
def test_defaults_match_argument_specs(role: str) -> None:
    """The spec documents exactly the defaults; literal defaults pass the spec's types and choices,
    and a default stated in the spec is the one in defaults/main.yml."""
    defaults, options = _defaults(role), _options(role)
    assert set(defaults) == set(options)
    assert all(name.startswith(f"{role}_") for name in defaults)
    literal = {k: v for k, v in defaults.items() if not (isinstance(v, str) and "{{" in v)}
    spec = {name: {k: v for k, v in o.items() if k not in ("description",)} for name, o in options.items()}
    result = ArgumentSpecValidator(spec).validate(literal)
    assert not result.error_messages, result.error_messages
    for name, option in options.items():
        if "default" in option:
            assert option["default"] == defaults[name], name


@pytest.mark.parametrize("role", TRAINING_ROLES)
def test_readme_documents_every_variable(role: str) -> None:
    readme = (ROLES_DIR / role / "README.md").read_text(encoding="utf-8")
    assert "## Role Variables" in readme
    section = readme.split("## Role Variables", 1)[1].split("\n## ", 1)[0]
    missing = [name for name in _defaults(role) if f"`{name}`" not in section and f"{name}:" not in section]
    assert not missing, f"{role}/README.md Role Variables lacks {missing}"


@pytest.mark.parametrize("role", TRAINING_ROLES)
def test_os_specific_setup_files_exist(role: str) -> None:
    """Roles that include setup-<os_family>.yml ship the Debian one (Ubuntu and Debian hosts)."""
    tasks = ROLES_DIR / role / "tasks"
    text = "\n".join(p.read_text(encoding="utf-8") for p in tasks.glob("*.yml"))
    if "setup-{{ ansible_facts['os_family'] }}.yml" in text:
        assert (tasks / "setup-Debian.yml").is_file()
