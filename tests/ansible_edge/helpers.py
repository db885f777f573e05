"""Running ansible-playbook from the tests: :mod:`training_scripts.emulation.playbook` (one place for
the runner and the PLAY RECAP parser), plus the tests' own playbooks."""

from __future__ import annotations

from pathlib import Path

from training_scripts.emulation.playbook import (
    BIN,
    EDGE_PLAYBOOK,
    REPO,
    PlaybookRun,
    parse_recap,
    run_playbook,
    write_inventory,
)

PLAYBOOKS = Path(__file__).resolve().parent / "playbooks"
ROLES = ("edge_base", "ncsdk", "openvino_runtime", "edge_service")

__all__ = [
    "BIN",
    "EDGE_PLAYBOOK",
    "PLAYBOOKS",
    "REPO",
    "ROLES",
    "PlaybookRun",
    "parse_recap",
    "run_playbook",
    "write_inventory",
]
