"""``python -m training_scripts COMMAND ...``: one entry point for every training-side tool.

Each command lives in ``training_scripts/cli/<command>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable
``(argparse.Namespace) -> int``. Command modules import heavy libraries (TensorFlow,
OpenVINO, matplotlib) inside their ``run`` functions, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from edge_image.contract.errors import run_command
from training_scripts import __version__

COMMANDS: tuple[str, ...] = (
    "synth",
    "prepare",
    "anchors",
    "cfg",
    "partial",
    "train",
    "train-status",
    "chaos",
    "evaluate",
    "select",
    "report",
    "export",
    "pack",
    "publish-layout",
    "signing-key",
    "bench",
    "cuda-toolkit",
    "spot-watch",
    "s3-pull",
    "gpu-check",
    "edge-emulated",
    "summary",
)


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every command module that is present."""
    parser = argparse.ArgumentParser(prog="python -m training_scripts", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"training_scripts.cli.{name.replace('-', '_')}")
        except ModuleNotFoundError as exc:
            if exc.name == f"training_scripts.cli.{name.replace('-', '_')}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the command; a :class:`UserError` becomes one line on stderr."""
    return run_command(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
