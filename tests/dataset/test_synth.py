"""Synthetic logos: distinct classes, sensible boxes, and a readable video with ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from training_scripts.__main__ import main
from training_scripts.dataset.darknet_layout import read_labels
from training_scripts.dataset.logos import MAX_CLASSES, logo_class, render_template


def test_classes_look_different() -> None:
    looks = [logo_class(i) for i in range(MAX_CLASSES)]
    assert len({(c.shape, c.colour) for c in looks}) == MAX_CLASSES
    first = looks[:10]
    assert len({c.shape for c in first}) == 10 and len({c.colour for c in first}) == 10
    masks = [render_template(c)[1] > 0.5 for c in first]
    for i in range(10):
        for j in range(i + 1, 10):
            overlap = (masks[i] & masks[j]).sum() / (masks[i] | masks[j]).sum()
            assert overlap < 0.85, (first[i].shape, first[j].shape)


def test_synth_boxes_are_large_inside_and_one_to_three_per_image(synth_dataset: Path) -> None:
    labels = [read_labels(p) for p in sorted((synth_dataset / "labels").glob("*.txt"))]
    counts = [len(lab) for lab in labels]
    assert min(counts) >= 1 and max(counts) <= 3
    boxes = np.concatenate(labels)
    side = np.sqrt(boxes[:, 3] * boxes[:, 4])
    assert side.min() >= 0.12 and side.max() <= 0.7 and 0.2 <= np.median(side) <= 0.45
    assert np.all(boxes[:, 1] - boxes[:, 3] / 2 >= -1e-6) and np.all(
        boxes[:, 1] + boxes[:, 3] / 2 <= 1 + 1e-6
    )
    classes = np.bincount(boxes[:, 0].astype(int), minlength=3)
    assert classes.min() > 0.6 * classes.max()  # roughly balanced


def test_box_colour_matches_class(synth_dataset: Path) -> None:
    """The centre of each box mostly shows its class colour: boxes sit on the logos."""
    names = (synth_dataset / "obj.names").read_text().split()
    colours = {logo_class(i).name: np.array(logo_class(i).colour, float) for i in range(3)}
    hits = total = 0
    for label in sorted((synth_dataset / "labels").glob("*.txt"))[:60]:
        image = cv2.imread(str(synth_dataset / "images" / f"{label.stem}.jpg")).astype(float)
        h, w = image.shape[:2]
        for cls, cx, cy, bw, bh in read_labels(label):
            x, y = int(cx * w), int(cy * h)
            patch = image[
                max(0, y - int(bh * h / 4)) : y + int(bh * h / 4) + 1,
                max(0, x - int(bw * w / 4)) : x + int(bw * w / 4) + 1,
            ]
            distances = {n: np.linalg.norm(patch.reshape(-1, 3).mean(0) - c) for n, c in colours.items()}
            hits += min(distances, key=distances.get) == names[int(cls)]
            total += 1
    assert hits / total > 0.9


def test_synth_video(synth_video: Path) -> None:
    capture = cv2.VideoCapture(str(synth_video))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    assert len(frames) == 60 and frames[0].shape == (240, 320, 3)
    assert np.abs(frames[0].astype(int) - frames[30].astype(int)).mean() > 2  # logos moved
    truth = json.loads(synth_video.with_name("synth.truth.json").read_text())
    assert truth["classes"] == ["red-circle", "green-square", "blue-triangle"]
    assert len(truth["frames"]) == 60 and all(1 <= len(f) <= 3 for f in truth["frames"])
    for name, x1, y1, x2, y2 in truth["frames"][10]:
        assert name in truth["classes"] and 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1


def test_synth_cli_with_avi(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    video = tmp_path / "demo.avi"
    args = ["synth", "--out", str(tmp_path / "src"), "--classes", "12", "--images", "6", "--seed", "2"]
    assert (
        main([*args, "--size", "96x64", "--video", str(video), "--frames", "5", "--video-size", "64x48"]) == 0
    )
    assert "next: prepare flickr27" in capsys.readouterr().out
    images = sorted((tmp_path / "src" / "flickr_logos_27_dataset_images").glob("synth*.jpg"))
    assert len(images) == 6 and cv2.imread(str(images[0])).shape == (64, 96, 3)
    assert int(cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    meta = json.loads((tmp_path / "src" / "synth.json").read_text())
    assert meta["classes"][10] == "yellow-circle" and len(meta["classes"]) == 12


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--classes", "0"], "--classes must be 1..100, got 0"),
        (["--classes", "101"], "--classes must be 1..100, got 101"),
        (["--images", "0"], "--images must be >= 1, got 0"),
        (["--size", "16x16"], "--size must be between 32 and 4096 pixels per side, got 16x16"),
        (["--size", "big"], "size must look like WIDTHxHEIGHT (e.g. 160x160), got 'big'"),
    ],
)
def test_synth_cli_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    base = {"--classes": "3", "--images": "2", "--size": "64x64"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    argv = ["synth", "--out", str(tmp_path / "s"), *[x for kv in base.items() for x in kv]]
    assert main(argv) == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    assert not (tmp_path / "s").exists()
