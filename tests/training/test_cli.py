"""The ``train`` command line: output, exit codes, one-line errors (fake darknet, fast)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from training_scripts.darknet.profiles import generate_cfg
from training_scripts.dataset.darknet_layout import read_names

REPO = Path(__file__).resolve().parents[2]


def _train(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "training_scripts", "train", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_train_command_runs_and_reports(synth_dataset, fake_darknet, tmp_path):
    cfg = tmp_path / "net.cfg"
    cfg.write_text(generate_cfg(read_names(synth_dataset / "obj.names"), "cpu-smoke", max_batches=6))
    result = _train(
        "--data", synth_dataset / "obj.data", "--cfg", cfg, "--weights", "none",
        "--backup", tmp_path / "b", "--darknet", fake_darknet, "--segment", "3", "--progress-every", "0",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"checkpoints: 2 in {tmp_path / 'b'} (newest iteration 6)" in result.stdout
    assert "train: 6/6 (100.0%)" in result.stderr and "img/s" in result.stderr and "ETA" in result.stderr
    assert sorted(p.name for p in (tmp_path / "b").glob("*.weights")) == ["net_3.weights", "net_6.weights"]


def test_train_command_errors_are_one_line(synth_dataset, fake_darknet, tmp_path):
    cfg = tmp_path / "net.cfg"
    cfg.write_text(generate_cfg(read_names(synth_dataset / "obj.names"), "cpu-smoke", max_batches=6))
    common = ["--data", synth_dataset, "--cfg", cfg, "--backup", tmp_path / "b", "--darknet", fake_darknet]
    for extra, expected in (
        (["--weights", tmp_path / "nope.weights"], "initial weights not found"),
        (["--weights", "none", "--max-minutes", "0"], "--max-minutes must be positive"),
        (["--weights", "none", "--segment", "0"], "--segment must be >= 1"),
    ):
        result = _train(*common, *extra)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    missing = _train("--data", synth_dataset, "--cfg", cfg, "--weights", "none", "--backup", tmp_path / "c",
                     "--darknet", tmp_path / "no-darknet")  # fmt: skip
    assert missing.returncode == 2 and "darknet binary not found" in missing.stderr
