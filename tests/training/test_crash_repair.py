"""What a crash leaves is repaired on the next start; what the user got wrong still stops at once.

Against ``fake_darknet.py``: a torn or NUL-filled last ``metrics.csv`` row, a newest checkpoint
that a power cut truncated or zero-filled (its bytes no longer match ``checkpoints.sha256``),
and, still refused, an intact checkpoint of another cfg. Then the edge side's directory
replace: a crash between its two renames is put back by the next start.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from edge_image.contract.atomic import atomic_dir, repair_dir
from edge_image.contract.errors import UserError
from edge_image.contract.manifest import load_bundle
from tests.fixtures.bundle import logo_bundle
from tests.training.test_driver import _cfg, _options
from training_scripts.training.checkpoints import LEDGER_NAME, read_ledger
from training_scripts.training.driver import train
from training_scripts.training.history import read_history, repair_history


def _trained(synth_dataset: Path, fake_darknet: Path, tmp_path: Path, iterations: int = 20) -> Path:
    backup = tmp_path / "backup"
    cfg = _cfg(tmp_path, synth_dataset, iterations)
    train(_options(synth_dataset, cfg, backup, fake_darknet, segment=10))
    return backup


def _resume(synth_dataset: Path, fake_darknet: Path, tmp_path: Path, iterations: int) -> tuple[object, str]:
    cfg = _cfg(tmp_path, synth_dataset, iterations)
    options = _options(synth_dataset, cfg, tmp_path / "backup", fake_darknet, segment=10)
    result = train(options)
    assert isinstance(options.stream, io.StringIO)
    return result, options.stream.getvalue()


def test_ledger_is_written_before_the_rename_and_matches(synth_dataset, fake_darknet, tmp_path):
    backup = _trained(synth_dataset, fake_darknet, tmp_path)
    ledger = read_ledger(backup)
    assert set(ledger) == {"model_10.weights", "model_20.weights"}
    for name, sha in ledger.items():
        assert hashlib.sha256((backup / name).read_bytes()).hexdigest() == sha
    # sha256sum's own format, so `sha256sum -c checkpoints.sha256` works in the backup directory
    assert (backup / LEDGER_NAME).read_text().splitlines()[0].split("  ")[1] == "model_10.weights"


@pytest.mark.parametrize("how", ["truncated", "overwritten"])
def test_damaged_newest_checkpoint_is_moved_aside(synth_dataset, fake_darknet, tmp_path, how):
    backup = _trained(synth_dataset, fake_darknet, tmp_path)
    newest = backup / "model_20.weights"
    size = newest.stat().st_size
    if how == "truncated":
        os.truncate(newest, size // 3)
    else:
        with newest.open("r+b") as handle:  # same size, other bytes (fake darknet's weights are zeros,
            handle.seek(size // 2)  # so a zero-filled tail is the chaos run's case, with real weights)
            handle.write(b"\xa5" * (size - size // 2))
    result, out = _resume(synth_dataset, fake_darknet, tmp_path, 30)
    assert "warning: model_20.weights:" in out and "moved to damaged/model_20.weights" in out
    assert "resuming from model_10.weights (iteration 10)" in out
    moved = backup / "damaged" / "model_20.weights"
    assert moved.stat().st_size == (size // 3 if how == "truncated" else size)
    assert [i for i, _ in result.checkpoints] == [10, 20, 30]  # 20 trained again
    assert [r.iteration for r in read_history(result.metrics_csv)] == list(range(1, 31))


def test_torn_and_nul_filled_metrics_row_is_dropped(synth_dataset, fake_darknet, tmp_path):
    backup = _trained(synth_dataset, fake_darknet, tmp_path)
    metrics = backup / "metrics.csv"
    data = metrics.read_bytes()
    metrics.write_bytes(data + b"21,0.51,0.5" + bytes(300))  # a row cut short, then zeros
    result, out = _resume(synth_dataset, fake_darknet, tmp_path, 30)
    assert "warning:" in out and "dropped a torn last row" in out and "300 NUL bytes" in out
    assert [r.iteration for r in read_history(result.metrics_csv)] == list(range(1, 31))


def test_repair_history_cases(tmp_path):
    path = tmp_path / "metrics.csv"
    assert repair_history(path) is None  # nothing there
    path.write_bytes(b"iteration,loss,avg_loss\n1,2,2\n")
    assert repair_history(path) is None and path.read_bytes() == b"iteration,loss,avg_loss\n1,2,2\n"
    path.write_bytes(b"iteration,loss,avg_loss\n1,2,2\n" + bytes(64))  # only zeros after a whole row
    assert "64 NUL bytes" in (repair_history(path) or "")
    assert path.read_bytes() == b"iteration,loss,avg_loss\n1,2,2\n"
    path.write_bytes(b"iteration,loss,avg_loss\n1,2\x00\x00,2\n2,1,1\n")  # zeros inside: not from an append
    with pytest.raises(UserError, match=r"metrics.csv:2: NUL bytes inside the file"):
        repair_history(path)


def test_intact_checkpoint_of_another_cfg_still_stops(synth_dataset, fake_darknet, tmp_path):
    backup = _trained(synth_dataset, fake_darknet, tmp_path)
    # the user points the run at a cfg of another size: the ledger says the file is intact, so
    # it is not crash debris but the wrong cfg, and nothing is moved
    cfg = _cfg(tmp_path, synth_dataset, 40)
    text = cfg.read_text()
    assert "filters=4\n" in text
    cfg.write_text(text.replace("filters=4\n", "filters=8\n", 1))  # a wider first layer: more weights
    other = cfg
    with pytest.raises(UserError, match=r"model_20.weights: \d+ bytes, but .* needs \d+"):
        train(_options(synth_dataset, other, backup, fake_darknet, segment=10))
    assert (backup / "model_20.weights").is_file() and not (backup / "damaged").exists()


def test_interrupted_directory_replace_is_put_back(tmp_path):
    target = tmp_path / "bundle"
    logo_bundle(target, "v1")
    # a crash between the two renames of a replace: only .bundle.old is left
    os.replace(target, tmp_path / ".bundle.old")
    warnings: list[str] = []
    bundle = load_bundle(target, warn=warnings.append)
    assert bundle.manifest["version"] == "v1" and target.is_dir()
    assert warnings and warnings[0].startswith(f"restored {target}")
    # a crash after both renames, before the clean-up: the stale copy goes, the new one stays
    (tmp_path / ".bundle.old").mkdir()
    assert "removed" in (repair_dir(target) or "")
    assert not (tmp_path / ".bundle.old").exists() and target.is_dir()
    # atomic_dir repairs first, so a rerun of an interrupted export does not lose the old copy
    os.replace(target, tmp_path / ".bundle.old")
    with pytest.raises(RuntimeError), atomic_dir(target):
        raise RuntimeError("the new export fails")
    assert (target / "manifest.json").is_file()


def test_ledger_line_torn_by_a_crash_stays_apart_from_the_next(tmp_path: Path) -> None:
    from training_scripts.training.checkpoints import record_checkpoint

    weights = tmp_path / "w"
    weights.write_bytes(b"weights")
    (tmp_path / LEDGER_NAME).write_bytes(b"0123abc")  # a line cut short
    record_checkpoint(tmp_path, weights, "model_10.weights")
    assert read_ledger(tmp_path) == {"model_10.weights": hashlib.sha256(b"weights").hexdigest()}
    assert (tmp_path / LEDGER_NAME).read_bytes().startswith(b"0123abc\n")


def test_atomic_dir_replaces_a_file_in_its_way(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.write_text("a file where the directory goes")
    with atomic_dir(target) as tmp:
        (tmp / "x").write_text("new")
    assert (target / "x").read_text() == "new"
