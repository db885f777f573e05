"""``python -m edge_image bench`` on the real bundle and video, with real darknet for comparison."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.edge.helpers import REPO_ROOT

pytestmark = pytest.mark.slow


def test_bench_table_backends_darknet_and_roofline(
    model_bundle: Path, synth_video: Path, darknet_bin: Path, tmp_path: Path
) -> None:
    out, png = tmp_path / "bench.md", tmp_path / "bench.png"
    proc = subprocess.run(
        [sys.executable, "-m", "edge_image", "bench", "--model", str(model_bundle),
         "--source", str(synth_video), "--frames", "12",
         "--backends", "openvino", "opencv", "mvnc",
         "--darknet", str(darknet_bin), "--output", str(out), "--plot", str(png)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text()
    assert text in proc.stdout
    print(text)
    rows = {
        line.split("|")[1].strip(): line
        for line in text.splitlines()
        if line.startswith("| ") and "---" not in line
    }
    for backend in ("openvino", "opencv", "darknet"):
        cells = [c.strip() for c in rows[backend].split("|")[1:-1]]
        fps = float(cells[7])
        assert fps > 0, rows[backend]
        assert float(cells[4]) > 0  # infer ms
    assert "| mvnc | — | not available: " in rows["mvnc"]  # no NCSDK or stick here: said, not skipped
    gemm = float(re.search(r"sgemm \(.*\): ([0-9.]+) GFLOP/s", text).group(1))
    gflop = float(re.search(r"model: ([0-9.]+) GFLOP per frame", text).group(1))
    roof = float(re.search(r"= ([0-9.]+) FPS", text).group(1))
    assert gemm > 1 and gflop > 0 and roof == pytest.approx(gemm / gflop, rel=0.02)
    darknet_bflops = re.search(r"darknet reports ([0-9.]+) BFLOPs", text)
    assert darknet_bflops and float(darknet_bflops.group(1)) == pytest.approx(gflop, rel=0.05)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    frames = re.search(r"decode \+ NMS alone: ([0-9]+) frames per CPU-second.*; ([0-9]+) on 13x13x160", text)
    assert frames and int(frames.group(1)) > 0 and int(frames.group(2)) >= 2000
