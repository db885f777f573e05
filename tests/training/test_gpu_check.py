"""`gpu-check` without a GPU: nvidia-smi's answers come from a stand-in, darknet is the real CPU build
(pjreddie, trained without -gpus), so everything but the GPU itself runs: the synthetic data, the
training and its images/s from metrics.csv, the sampler, the parity-checked export and the table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from edge_image.contract.errors import UserError
from training_scripts.gpu_check import Sampler, gpu_info, images_per_second, nvidia_smi, run_check

REPO = Path(__file__).resolve().parents[2]


class FakeSmi:
    """Answers nvidia-smi --query-gpu like an H200 would; memory.used grows with every sample."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> str:
        self.calls.append(list(argv))
        assert argv[0] == "nvidia-smi" and argv[1] == "--id=0" and argv[-1] == "--format=csv,noheader,nounits"
        if argv[2] == "--query-gpu=name,compute_cap,driver_version,memory.total":
            return "NVIDIA H200, 9.0, 570.195.03, 143771\n"
        assert argv[2] == "--query-gpu=utilization.gpu,memory.used"
        return f"{40 + len(self.calls)}, {1000 + 10 * len(self.calls)}\n"


def test_gpu_info_parses_the_query() -> None:
    info = gpu_info(run=FakeSmi())
    assert (info.name, info.compute_cap, info.driver, info.memory_total_mib) == (
        "NVIDIA H200",
        "9.0",
        "570.195.03",
        143771.0,
    )


def test_nvidia_smi_errors_are_one_line() -> None:
    def missing(argv: Sequence[str]) -> str:
        raise FileNotFoundError(argv[0])

    with pytest.raises(
        UserError, match="nvidia-smi: not found: make gpu-check needs a host with an NVIDIA GPU"
    ):
        nvidia_smi(["name"], run=missing)

    def failing(argv: Sequence[str]) -> str:
        raise subprocess.CalledProcessError(9, argv, output="", stderr="No devices were found\n")

    with pytest.raises(UserError, match="nvidia-smi: exit 9: No devices were found"):
        nvidia_smi(["name"], run=failing)
    with pytest.raises(UserError, match=r"expected 2 values \(name, compute_cap\), got 'H200'"):
        nvidia_smi(["name", "compute_cap"], run=lambda _argv: "H200\n")


def test_sampler_reads_on_entry_and_exit_and_summarises() -> None:
    smi = FakeSmi()
    with Sampler(run=smi, interval=3600) as sampler:
        pass
    assert sampler.utilization == [41.0, 42.0] and sampler.memory_mib == [1010.0, 1020.0]
    assert sampler.summary() == {
        "samples": 2,
        "utilization_mean": 41.5,
        "utilization_max": 42.0,
        "memory_max_mib": 1020.0,
    }
    assert Sampler().summary()["samples"] == 0


def test_check_trains_exports_and_reports(darknet_bin: Path, tmp_path: Path) -> None:
    smi = FakeSmi()
    lines: list[str] = []
    record = run_check(
        tmp_path / "out",
        darknet_bin,
        classes=3,
        size=96,
        images=24,
        iterations=6,
        profile="cpu-smoke",
        gpus=None,
        smi=smi,
        log=lines.append,
    )
    assert [line.split("]")[0] for line in lines] == [f"gpu-check: [{i}/4" for i in range(1, 5)]
    assert record["cfg"] == {"classes": 3, "size": 96, "batch": 16, "iterations": 6, "profile": "cpu-smoke"}
    metrics = tmp_path / "out" / "work" / "run" / "metrics.csv"
    # the record keeps one decimal
    assert record["images_per_second"] == pytest.approx(images_per_second(metrics, 16), abs=0.05)
    assert record["images_per_second"] > 0
    assert record["nvidia_smi"]["samples"] >= 2 and record["nvidia_smi"]["memory_max_mib"] >= 1020.0
    kinds = [p["kind"] for p in record["parity"]]
    assert "pb" in kinds and "onnx" in kinds and all(p["ok"] for p in record["parity"])
    assert json.loads((tmp_path / "out" / "gpu-check.json").read_text()) == record
    table = (tmp_path / "out" / "gpu-check.md").read_text()
    assert "| GPU | NVIDIA H200 (compute 9.0, driver 570.195.03) |" in table
    assert "| parity: pb | max abs" in table and ": ok |" in table


def test_images_per_second_skips_warmup_and_refuses_an_empty_history(tmp_path: Path) -> None:
    from training_scripts.training.history import HistoryWriter
    from training_scripts.training.logparse import IterationRecord

    empty = tmp_path / "empty.csv"
    HistoryWriter(empty)
    with pytest.raises(UserError, match="no timed iterations"):
        images_per_second(empty, 64)
    path = tmp_path / "metrics.csv"
    writer = HistoryWriter(path)
    for i in range(1, 31):
        writer.append(IterationRecord(i, 1.0, 1.0, 0.001, 9.0 if i <= 20 else 0.5, 64 * i))
    assert images_per_second(path, 64) == 128.0  # the 9-second warm-up iterations are left out


def test_cli_without_nvidia_smi_is_one_line_and_exit_2(darknet_bin: Path, tmp_path: Path) -> None:
    env = os.environ | {"PATH": "/nonexistent"}
    proc = subprocess.run(
        [sys.executable, "-m", "training_scripts", "gpu-check",
         "--darknet", str(darknet_bin), "--out", str(tmp_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: nvidia-smi: not found: make gpu-check needs a host with an NVIDIA GPU and driver"
    ]
    assert list(tmp_path.iterdir()) == []
