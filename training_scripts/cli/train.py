"""``python -m training_scripts train``: train a darknet model with real darknet, in segments.

Runs ``darknet detector train`` as a subprocess from the newest checkpoint in ``--backup``
(or from ``--weights`` when there is none), one segment of ``--segment`` iterations at a
time, renaming each segment's final weights to ``BACKUP/<cfg name>_<iteration>.weights``.
Writes ``BACKUP/metrics.csv`` (one row per iteration), ``BACKUP/loss.png`` and
``BACKUP/darknet.log``; stops with an error on a NaN loss and cleanly at ``--max-minutes``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` command."""
    parser = subparsers.add_parser("train", help="train with real darknet (resumable)", description=__doc__)
    parser.add_argument("--data", required=True, type=Path, help="prepared dataset dir or its obj.data")
    parser.add_argument("--cfg", required=True, type=Path, help="darknet cfg (from the `cfg` command)")
    parser.add_argument(
        "--weights", required=True, help="initial weights (e.g. from `partial`), or 'none' for random init"
    )
    parser.add_argument(
        "--backup", required=True, type=Path, help="checkpoint directory (resumed if not empty)"
    )
    parser.add_argument(
        "--darknet",
        default=None,
        help="darknet binary (default: $DARKNET_BIN, then .cache/darknet/darknet, then PATH)",
    )
    parser.add_argument("--max-minutes", type=float, default=None, help="stop cleanly before this wall time")
    parser.add_argument(
        "--segment",
        type=int,
        default=1000,
        help="iterations per darknet run = checkpoint cadence (default 1000)",
    )
    parser.add_argument("--gpus", default=None, help="darknet -gpus list, e.g. 0 or 0,1 (GPU builds only)")
    parser.add_argument(
        "--flavor",
        choices=("auto", "pjreddie", "alexeyab"),
        default="auto",
        help="darknet fork (auto-detected)",
    )
    parser.add_argument("--progress-every", type=float, default=5.0, help="seconds between progress lines")
    parser.set_defaults(func=run)


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # the driver stops darknet; checkpoints already saved stay usable


def run(args: argparse.Namespace) -> int:
    """Train; print where the checkpoints are. SIGTERM stops like Ctrl-C."""
    import signal

    from edge_image.contract.errors import UserError
    from training_scripts.training.driver import TrainOptions, resolve_darknet, train

    signal.signal(signal.SIGTERM, _stop)

    if args.max_minutes is not None and args.max_minutes <= 0:
        raise UserError(f"--max-minutes must be positive, got {args.max_minutes}")
    weights = None if args.weights.lower() == "none" else Path(args.weights)
    result = train(
        TrainOptions(
            data=args.data,
            cfg=args.cfg,
            init_weights=weights,
            backup=args.backup,
            darknet=resolve_darknet(args.darknet),
            max_minutes=args.max_minutes,
            segment=args.segment,
            gpus=args.gpus,
            flavor=args.flavor,
            progress_interval=args.progress_every,
        )
    )
    print(
        f"checkpoints: {len(result.checkpoints)} in {result.backup} "
        f"(newest iteration {result.last_iteration})"
    )
    print(f"metrics: {result.metrics_csv}")
    if result.loss_png:
        print(f"loss curve: {result.loss_png}")
    return 0
