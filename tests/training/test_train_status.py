"""``train-status`` (training_scripts/training/status.py, installed by the train role as a
wrapper around ``python -m training_scripts train-status``): progress of a run from its
run.json and metrics.csv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from training_scripts.training import status as module
from training_scripts.training.status import format_text, run_status

REPO = Path(__file__).resolve().parents[2]
HEADER = "iteration,loss,avg_loss,rate,seconds,images,hours_left,region_iou\n"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    cfg = tmp_path / "m.cfg"
    cfg.write_text("[net]\nbatch=16\nmax_batches = 200\n\n[region]\nclasses=3\n", encoding="utf-8")
    run = tmp_path / "runs" / "abc"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"run": "abc", "cfg": str(cfg), "unit": ""}), encoding="utf-8")
    return run


def _metrics(run: Path, rows: int, seconds: float = 2.0) -> None:
    lines = [
        f"{i},{10 - i * 0.1:.2f},{11 - i * 0.1:.2f},0.005,{seconds},{16 * i},nan,0.5\n"
        for i in range(1, rows + 1)
    ]
    (run / "metrics.csv").write_text(HEADER + "".join(lines), encoding="utf-8")


def test_running_run_reports_iteration_loss_and_eta(run_dir: Path) -> None:
    _metrics(run_dir, 50)
    (run_dir / "loss.png").write_bytes(b"\x89PNG")
    (run_dir / "m_50.weights").write_bytes(b"")
    status = run_status(run_dir)
    assert status["state"] == "running"
    assert (status["iteration"], status["max_batches"], status["percent"]) == (50, 200, 25.0)
    assert status["loss"] == pytest.approx(5.0)
    assert status["avg_loss"] == pytest.approx(6.0)
    assert status["seconds_per_iteration"] == pytest.approx(2.0)
    assert status["eta_seconds"] == pytest.approx(300.0)
    assert status["checkpoints"] == ["m_50.weights"]
    assert status["loss_png"] == str(run_dir / "loss.png")
    text = format_text(status)
    assert "iteration 50/200 (25.0%)" in text
    assert "ETA 5m00s" in text
    assert f"loss plot: {run_dir / 'loss.png'}" in text


def test_states(run_dir: Path) -> None:
    assert module.run_status(run_dir)["state"] == "pending"
    _metrics(run_dir, 10)
    old = time.time() - 3600
    os.utime(run_dir / "metrics.csv", (old, old))
    assert module.run_status(run_dir)["state"] == "stopped"
    (run_dir / "train.done").write_text("abc\n", encoding="utf-8")
    done = module.run_status(run_dir)
    assert (done["state"], done["eta_seconds"]) == ("complete", 0.0)


def test_cli_json_and_missing_run(run_dir: Path, tmp_path: Path) -> None:
    _metrics(run_dir, 4, seconds=1.5)
    proc = subprocess.run(
        [sys.executable, "-m", "training_scripts", "train-status", "--run", str(run_dir), "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert (status["iteration"], status["eta_seconds"]) == (4, pytest.approx(294.0))
    proc = subprocess.run(
        [sys.executable, "-m", "training_scripts", "train-status", "--run", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        cwd=REPO,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "no run.json" in proc.stderr


def test_cfg_max_batches_is_the_net_sections_value_read_as_training_reads_it(tmp_path: Path) -> None:
    cfg = tmp_path / "a.cfg"
    cfg.write_text(
        "[net]\n# max_batches=1\nmax_batches=300\n[convolutional]\nmax_batches=5\n", encoding="utf-8"
    )
    assert module.cfg_max_batches(cfg) == 300
    assert module.cfg_max_batches(tmp_path / "missing.cfg") is None
    cfg.write_text("[convolutional]\nmax_batches=5\n[net]\nmax_batches=300\n", encoding="utf-8")
    assert module.cfg_max_batches(cfg) is None  # training refuses it too: [net] must come first


def test_a_row_being_written_is_left_out_not_an_error(run_dir: Path) -> None:
    _metrics(run_dir, 10)
    with (run_dir / "metrics.csv").open("a", encoding="utf-8") as handle:
        handle.write("11,8.9,9.")
    assert run_status(run_dir)["iteration"] == 10
    with (run_dir / "metrics.csv").open("a", encoding="utf-8") as handle:
        handle.write("\0" * 64)
    assert run_status(run_dir)["iteration"] == 10


def test_the_role_installs_the_package_command_not_a_copy_of_its_parsers() -> None:
    wrapper = (REPO / "roles" / "train" / "templates" / "train-status.j2").read_text(encoding="utf-8")
    assert "-m training_scripts train-status" in wrapper
    assert not (REPO / "roles" / "train" / "files" / "train_status.py").exists()
