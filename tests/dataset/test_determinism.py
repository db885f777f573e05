"""Same input and seed → byte-identical output; interrupted runs leave nothing behind."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.dataset.builders import all_files
from training_scripts.dataset import write
from training_scripts.dataset.prepare import prepare_dataset
from training_scripts.dataset.synth import make_synthetic, make_video

PATH_FILES = {"train.txt", "valid.txt", "test.txt", "query.txt", "obj.data"}


def test_two_runs_are_byte_identical(synth_source: Path, synth_dataset: Path, tmp_path: Path) -> None:
    reference = all_files(synth_dataset)
    out = tmp_path / "again"
    prepare_dataset("flickr27", synth_source, out, split=(80, 10, 10), seed=0)
    again = all_files(out)
    assert again.keys() == reference.keys()
    assert len(reference) > 300  # images, labels, query images, lists, report
    for name, data in reference.items():
        if name in PATH_FILES:  # absolute paths: identical once the location is swapped
            data = data.replace(str(synth_dataset.resolve()).encode(), str(out.resolve()).encode())
        assert again[name] == data, name
    prepare_dataset("flickr27", synth_source, out, split=(80, 10, 10), seed=0)  # same place again
    assert all_files(out) == again


def test_another_seed_changes_only_the_split(synth_source: Path, synth_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "seed1"
    report = prepare_dataset("flickr27", synth_source, out, seed=1)
    assert (out / "train.txt").read_text() != (synth_dataset / "train.txt").read_text().replace(
        str(synth_dataset.resolve()), str(out.resolve())
    )
    assert report["split"] == {"train": 120, "valid": 15, "test": 15}
    assert all_files(out / "labels") == all_files(synth_dataset / "labels")


def test_content_digest_follows_pixels_not_names(
    synth_source: Path, synth_dataset: Path, tmp_path: Path
) -> None:
    """report.json's content_sha256 names the pixels and boxes (the train role's run id reads it)."""
    import json

    import cv2

    first = json.loads((synth_dataset / "report.json").read_text())["content_sha256"]
    assert len(first) == 64
    src = tmp_path / "src"
    shutil.copytree(synth_source, src)
    image = next(p for p in sorted(src.rglob("*.jpg")))
    pixels = cv2.imread(str(image))
    cv2.imwrite(str(image), 255 - pixels)  # same file name, other pixels
    out = tmp_path / "out"
    prepare_dataset("flickr27", src, out, split=(80, 10, 10), seed=0)
    report = json.loads((out / "report.json").read_text())
    assert report["content_sha256"] != first
    assert report["split"] == json.loads((synth_dataset / "report.json").read_text())["split"]


def test_synth_is_deterministic_by_seed(tmp_path: Path) -> None:
    a = make_synthetic(tmp_path / "a", 4, 12, seed=5, size=(96, 96))
    b = make_synthetic(tmp_path / "b", 4, 12, seed=5, size=(96, 96))
    c = make_synthetic(tmp_path / "c", 4, 12, seed=6, size=(96, 96))
    assert all_files(a) == all_files(b)
    assert all_files(a) != all_files(c)


def test_failure_mid_write_leaves_no_output(
    synth_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    original = write.image_bytes

    def failing(sample: object) -> bytes:
        calls["n"] += 1
        if calls["n"] == 40:
            raise OSError("disk full (simulated)")
        return original(sample)  # type: ignore[arg-type]

    monkeypatch.setattr(write, "image_bytes", failing)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="simulated"):
        prepare_dataset("flickr27", synth_source, out)
    assert calls["n"] == 40
    assert list(tmp_path.iterdir()) == []  # no OUT, no temporary sibling


def test_failure_keeps_the_previous_dataset(
    synth_source: Path, synth_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    prepare_dataset("flickr27", synth_source, out)
    before = all_files(out)

    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("training_scripts.dataset.prepare.plot_report", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset("flickr27", synth_source, out, seed=9)
    assert all_files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_video_is_deterministic_by_seed(tmp_path: Path) -> None:
    a = make_video(tmp_path / "a" / "v.avi", 3, frames=6, seed=1, size=(96, 64))
    b = make_video(tmp_path / "b" / "v.avi", 3, frames=6, seed=1, size=(96, 64))
    assert a.read_bytes() == b.read_bytes()
    assert (a.parent / "v.truth.json").read_bytes() == (b.parent / "v.truth.json").read_bytes()
