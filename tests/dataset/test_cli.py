"""The three dataset commands through the real ``python -m training_scripts`` entry point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "training_scripts", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_synth_prepare_anchors_chain(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "data"
    done = run(
        "synth", "--out", str(src), "--classes", "4", "--images", "40", "--seed", "1", "--size", "96x96"
    )
    assert done.returncode == 0, done.stderr
    done = run(
        "prepare", "flickr27", "--src", str(src), "--out", str(out), "--split", "70,15,15", "--seed", "2"
    )
    assert done.returncode == 0, done.stderr
    assert (
        "40 images" in done.stdout
        and "4 classes" in done.stdout
        and "split: train=28, valid=6, test=6" in done.stdout
    )
    assert "warning: dropped 5 x degenerate" in done.stderr
    done = run("anchors", "--data", str(out), "--num", "3", "--size", "96")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].startswith("anchors = ")


def test_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    done = run("prepare", "coco", "--src", str(tmp_path), "--out", str(tmp_path / "o"))
    assert done.returncode == 2
    assert (
        done.stderr
        == f"error: {tmp_path}: no COCO .json file (expected SRC/*.json or SRC/annotations/*.json)\n"
    )
