"""The systemd unit: notify type with watchdog, restart on failure, runs the real CLI."""

from __future__ import annotations

import configparser
import re
import shlex
import subprocess

from edge_image.__main__ import build_parser
from tests.edge.helpers import REPO_ROOT

UNIT = REPO_ROOT / "edge_image" / "systemd" / "edge-image.service"


def test_unit_file_contract() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(UNIT.read_text())
    service = unit["Service"]
    assert service["Type"] == "notify" and service["NotifyAccess"] == "main"
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "2"  # bad config / refused bundle: no restart loop
    assert int(service["WatchdogSec"]) >= 10 and service["KillSignal"] == "SIGTERM"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    for key in ("ExecStartPre", "ExecStart"):
        argv = shlex.split(service[key])
        assert argv[1:3] == ["-m", "edge_image"]
        args = build_parser().parse_args(argv[3:])  # the unit's command line is one the CLI accepts
        assert args.config == "/etc/edge-image/config.yml"
    assert shlex.split(service["ExecStart"])[3] == "serve"
    assert "video" in service["SupplementaryGroups"] and "plugdev" in service["SupplementaryGroups"]


def test_unit_sandbox_rates_ok_with_systemd_analyze_security() -> None:
    """A compromised service (it parses camera frames and HTTP from the LAN) cannot write outside
    /var/lib/edge-image, reach devices other than cameras and USB, or gain capabilities:
    ``systemd-analyze security`` rates the unit at most 4.9 (8.6 "EXPOSED" before the sandbox)."""
    proc = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--threshold=49", "--no-pager", str(UNIT)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    match = re.search(r"Overall exposure level for edge-image\.service: (\d+\.\d+)", proc.stdout)
    assert match, proc.stdout[-2000:] + proc.stderr
    assert float(match.group(1)) <= 4.9 and proc.returncode == 0, proc.stdout[-3000:]
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(UNIT.read_text())
    service = unit["Service"]
    assert (service["ProtectSystem"], service["ReadWritePaths"]) == ("strict", "/var/lib/edge-image")
    assert service["DevicePolicy"] == "closed" and service["CapabilityBoundingSet"] == ""
    assert service["UMask"] == "0027"
