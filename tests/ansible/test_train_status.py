"""roles/train/files/train_status.py: progress of a run from its run.json and metrics.csv."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from tests.ansible.runner import ROLES_DIR

SCRIPT = ROLES_DIR / "train" / "files" / "train_status.py"
HEADER = "iteration,loss,avg_loss,rate,seconds,images,hours_left,region_iou\n"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("train_status", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    cfg = tmp_path / "m.cfg"
    cfg.write_text("[net]\nbatch=16\nmax_batches = 200 # total\n\n[region]\nclasses=3\n", encoding="utf-8")
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
    status = _module().run_status(run_dir)
    assert status["state"] == "running"
    assert (status["iteration"], status["max_batches"], status["percent"]) == (50, 200, 25.0)
    assert status["loss"] == pytest.approx(5.0)
    assert status["avg_loss"] == pytest.approx(6.0)
    assert status["seconds_per_iteration"] == pytest.approx(2.0)
    assert status["eta_seconds"] == pytest.approx(300.0)
    assert status["checkpoints"] == ["m_50.weights"]
    assert status["loss_png"] == str(run_dir / "loss.png")
    text = _module().format_text(status)
    assert "iteration 50/200 (25.0%)" in text
    assert "ETA 5m00s" in text
    assert f"loss plot: {run_dir / 'loss.png'}" in text


def test_states(run_dir: Path) -> None:
    module = _module()
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
        [sys.executable, str(SCRIPT), "--run", str(run_dir), "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert (status["iteration"], status["eta_seconds"]) == (4, pytest.approx(294.0))
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--run", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "no run.json" in proc.stderr


def test_cfg_max_batches_reads_only_the_net_section(tmp_path: Path) -> None:
    cfg = tmp_path / "a.cfg"
    cfg.write_text(
        "[convolutional]\nmax_batches=5\n[net]\n# max_batches=1\nmax_batches=300\n", encoding="utf-8"
    )
    assert _module().cfg_max_batches(cfg) == 300
    assert _module().cfg_max_batches(tmp_path / "missing.cfg") is None
