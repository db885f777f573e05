"""The shared plumbing: CLI dispatch, one-line errors, atomic outputs."""

from __future__ import annotations

import argparse
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from edge_image.contract import atomic
from edge_image.contract.errors import UserError
from training_scripts.__main__ import COMMANDS, build_parser, main

REPO = Path(__file__).resolve().parents[2]


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.txt"
    atomic.write_text(target, "first\n")
    atomic.write_text(target, "second\n")
    assert target.read_text() == "second\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]


def test_atomic_write_uses_normal_file_mode(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        target = atomic.write_bytes(tmp_path / "a.cfg", b"[net]\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_atomic_dir_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "dataset"
    with pytest.raises(RuntimeError), atomic.atomic_dir(target) as tmp:
        (tmp / "half.txt").write_text("partial")
        raise RuntimeError("interrupted")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_keeps_previous_output_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "dataset"
    with atomic.atomic_dir(target) as tmp:
        (tmp / "v1.txt").write_text("one")
    with pytest.raises(RuntimeError), atomic.atomic_dir(target) as tmp:
        (tmp / "v2.txt").write_text("two")
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in target.iterdir()) == ["v1.txt"]
    with atomic.atomic_dir(target) as tmp:
        (tmp / "v3.txt").write_text("three")
    assert sorted(p.name for p in target.iterdir()) == ["v3.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]


def test_every_listed_command_is_registered() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert sorted(sub.choices) == sorted(COMMANDS)


def test_user_error_is_one_line_and_nonzero(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    def boom(_args: argparse.Namespace) -> int:
        raise UserError("labels/a.txt:3: expected 5 fields, got 4")

    parser = argparse.ArgumentParser()
    parser.add_subparsers(dest="command", required=True).add_parser("boom").set_defaults(func=boom)
    monkeypatch.setattr("training_scripts.__main__.build_parser", lambda: parser)
    code = main(["boom"])
    assert code == 2
    assert capsys.readouterr().err == "error: labels/a.txt:3: expected 5 fields, got 4\n"


def test_cli_parser_builds_without_heavy_imports() -> None:
    code = (
        "import sys; from training_scripts.__main__ import build_parser; build_parser(); "
        "print(sorted(m for m in ('tensorflow', 'openvino', 'matplotlib', 'boto3') if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_one_progress_reporter_for_quiet_loops_and_long_runs() -> None:
    import io

    from edge_image.contract.progress import Progress

    now = [0.0]
    out = io.StringIO()
    quick = Progress("write", 10, unit="img", quiet_s=2.0, stream=out, clock=lambda: now[0])
    for _ in range(10):
        now[0] += 0.1
        quick.advance()
    quick.close()
    assert out.getvalue() == ""  # done in 1 s: silent
    slow = Progress("validate", 4, unit="img", interval=2.0, quiet_s=2.0, stream=out, clock=lambda: now[0])
    for _ in range(4):
        now[0] += 1.5
        slow.advance()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("validate: 2/4 (50.0%)  0.67 img/s  ETA 3s")
    assert lines[-1].startswith("validate: 4/4 (100.0%)") and len(lines) == 2  # 3/4 came too soon
