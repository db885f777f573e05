"""``bench``: the system benchmark of issue 10 (see :mod:`training_scripts.bench`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bench`` to the command parsers."""
    p = sub.add_parser(
        "bench",
        help="one-run benchmark table: sgemm, export, edge FPS vs darknet, decode, evaluation",
        description="Measure this machine on the 416x416 Tiny-YOLOv2 of the reference workload; "
        "writes OUT/bench.md, OUT/bench.json and OUT/edge.png.",
    )
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--classes", type=int, default=27, help="classes (default 27: filters=160)")
    p.add_argument("--size", type=int, default=416, help="network input size (default 416)")
    p.add_argument("--images", type=int, default=120, help="synthetic images (20%% become the test list)")
    p.add_argument("--frames", type=int, default=20, help="video frames timed per edge backend")
    p.add_argument(
        "--darknet", default=None, help="darknet binary (default $DARKNET_BIN or .cache); 'none' skips"
    )
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print the table."""
    from edge_image.contract.errors import UserError
    from training_scripts.bench import run as run_bench

    for flag in ("classes", "images", "frames"):
        if getattr(args, flag) < 1:
            raise UserError(f"--{flag}: must be at least 1")
    if args.size % 32:
        raise UserError(f"--size: must be a multiple of 32, got {args.size}")
    result = run_bench(
        args.out,
        classes=args.classes,
        size=args.size,
        images=args.images,
        frames=args.frames,
        darknet=args.darknet,
        seed=args.seed,
    )
    print((args.out / "bench.md").read_text(encoding="utf-8"))
    return 0 if result.rows else 1
