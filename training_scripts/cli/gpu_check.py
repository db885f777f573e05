"""``gpu-check``: train the 27-class 416² model on a GPU darknet build and report images/s, GPU
memory and utilisation and the exported bundle's parity (:mod:`training_scripts.gpu_check`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``gpu-check`` to the command parsers."""
    p = sub.add_parser(
        "gpu-check",
        help="GPU host check: train the reference model with a GPU darknet, report images/s, memory, parity",
        description="On a host with an NVIDIA GPU: synthetic 27-class data at 416x416, ITERATIONS of the gpu "
        "profile with DARKNET -gpus 0 while nvidia-smi is sampled every second, then a parity-checked "
        "export. Writes OUT/gpu-check.md and OUT/gpu-check.json.",
    )
    p.add_argument(
        "--darknet", type=Path, required=True, help="darknet built with GPU=1 (make gpu-check builds it)"
    )
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--iterations", type=int, default=300, help="training iterations (default 300)")
    p.add_argument("--images", type=int, default=256, help="synthetic training images (default 256)")
    p.add_argument("--classes", type=int, default=27, help="classes (default 27: filters=160)")
    p.add_argument("--size", type=int, default=416, help="network input size (default 416)")
    p.add_argument("--profile", default="gpu", help="cfg profile (default gpu)")
    p.add_argument("--no-gpus", action="store_true", help="train without -gpus (a CPU build: tests only)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the check and print its table."""
    from edge_image.contract.errors import UserError
    from training_scripts.gpu_check import run_check

    for flag in ("iterations", "images", "classes"):
        if getattr(args, flag) < 1:
            raise UserError(f"--{flag}: must be at least 1")
    if args.size % 32:
        raise UserError(f"--size: must be a multiple of 32, got {args.size}")
    if not args.darknet.is_file():
        raise UserError(f"--darknet: {args.darknet}: no such file (make gpu-check builds it)")
    run_check(
        args.out,
        args.darknet,
        classes=args.classes,
        size=args.size,
        images=args.images,
        iterations=args.iterations,
        profile=args.profile,
        gpus=None if args.no_gpus else "0",
    )
    print((args.out / "gpu-check.md").read_text(encoding="utf-8"), end="")
    return 0
