"""``cuda-toolkit``: CUDA 11.8 + cuDNN 8.9 (:mod:`training_scripts.darknet.cuda_toolkit`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``cuda-toolkit`` to the command parsers."""
    p = sub.add_parser(
        "cuda-toolkit",
        help="assemble a CUDA toolkit + cuDNN (CUDA_HOME layout) from Debian non-free and PyPI",
        description="Download (cached in DOWNLOADS) and unpack nvcc, cicc, the CUDA headers and libraries "
        "and cuDNN into OUT; a second run with the same pins changes nothing. Prints 'built OUT' or "
        "'up to date OUT'.",
    )
    p.add_argument("--out", type=Path, required=True, help="the CUDA_HOME directory to create")
    p.add_argument("--downloads", type=Path, required=True, help="download cache (.deb files, the wheel)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build or confirm the tree."""
    from training_scripts.darknet.cuda_toolkit import ensure_toolkit

    built = ensure_toolkit(args.out.resolve(), args.downloads.resolve())
    print(f"{'built' if built else 'up to date'} {args.out}")
    return 0
