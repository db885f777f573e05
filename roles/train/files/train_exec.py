#!/usr/bin/env python3
"""train-exec RUN_DIR: run the training command recorded in RUN_DIR/run.json.

The systemd unit ``edgeyolo-train@<run>.service`` starts this instead of carrying the command
in its own lines, so arguments reach ``python -m training_scripts train`` exactly as the role
assembled them (no shell or unit-file quoting in between). Input: the run directory (its
``run.json`` has ``"command": [argv...]`` and ``"workdir"``). Output: the command replaces
this process (``os.execv``); a missing or malformed run.json prints ``error: ...`` and exits 2.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def load_command(run_dir: Path) -> tuple[list[str], str | None]:
    """``(argv, workdir)`` from ``run_dir/run.json``; ValueError with one line when unusable."""
    path = run_dir / "run.json"
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read ({exc})") from None
    command = info.get("command")
    if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
        raise ValueError(f"{path}: command: expected a non-empty list of strings")
    workdir = info.get("workdir")
    return command, workdir if isinstance(workdir, str) and workdir else None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: train-exec RUN_DIR", file=sys.stderr)
        return 2
    try:
        command, workdir = load_command(Path(args[0]))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if workdir:
        os.chdir(workdir)
    sys.stdout.flush()
    os.execv(command[0], command)
    return 0  # not reached: execv replaces the process


if __name__ == "__main__":
    sys.exit(main())
