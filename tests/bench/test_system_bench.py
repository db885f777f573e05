"""`python -m training_scripts bench` produces the issue-10 table with real measurements."""

from __future__ import annotations

import doctest
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import training_scripts.bench

REPO = Path(__file__).resolve().parents[2]


def test_bench_doctests() -> None:
    assert doctest.testmod(training_scripts.bench).failed == 0


def test_bench_rejects_bad_size(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "training_scripts", "bench", "--out", str(tmp_path / "b"), "--size", "100"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --size: must be a multiple of 32, got 100"


@pytest.mark.slow
def test_bench_small_run_measures_everything(tmp_path: Path, darknet_bin: Path) -> None:
    out = tmp_path / "bench"
    env = {**os.environ, "DARKNET_BIN": str(darknet_bin)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "training_scripts",
            "bench",
            "--out",
            str(out),
            "--classes",
            "2",
            "--size",
            "96",
            "--images",
            "10",
            "--frames",
            "4",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads((out / "bench.json").read_text())
    for key in (
        "sgemm (numpy float32 1024³)",
        "roofline",
        "export cfg → bundle",
        "edge end-to-end: openvino",
        "edge end-to-end: opencv",
        "edge end-to-end: darknet",
        "decode + NMS (13x13x160)",
        "evaluate (ours, numpy forward + mAP)",
        "evaluate (darknet detector valid)",
    ):
        assert rows[key]["value"] > 0, (key, rows[key])
    assert rows["model cost"]["unit"] == "GFLOP/frame"
    table = (out / "bench.md").read_text()
    assert "| edge end-to-end: darknet |" in table
    assert (out / "edge.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
