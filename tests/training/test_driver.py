"""Training driver: segments, resume, time limit, NaN and failure handling.

Fast tests run the driver against ``fake_darknet.py`` (pjreddie's observable behaviour,
with knobs for NaN / slow iterations / silent failure); the real-darknet checks use the
session ``trained_run`` fixture (tests/fixtures/training.py) and one short resume.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import time
from pathlib import Path

import pytest

from edge_image.contract.errors import UserError
from tests.fixtures.training import TRAIN_ITERATIONS, TRAIN_SEGMENT
from training_scripts.darknet.cfg import parse_cfg
from training_scripts.darknet.profiles import generate_cfg
from training_scripts.darknet.weights import expected_size, read_weights
from training_scripts.dataset.darknet_layout import read_names
from training_scripts.training.driver import (
    DarknetFailedError,
    TrainOptions,
    detect_flavor,
    segment_cfg_text,
    train,
)
from training_scripts.training.history import read_history
from training_scripts.training.logparse import NaNLossError


def _cfg(tmp_path: Path, data: Path, max_batches: int, name: str = "model") -> Path:
    cfg = tmp_path / f"{name}.cfg"
    cfg.write_text(generate_cfg(read_names(data / "obj.names"), "cpu-smoke", max_batches=max_batches))
    return cfg


def _options(data: Path, cfg: Path, backup: Path, darknet: Path, **kw: object) -> TrainOptions:
    return TrainOptions(
        data=data,
        cfg=cfg,
        init_weights=None,
        backup=backup,
        darknet=darknet,
        progress_interval=0.0,
        stream=io.StringIO(),
        **kw,  # type: ignore[arg-type]
    )


def _argv_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "argv.jsonl"
    monkeypatch.setenv("FAKE_ARGV_LOG", str(log))
    return log


def test_segments_make_checkpoints_and_metrics(synth_dataset, fake_darknet, tmp_path, monkeypatch):
    argv_log = _argv_log(tmp_path, monkeypatch)
    cfg = _cfg(tmp_path, synth_dataset, 25)
    result = train(_options(synth_dataset, cfg, tmp_path / "backup", fake_darknet, segment=10))
    assert result.stopped == "complete"
    assert [i for i, _ in result.checkpoints] == [10, 20, 25]
    sections = parse_cfg(cfg)
    for iteration, path in result.checkpoints:
        assert path.name == f"model_{iteration}.weights"
        assert read_weights(path, sections).seen == iteration * 16
    rows = read_history(result.metrics_csv)
    assert [r.iteration for r in rows] == list(range(1, 26))
    assert rows[0].region_iou == pytest.approx(0.25) and rows[0].region_count == 4
    assert result.loss_png is not None and result.loss_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    runs = [json.loads(line) for line in argv_log.read_text().splitlines()]
    assert len(runs) == 3
    assert "-clear" in runs[0] and all("-clear" not in r for r in runs[1:])
    assert runs[1][5].endswith("model_10.weights") and runs[2][5].endswith("model_20.weights")
    # darknet got a private obj.data with absolute paths and its own backup dir
    assert all(Path(r[3]).is_absolute() and Path(r[4]).is_absolute() for r in runs)
    assert not list((tmp_path / "backup").glob(".darknet-work*")), "work dir must be cleaned up"


def test_resume_picks_newest_checkpoint_and_drops_rows_after_it(
    synth_dataset, fake_darknet, tmp_path, monkeypatch
):
    backup = tmp_path / "backup"
    train(_options(synth_dataset, _cfg(tmp_path, synth_dataset, 20), backup, fake_darknet, segment=10))
    # rows of a segment that was cut short (21..23) must give way to the resumed run's rows
    with (backup / "metrics.csv").open("a") as handle:
        for i in (21, 22, 23):
            handle.write(f"{i},999,999,0,1,{16 * i},nan,nan,nan,nan,nan,nan,0\n")
    (backup / "model_5.weights").write_bytes((backup / "model_10.weights").read_bytes())
    argv_log = _argv_log(tmp_path, monkeypatch)
    result = train(
        _options(synth_dataset, _cfg(tmp_path, synth_dataset, 30), backup, fake_darknet, segment=10)
    )
    runs = [json.loads(line) for line in argv_log.read_text().splitlines()]
    assert len(runs) == 1 and runs[0][5] == str(backup / "model_20.weights") and "-clear" not in runs[0]
    rows = read_history(result.metrics_csv)
    assert [r.iteration for r in rows] == list(range(1, 31))
    assert all(r.loss != 999 for r in rows)
    assert [i for i, _ in result.checkpoints] == [5, 10, 20, 30]


def test_already_complete_runs_nothing(synth_dataset, fake_darknet, tmp_path, monkeypatch):
    cfg = _cfg(tmp_path, synth_dataset, 10)
    train(_options(synth_dataset, cfg, tmp_path / "b", fake_darknet, segment=10))
    argv_log = _argv_log(tmp_path, monkeypatch)
    result = train(_options(synth_dataset, cfg, tmp_path / "b", fake_darknet, segment=10))
    assert result.stopped == "complete" and result.last_iteration == 10
    assert not argv_log.exists()


def test_max_minutes_stops_between_segments_with_checkpoint(
    synth_dataset, fake_darknet, tmp_path, monkeypatch
):
    monkeypatch.setenv("FAKE_SLEEP", "0.1")
    cfg = _cfg(tmp_path, synth_dataset, 10000)
    start, wall_start = time.monotonic(), time.time()
    result = train(_options(synth_dataset, cfg, tmp_path / "b", fake_darknet, segment=1000, max_minutes=0.15))
    elapsed = time.monotonic() - start
    assert result.stopped == "time limit"
    # the last checkpoint lands before the 9 s deadline; the final loss.png may take a moment more
    assert result.checkpoints[-1][1].stat().st_mtime - wall_start < 9.0
    assert elapsed < 9.0 + 5.0, elapsed
    assert len(result.checkpoints) >= 2  # the 10-iteration calibration segment, then a sized one
    assert 10 < result.last_iteration < 90
    sections = parse_cfg(cfg)
    for _, path in result.checkpoints:
        assert path.stat().st_size == expected_size(sections)
    rows = read_history(result.metrics_csv)
    assert rows[-1].iteration == result.last_iteration


def test_max_minutes_kills_overrunning_segment(synth_dataset, fake_darknet, tmp_path, monkeypatch):
    # fast calibration, then every iteration is slow: the sized segment overruns the deadline
    monkeypatch.setenv("FAKE_SLEEP", "0.02")
    monkeypatch.setenv("FAKE_SLOW_FROM", "11")
    monkeypatch.setenv("FAKE_SLOW_SLEEP", "1.0")
    cfg = _cfg(tmp_path, synth_dataset, 10000)
    start = time.monotonic()
    result = train(
        _options(
            synth_dataset, cfg, tmp_path / "b", fake_darknet, segment=1000, max_minutes=0.05, grace_s=0.5
        )
    )
    assert time.monotonic() - start < 3.0 + 0.5 + 4.0
    assert result.stopped == "time limit"
    assert [i for i, _ in result.checkpoints] == [10]
    assert [r.iteration for r in read_history(result.metrics_csv)] == list(range(1, 11))


def test_time_limit_before_the_first_checkpoint_is_an_error(
    synth_dataset, fake_darknet, tmp_path, monkeypatch
):
    # every iteration is slow: the 10-iteration calibration segment cannot finish in 3 s
    monkeypatch.setenv("FAKE_SLEEP", "1.0")
    cfg = _cfg(tmp_path, synth_dataset, 10000)
    with pytest.raises(
        UserError, match=r"--max-minutes 0.05: the time limit passed .* before the first checkpoint"
    ):
        train(
            _options(
                synth_dataset, cfg, tmp_path / "b", fake_darknet, segment=1000, max_minutes=0.05, grace_s=0.5
            )
        )
    assert not list((tmp_path / "b").glob("*.weights"))


def test_nan_loss_stops_with_clear_error(synth_dataset, fake_darknet, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_NAN_AT", "7")
    cfg = _cfg(tmp_path, synth_dataset, 20)
    with pytest.raises(NaNLossError) as info:
        train(_options(synth_dataset, cfg, tmp_path / "b", fake_darknet, segment=5))
    message = str(info.value)
    assert "loss is -nan at iteration 7" in message
    assert "learning_rate" in message and "model_5.weights" in message
    assert isinstance(info.value, UserError)
    # the same on every try: the training unit's RestartPreventExitStatus=2 keeps it stopped
    assert info.value.exit_code == 2


def test_silent_darknet_failure_is_an_error(synth_dataset, fake_darknet, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_FAIL", "1")
    with pytest.raises(DarknetFailedError, match=r"darknet training failed .*Couldn't open file") as info:
        train(
            _options(synth_dataset, _cfg(tmp_path, synth_dataset, 5), tmp_path / "b", fake_darknet, segment=5)
        )
    # a darknet failure may be transient (OOM, a signal): exit 1, which the unit restarts
    assert isinstance(info.value, UserError) and info.value.exit_code == 1


def test_checkpoint_of_another_cfg_is_refused(synth_dataset, fake_darknet, tmp_path):
    backup = tmp_path / "b"
    backup.mkdir()
    (backup / "model_10.weights").write_bytes(struct.pack("<iiiq", 0, 2, 0, 160) + bytes(1000))
    with pytest.raises(UserError, match=r"model_10.weights: 1020 bytes, but .* needs \d+"):
        train(_options(synth_dataset, _cfg(tmp_path, synth_dataset, 20), backup, fake_darknet, segment=10))


def test_bad_inputs(synth_dataset, fake_darknet, tmp_path):
    cfg = _cfg(tmp_path, synth_dataset, 20)
    with pytest.raises(UserError, match=r"no darknet \.data file"):
        train(_options(tmp_path / "nowhere", cfg, tmp_path / "b", fake_darknet))
    with pytest.raises(UserError, match="initial weights not found"):
        opts = _options(synth_dataset, cfg, tmp_path / "b", fake_darknet)
        opts.init_weights = tmp_path / "missing.weights"
        train(opts)
    other = tmp_path / "two.cfg"
    other.write_text(generate_cfg(["a", "b"], "cpu-smoke", max_batches=5))
    with pytest.raises(UserError, match=r"classes=2 but .*obj.names lists 3 names"):
        train(_options(synth_dataset, other, tmp_path / "b", fake_darknet))


def test_segment_cfg_changes_only_max_batches():
    sections = parse_cfg(generate_cfg(["a"], "cpu-smoke", max_batches=400))
    text = segment_cfg_text(sections, 37)
    again = parse_cfg(text)
    assert again[0].options["max_batches"] == "37"
    again[0].options["max_batches"] = "400"
    assert again == sections
    assert sections[0].options["max_batches"] == "400"  # the input is not modified


def test_flavor_detection(tmp_path, darknet_bin):
    assert detect_flavor(darknet_bin) == "pjreddie"
    fake = tmp_path / "alexeyab"
    fake.write_bytes(b"\x7fELF...find_arg(argc, argv, \x00-dont_show\x00...")
    assert detect_flavor(fake) == "alexeyab"


# ---- real darknet -------------------------------------------------------------------------


@pytest.mark.slow
def test_real_darknet_run_left_checkpoints_and_metrics(trained_run):
    sections = parse_cfg(trained_run.cfg)
    assert [i for i, _ in trained_run.checkpoints] == list(
        range(TRAIN_SEGMENT, TRAIN_ITERATIONS + 1, TRAIN_SEGMENT)
    )
    for iteration, path in trained_run.checkpoints:
        weights = read_weights(path, sections)  # exact size check against the cfg
        assert (weights.major, weights.minor) == (0, 2)
        assert weights.seen == iteration * 16  # darknet's own counter: 16 images per iteration
    rows = read_history(trained_run.metrics_csv)
    assert [r.iteration for r in rows] == list(range(1, TRAIN_ITERATIONS + 1))
    assert all(r.loss > 0 and r.images == 16 * r.iteration for r in rows)
    assert any(r.region_count > 0 for r in rows)
    assert (trained_run.backup / "loss.png").stat().st_size > 10_000
    assert "train: done" in trained_run.log


@pytest.mark.slow
def test_real_darknet_resumes_from_newest_checkpoint(trained_run, darknet_bin, tmp_path):
    backup = tmp_path / "backup"
    backup.mkdir()
    last = TRAIN_ITERATIONS
    shutil.copy(trained_run.checkpoints[-1][1], backup)  # model_<last>.weights
    shutil.copy(trained_run.metrics_csv, backup)
    cfg = _cfg(tmp_path, trained_run.data_dir, last + 4)
    result = train(_options(trained_run.data_dir, cfg, backup, darknet_bin, segment=4))
    assert [i for i, _ in result.checkpoints] == [last, last + 4]
    assert read_weights(result.checkpoints[-1][1], parse_cfg(cfg)).seen == (last + 4) * 16
    assert [r.iteration for r in read_history(result.metrics_csv)] == list(range(1, last + 5))
    log = (backup / "darknet.log").read_text()
    assert f"model_{last}.weights" in log and "-clear" not in log
    assert os.path.getsize(result.checkpoints[-1][1]) == os.path.getsize(trained_run.checkpoints[-1][1])


def test_one_trainer_per_backup_directory(synth_dataset, fake_darknet, tmp_path):
    import fcntl

    backup = tmp_path / "b"
    backup.mkdir()
    (backup / ".darknet-work.stale").mkdir()
    with (backup / ".train.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.raises(UserError, match="another `train` is running on this backup directory"):
            train(_options(synth_dataset, _cfg(tmp_path, synth_dataset, 3), backup, fake_darknet, segment=3))
    result = train(_options(synth_dataset, _cfg(tmp_path, synth_dataset, 3), backup, fake_darknet, segment=3))
    assert result.last_iteration == 3
    assert not (backup / ".darknet-work.stale").exists(), "a killed run's work dir is cleaned up"
