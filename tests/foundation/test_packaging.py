"""pyproject.toml declares what each part needs (extras) and the two commands (scripts); the edge
role installs the extras' pins from there, so a pin lives in requirements.txt and pyproject only,
and this test keeps those two in step."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"


def _project() -> dict:
    with PYPROJECT.open("rb") as handle:
        return tomllib.load(handle)["project"]


def _requirements() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line)
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def test_every_extra_is_pinned_as_in_requirements_txt() -> None:
    pins = _requirements()
    extras = _project()["optional-dependencies"]
    assert {"edge", "mqtt", "openvino", "train", "cdk"} <= set(extras)
    for name, requirements in extras.items():
        assert requirements, name
        for requirement in requirements:
            package, _, version = requirement.partition("==")
            assert version, f"[{name}] {requirement}: not pinned"
            assert pins.get(package.lower().replace("_", "-")) == version, f"[{name}] {requirement}"


def test_the_scripts_resolve_to_the_command_line_entry_points() -> None:
    scripts = _project()["scripts"]
    assert set(scripts) == {"edge-image", "edgeyolo"}
    for target in scripts.values():
        module, _, function = target.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), target


def _read_extras(*names: str) -> subprocess.CompletedProcess[str]:
    snippet = yaml.safe_load((ROOT / "roles" / "edge_service" / "vars" / "main.yml").read_text())[
        "__edge_service_read_extras"
    ]
    return subprocess.run(
        [sys.executable, "-c", snippet, str(PYPROJECT), ",".join(names)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_the_edge_role_reads_its_pip_layer_from_the_extras() -> None:
    defaults = yaml.safe_load((ROOT / "roles" / "edge_service" / "defaults" / "main.yml").read_text())
    assert defaults["edge_service_pip_extras"] == ["edge"] and defaults["edge_service_pip_packages"] == []
    out = _read_extras("edge", "mqtt")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [*_project()["optional-dependencies"]["edge"], "paho-mqtt==2.2.0"]
    local = yaml.safe_load((ROOT / "ansible" / "inventories" / "group_vars" / "edge_local.yml").read_text())
    assert _read_extras(*local["edge_service_pip_extras"]).returncode == 0


def test_an_unknown_extra_is_a_one_line_error() -> None:
    out = _read_extras("edge", "tpu")
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        f"{PYPROJECT}: no extra 'tpu' (has: cdk, edge, mqtt, openvino, train)"
    ]
