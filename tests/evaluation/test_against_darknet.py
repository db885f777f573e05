"""End-to-end check of the evaluator against darknet itself: the numbers our pipeline
(numpy forward + decode + matching) gives equal those of the same matching applied to the
detections darknet's own ``detector valid`` writes for the same weights and images.

The synthetic images are 128x128 = the cpu-smoke network size, so darknet's letterbox and
our stretch feed identical pixels, provided both decode the same pixels: OpenCV's JPEG
decoder (libjpeg-turbo) and darknet's (stb_image) differ by a level here and there, which
moves scores by up to ~1e-3 and, on 15 images, swaps close true and false positives enough to
move a class's AP by more than .01 (a CI failure of the trained case). The check is of the
evaluator, not of JPEG decoders, so both read lossless PNG copies of the validation images;
then scores agree to darknet's printed precision (1e-6). Random weights (realistic
batch-norm statistics) give hundreds of detections at threshold .005, so the comparison has
something to compare.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from training_scripts.darknet.cfg import parse_cfg
from training_scripts.darknet.valid import run_darknet_valid
from training_scripts.darknet.weights import random_weights, write_weights
from training_scripts.dataset.darknet_layout import label_path_for
from training_scripts.evaluation.evaluate import Evaluator, load_image, read_images, resolve_list
from training_scripts.evaluation.metrics import ImagePredictions, evaluate_detections
from training_scripts.training.data import load_data_config


def _darknet_predictions(rows, images):
    by_image: dict[str, list] = {p.stem: [] for p in images}
    for row in rows:
        by_image[row.image_id].append(row)
    preds = []
    for path in images:
        height, width = load_image(path).shape[:2]
        mine = by_image[path.stem]
        # darknet prints pixel corners + 1, clipped to [1, width] / [1, height]
        boxes = [
            [(r.xmin - 1) / width, (r.ymin - 1) / height, (r.xmax - 1) / width, (r.ymax - 1) / height]
            for r in mine
        ]
        preds.append(ImagePredictions.of(boxes, [r.prob for r in mine], [r.class_id for r in mine]))
    return preds


def _lossless_copy(data_dir: Path, out: Path) -> Path:
    """``data_dir``'s validation images as PNG (same stems, same labels) in a data set at ``out``."""
    data = load_data_config(data_dir)
    (out / "images").mkdir(parents=True)
    (out / "labels").mkdir()
    lines = []
    for image in read_images(data, resolve_list(data, "valid")):
        copy = out / "images" / f"{image.stem}.png"
        assert cv2.imwrite(str(copy), cv2.imread(str(image), cv2.IMREAD_COLOR))
        shutil.copyfile(label_path_for(image), label_path_for(copy))
        lines.append(f"{copy}\n")
    (out / "valid.txt").write_text("".join(lines), encoding="utf-8")
    shutil.copyfile(data_dir / "obj.names", out / "obj.names")
    (out / "obj.data").write_text(
        f"classes={len(data.names)}\ntrain=valid.txt\nvalid=valid.txt\nnames=obj.names\n",
        encoding="utf-8",
    )
    return out


@pytest.fixture(scope="module")
def lossless_valid(trained_run, tmp_path_factory) -> Path:
    """The trained run's validation list as a PNG data set (see the module doc)."""
    return _lossless_copy(trained_run.data_dir, tmp_path_factory.mktemp("lossless"))


@pytest.mark.slow
@pytest.mark.parametrize("which", ["random", "trained"])
def test_evaluation_equals_darknet_valid_detections(
    trained_run, lossless_valid, darknet_bin, tmp_path, which
):
    sections = parse_cfg(trained_run.cfg)
    if which == "random":
        weights = write_weights(tmp_path / "random.weights", random_weights(sections, seed=3))
    else:
        weights = trained_run.final_weights
    evaluator = Evaluator(load_data_config(lossless_valid), trained_run.cfg, "valid")
    ours = evaluator.run(weights).evaluation
    rows = run_darknet_valid(
        darknet_bin, trained_run.cfg, weights, evaluator.images, trained_run.names, tmp_path / "valid"
    )
    theirs = evaluate_detections(
        _darknet_predictions(rows, evaluator.images), evaluator.truths, trained_run.names
    )
    assert ours is not None
    if which == "random":
        assert len(rows) > 100, "random weights should give many detections at .005"
    # float32 in numpy vs darknet's float in C, same pixels: scores agree to ~1e-6, so only a
    # box scored within that of the .005 threshold (or a near-overflow output of random
    # weights) can fall on the other side: allow one in 200, at least 1
    slack = max(1, round(0.005 * len(rows)))
    assert sum(c.n_detections for c in ours.classes) == pytest.approx(len(rows), abs=slack)
    for mine, other in zip(ours.classes, theirs.classes, strict=True):
        assert mine.n_detections == pytest.approx(other.n_detections, abs=slack)
        assert (mine.tp, mine.fp) == pytest.approx((other.tp, other.fp), abs=slack)
        if mine.ap is not None:
            assert mine.ap == pytest.approx(other.ap, abs=0.002)
    assert ours.map == pytest.approx(theirs.map, abs=0.002)
    assert ours.map11 == pytest.approx(theirs.map11, abs=0.002)
    assert (ours.tp, ours.fn) == pytest.approx((theirs.tp, theirs.fn), abs=slack)
    assert np.isfinite(ours.average_iou)
