"""``python -m training_scripts select``: choose the best checkpoint on the validation list.

Evaluates every ``<cfg name>_<iteration>.weights`` in ``--backup`` on ``valid``, picks the
highest mAP@0.5 (ties: F1, then the later iteration), evaluates only that one on ``test``,
and writes ``selection.json`` and ``map_by_iteration.png`` into ``--out`` (default: the
backup directory).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``select`` command."""
    parser = subparsers.add_parser(
        "select", help="pick the best checkpoint by validation mAP", description=__doc__
    )
    parser.add_argument("--data", required=True, type=Path, help="prepared dataset dir or its obj.data")
    parser.add_argument(
        "--cfg", required=True, type=Path, help="darknet cfg the checkpoints were trained with"
    )
    parser.add_argument("--backup", required=True, type=Path, help="checkpoint directory of `train`")
    parser.add_argument("--out", type=Path, default=None, help="output directory (default: --backup)")
    parser.add_argument(
        "--thresh", type=float, default=0.25, help="confidence threshold for F1 (default .25)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Select and print the winner."""
    from training_scripts.evaluation.select import select

    chosen = select(args.data, args.cfg, args.backup, args.out, conf_thresh=args.thresh)
    test = chosen.test.evaluation if chosen.test else None
    print(f"selected: {chosen.best.weights} (iteration {chosen.best.iteration})")
    print(
        f"valid mAP@0.5 = {chosen.best.map:.4f} (11-point {chosen.best.map11:.4f}), F1 = {chosen.best.f1:.4f}"
    )
    if test is not None:
        print(f"test mAP@0.5 = {test.map:.4f} (11-point {test.map11:.4f})")
    print(f"wrote {chosen.selection_json} and {chosen.map_png}")
    return 0
