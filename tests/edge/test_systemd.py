"""The systemd unit: notify type with watchdog, restart on failure, runs the real CLI."""

from __future__ import annotations

import configparser
import shlex

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
