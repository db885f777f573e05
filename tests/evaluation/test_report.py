"""report.html from the real checkpoints: self-contained, every section present."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edge_image.contract.errors import UserError
from training_scripts.darknet.cfg import describe, parse_cfg
from training_scripts.report.render import build_context, render_html

REPO = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


@pytest.mark.slow
def test_report_cli_writes_self_contained_model_card(selection, tmp_path):
    run = selection.run
    out = tmp_path / "report.html"
    result = subprocess.run(
        [sys.executable, "-m", "training_scripts", "report", "--data", str(run.data_dir),
         "--selection", str(selection.selection_json), "--out", str(out), "--samples", "4"],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    html = out.read_text(encoding="utf-8")
    # self-contained: every image is an embedded data URI, nothing is fetched
    sources = re.findall(r'src="([^"]+)"', html)
    assert sources and all(s.startswith("data:image/") for s in sources)
    assert not re.search(r'(href|src)="(https?:|/|file:)', html)
    pngs = [base64.b64decode(s.split(",", 1)[1]) for s in sources if s.startswith("data:image/png")]
    jpegs = [base64.b64decode(s.split(",", 1)[1]) for s in sources if s.startswith("data:image/jpeg")]
    # data set report.png, loss, mAP by checkpoint, AP bars, PR curves
    assert len(pngs) == 5 and all(p.startswith(PNG_MAGIC) for p in pngs)
    assert len(jpegs) == 4 and all(j.startswith(JPEG_MAGIC) for j in jpegs)
    for heading in ("Summary", "Data set", "Model", "Training", "Checkpoint selection", "Per-class results",
                    "Sample test images"):  # fmt: skip
        assert f"<h2>{heading}" in html
    for name in run.names:
        assert name in html
    layers = describe(parse_cfg(run.cfg))
    assert html.count("BFLOPs") == 1 and len(
        re.findall(r"<td>\d+</td><td class=\"l\">(conv|maxpool|region)", html)
    ) == len(layers)
    assert "mean average precision (mAP@0.50)" in html
    for iteration, _ in run.checkpoints:
        assert f"<td>{iteration}</td>" in html
    test_map = selection.document["selected"]["test"]["evaluation"]["map"]
    assert f"{100 * test_map:.2f} %" in html


@pytest.mark.slow
def test_report_context_without_dataset_report(selection, tmp_path):
    context = build_context(selection.run.data_dir, selection.selection_json, samples=0)
    context["dataset"] = {"present": False, "path": "/x/report.json"}
    html = render_html(context)
    assert "No data set report (/x/report.json not found)" in html
    assert "No samples requested." in html


def test_report_with_missing_selection_is_an_error(synth_dataset, tmp_path):
    with pytest.raises(UserError, match=r"selection file not found"):
        build_context(synth_dataset, tmp_path / "selection.json")
    (tmp_path / "selection.json").write_text("{}")
    with pytest.raises(UserError, match=r"not a selection file"):
        build_context(synth_dataset, tmp_path / "selection.json")
