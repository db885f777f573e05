"""End-to-end check of the evaluator against darknet itself: the numbers our pipeline
(numpy forward + decode + matching) gives equal those of the same matching applied to the
detections darknet's own ``detector valid`` writes for the same weights and images.

The synthetic images are 128x128 = the cpu-smoke network size, so darknet's letterbox and
our stretch feed identical pixels. Random weights (realistic batch-norm statistics) give
hundreds of detections at threshold .005, so the comparison has something to compare.
"""

from __future__ import annotations

import numpy as np
import pytest

from training_scripts.darknet.cfg import parse_cfg
from training_scripts.darknet.valid import run_darknet_valid
from training_scripts.darknet.weights import random_weights, write_weights
from training_scripts.evaluation.evaluate import Evaluator, load_image
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


@pytest.mark.slow
@pytest.mark.parametrize("which", ["random", "trained"])
def test_evaluation_equals_darknet_valid_detections(trained_run, darknet_bin, tmp_path, which):
    sections = parse_cfg(trained_run.cfg)
    if which == "random":
        weights = write_weights(tmp_path / "random.weights", random_weights(sections, seed=3))
    else:
        weights = trained_run.final_weights
    evaluator = Evaluator(load_data_config(trained_run.data_dir), trained_run.cfg, "valid")
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
    # float32 vs darknet's float: a few borderline boxes (score ~ .005, or near-overflow
    # outputs of a barely trained net) may fall on either side; allow 1 % of them, at least 2
    slack = max(2, round(0.01 * len(rows)))
    assert sum(c.n_detections for c in ours.classes) == pytest.approx(len(rows), abs=slack)
    for mine, other in zip(ours.classes, theirs.classes, strict=True):
        assert mine.n_detections == pytest.approx(other.n_detections, abs=slack)
        assert (mine.tp, mine.fp) == pytest.approx((other.tp, other.fp), abs=slack)
        if mine.ap is not None:
            assert mine.ap == pytest.approx(other.ap, abs=0.01)
    assert ours.map == pytest.approx(theirs.map, abs=0.01)
    assert ours.map11 == pytest.approx(theirs.map11, abs=0.01)
    assert (ours.tp, ours.fn) == pytest.approx((theirs.tp, theirs.fn), abs=1)
    assert np.isfinite(ours.average_iou)
