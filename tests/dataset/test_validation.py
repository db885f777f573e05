"""Each validation path: exact drop/clip counts, one-line errors, output-location checks."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_image.contract.errors import UserError
from tests.dataset.builders import flickr27_source, write_image
from training_scripts.__main__ import main
from training_scripts.dataset.darknet_layout import read_labels
from training_scripts.dataset.prepare import prepare_dataset

LINES = [
    "ok.jpg A 6 10 10 40 40",  # kept
    "ok.jpg A 6 10 10 40 40",  # duplicate
    "ok.jpg B 6 -10 10 50 50",  # partly outside: clipped to 0 10 50 50
    "ok.jpg B 6 -5 10 50 50",  # clips to the same box: duplicate
    "ok.jpg A 6 80 10 130 90",  # partly outside: clipped to 80 10 100 80
    "ok.jpg A 6 120 10 150 50",  # fully outside
    "ok.jpg A 6 -50 -50 -10 -10",  # fully outside
    "ok.jpg B 6 50 10 40 50",  # negative width
    "ok.jpg B 6 50 10 60 10",  # zero height
    "missing.jpg A 6 1 1 5 5",
    "bad.jpg A 6 1 1 5 5",
    "gone.jpg A 6 10 10 10 20",  # its only box is degenerate
]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    src = flickr27_source(tmp_path / "src", LINES, {"ok.jpg": (100, 80), "gone.jpg": (50, 50)})
    (src / "flickr_logos_27_dataset_images" / "bad.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    return src


def test_every_drop_and_clip_is_counted(source: Path, tmp_path: Path) -> None:
    report = prepare_dataset("flickr27", source, tmp_path / "out")
    assert report["dropped"] == {
        "degenerate": 3,
        "duplicate": 2,
        "missing_image": 1,
        "no_boxes_left": 1,
        "outside": 2,
        "unreadable_image": 1,
    }
    assert report["clipped"] == 2
    assert report["images"] == 1 and report["boxes"] == 3
    labels = read_labels(tmp_path / "out" / "labels" / "ok.txt")
    expected = [
        [0, 25 / 100, 25 / 80, 30 / 100, 30 / 80],
        [0, 90 / 100, 45 / 80, 20 / 100, 70 / 80],
        [1, 25 / 100, 30 / 80, 50 / 100, 40 / 80],
    ]
    assert labels == pytest.approx(np.array(expected), abs=1e-6)


def test_cli_prints_counted_warnings_and_a_summary(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["prepare", "flickr27", "--src", str(source), "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 7
    assert any(w.startswith("warning: dropped 2 x outside (e.g. ") and ":6; " in w for w in warnings)
    assert "warning: clipped 2 boxes partly outside their image" in warnings
    assert "1 images, 3 boxes, 2 classes" in captured.out
    assert "Traceback" not in captured.err


def test_empty_dataset_is_an_error_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = flickr27_source(tmp_path / "src", ["x.jpg A 6 5 5 5 9", "x.jpg A 6 9 9 1 1"], {"x.jpg": (20, 20)})
    assert main(["prepare", "flickr27", "--src", str(src), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == f"error: --src {src}: empty dataset: no usable images (degenerate=2, no_boxes_left=1)\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_empty_annotation_file_is_an_error(tmp_path: Path) -> None:
    src = flickr27_source(tmp_path / "src", [], {})
    with pytest.raises(UserError, match=r"empty dataset: no usable images \(nothing dropped\)"):
        prepare_dataset("flickr27", src, tmp_path / "out")


def test_png_is_reencoded_as_jpeg_and_jpeg_copied_verbatim(tmp_path: Path) -> None:
    src = flickr27_source(tmp_path / "src", ["p.png A 6 1 1 30 20", "j.jpg A 6 1 1 30 20"], {})
    images = src / "flickr_logos_27_dataset_images"
    images.mkdir()
    xx, yy = np.meshgrid(np.arange(40) * 6, np.arange(30) * 8)
    gradient = np.dstack([xx, yy, np.full((30, 40), 90)])
    assert cv2.imwrite(str(images / "p.png"), gradient.astype(np.uint8))
    write_image(images / "j.jpg", 40, 30, seed=2)
    prepare_dataset("flickr27", src, tmp_path / "out")
    png_out = (tmp_path / "out" / "images" / "p.jpg").read_bytes()
    assert png_out.startswith(b"\xff\xd8\xff")
    decoded = cv2.imdecode(np.frombuffer(png_out, np.uint8), cv2.IMREAD_COLOR)
    original = cv2.imread(str(images / "p.png"))
    assert decoded.shape == (30, 40, 3)
    assert np.abs(decoded.astype(int) - original.astype(int)).mean() < 3  # JPEG q95 of a smooth gradient
    assert (tmp_path / "out" / "images" / "j.jpg").read_bytes() == (images / "j.jpg").read_bytes()


@pytest.mark.parametrize("folder", ["images_set", "raw_data", "x.jpg.d"])
def test_out_path_darknet_would_misread_is_refused(source: Path, tmp_path: Path, folder: str) -> None:
    out = tmp_path / folder / "out"
    with pytest.raises(UserError, match=r"darknet would look for labels of .* choose another --out"):
        prepare_dataset("flickr27", source, out)
    assert not out.exists()


def test_names_that_darknet_would_rewrite_are_renamed(tmp_path: Path) -> None:
    src = flickr27_source(tmp_path / "src", ["drawn_images.jpg A 6 1 1 9 9"], {"drawn_images.jpg": (20, 20)})
    prepare_dataset("flickr27", src, tmp_path / "out")
    assert [p.name for p in (tmp_path / "out" / "images").iterdir()] == ["dRAWn_IMAGES.jpg"]
    assert (tmp_path / "out" / "labels" / "dRAWn_IMAGES.txt").is_file()


def test_foreign_or_trained_out_dirs_are_not_replaced(source: Path, tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="is not empty and is not a prepared dataset"):
        prepare_dataset("flickr27", source, foreign)
    assert (foreign / "notes.txt").read_text() == "mine"
    out = tmp_path / "out"
    prepare_dataset("flickr27", source, out)
    (out / "backup" / "yolo_100.weights").write_bytes(b"w")
    with pytest.raises(UserError, match="backup/ holds files"):
        prepare_dataset("flickr27", source, out)
    assert (out / "backup" / "yolo_100.weights").read_bytes() == b"w"


def test_missing_source_and_bad_split_are_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prepare", "voc", "--src", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == f"error: --src {tmp_path / 'nope'}: not a directory\n"
    assert (
        main(["prepare", "voc", "--src", str(tmp_path), "--out", str(tmp_path / "o"), "--split", "8,2"]) == 2
    )
    assert capsys.readouterr().err == "error: --split: expected TRAIN,VALID,TEST, got '8,2'\n"
    assert (
        main(["prepare", "voc", "--src", str(tmp_path), "--out", str(tmp_path / "o"), "--split", "0,5,5"])
        == 2
    )
    assert "TRAIN > 0" in capsys.readouterr().err
