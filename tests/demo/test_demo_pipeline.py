"""Issue 10 acceptance: `make demo` end to end on this machine, with a shorter budget.

The demo's own pipeline runs — ansible/train.yml with the local inventory (darknet from Debian's
source through the role, synthetic logos, real CPU training in segments, selection, export,
publish), then ansible/edge.yml (the edge service on a synthetic video, OpenVINO CPU backend),
then the summary. The test checks that the mAP the demo reports is what evaluating the selected,
darknet-trained checkpoint on the held-out lists gives, that those lists share no image with the
training list, and that the edge service it started really processes frames.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from training_scripts.dataset.darknet_layout import read_list
from training_scripts.evaluation.evaluate import Evaluator
from training_scripts.training.data import load_data_config

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
PIDFILE = Path("/run/edge-image.pid")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str], int]:
    out = tmp_path_factory.mktemp("demo")
    port = _free_port()
    knobs = [
        f"DEMO_OUT={out}",
        "DEMO_IMAGES=160",
        "DEMO_MAX_BATCHES=300",
        "DEMO_MAX_MINUTES=8",
        f"DEMO_PORT={port}",
    ]
    proc = subprocess.run(
        ["make", "--no-print-directory", "demo", *knobs],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=2400,
        check=False,
        env={**os.environ, "ANSIBLE_FORCE_COLOR": "0"},
    )
    yield out, proc, port
    subprocess.run(
        [
            "start-stop-daemon",
            "--stop",
            "--quiet",
            "--oknodo",
            "--pidfile",
            str(PIDFILE),
            "--retry",
            "TERM/20/KILL/5",
        ],
        check=False,
    )


def test_demo_finishes_and_prints_the_summary(demo) -> None:
    out, proc, port = demo
    assert proc.returncode == 0, (proc.stdout[-4000:], proc.stderr[-4000:])
    assert f"live page: http://127.0.0.1:{port}/" in proc.stdout
    assert "held-out     valid mAP@0.5 = " in proc.stdout
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert "openvino" in summary["edge_backend"]
    assert 0 < summary["edge_fps"] <= 33  # the demo node's fps_limit is 30
    assert summary["edge_capacity_fps"] > summary["edge_fps"]
    assert Path(summary["report_html"]).stat().st_size > 10_000


def test_reported_map_is_the_selected_checkpoints_on_held_out_images(demo) -> None:
    out, proc, _ = demo
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    selection = json.loads((Path(summary["bundle"]) / "extra" / "selection.json").read_text(encoding="utf-8"))
    weights = Path(summary["selected_weights"])
    # a real darknet checkpoint of this run, chosen among several
    assert weights.is_file() and weights.name.endswith(f"_{summary['selected_iteration']}.weights")
    assert summary["selected_iteration"] > 0 and len(selection["checkpoints"]) >= 2
    data = load_data_config(selection["data"])
    train = {p.resolve() for p in read_list(data.train_list)}
    for which, key in (("valid", "valid_map50"), ("test", "test_map50")):
        evaluator = Evaluator(data, Path(selection["cfg"]), which)
        assert not train & {p.resolve() for p in evaluator.images}, f"{which} overlaps train"
        assert len(evaluator.images) == summary[f"{which}_images"] > 0
        again = evaluator.run(weights).evaluation
        assert again is not None
        assert again.map == pytest.approx(summary[key], abs=1e-9), which
