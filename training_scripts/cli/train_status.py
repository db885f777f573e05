"""``train-status``: where a run of the train role stands (:mod:`training_scripts.training.status`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edge_image.contract.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``train-status`` to the command parsers."""
    p = sub.add_parser(
        "train-status",
        help="iteration, loss, speed and ETA of a training run of the train role",
        description="Report a run directory made by the train role (run.json, metrics.csv, checkpoints, "
        "loss.png, train.done): a few lines, or with --json one object for the play's wait loop. "
        "state is complete, failed (the systemd unit failed), running, pending or stopped.",
    )
    p.add_argument(
        "--run", type=Path, required=True, help="run directory (the role passes its `current` link)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the status; exit 2 (one line) when ``--run`` is not a run directory."""
    from training_scripts.training.status import format_text, run_status

    if not (args.run / "run.json").is_file():
        raise UserError(f"{args.run}: no run.json (not a run directory of the train role)")
    status = run_status(args.run.resolve())
    print(json.dumps(status, sort_keys=True) if args.json else format_text(status))
    return 0
