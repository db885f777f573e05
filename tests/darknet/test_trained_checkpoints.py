"""Our weights IO and forward pass on checkpoints written by a real darknet training run.

Uses the session fixture ``trained_run`` (tests/fixtures/training.py: the synthetic data set
trained from scratch by our driver with the real darknet). Tolerance: every detection paired,
box corners within 0.01 px, |prob| <= max(2e-5, 1e-6 x the largest |raw output|) (see below).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.darknet.test_forward import COORD_TOL, PROB_TOL, our_rows
from training_scripts.darknet.cfg import check_classes, parse_cfg, render_cfg
from training_scripts.darknet.forward import DarknetModel, preprocess
from training_scripts.darknet.valid import compare_rows, run_darknet_valid
from training_scripts.darknet.weights import partial, read_weights, write_weights
from training_scripts.dataset.darknet_layout import read_list

pytestmark = pytest.mark.slow


def test_checkpoints_round_trip_byte_identical(trained_run, tmp_path):
    sections = parse_cfg(trained_run.cfg)
    check_classes(sections, trained_run.names)
    assert trained_run.checkpoints
    for iteration, path in trained_run.checkpoints:
        weights = read_weights(path, sections)
        assert weights.header_size == 20 and weights.seen > 0, iteration
        copy = write_weights(tmp_path / f"copy_{iteration}.weights", weights)
        assert copy.read_bytes() == path.read_bytes()


def test_partial_of_a_checkpoint_is_accepted_by_darknet(darknet_bin, trained_run, tmp_path):
    import subprocess

    sections = parse_cfg(trained_run.cfg)
    out = write_weights(
        tmp_path / "p13.weights", partial(read_weights(trained_run.final_weights, sections), 13)
    )
    head = tmp_path / "head.cfg"
    head.write_text(render_cfg(sections[:14]))
    back = tmp_path / "back.weights"
    subprocess.run(
        [str(darknet_bin), "partial", str(head), str(out), str(back), "100"],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert back.read_bytes() == out.read_bytes()


def test_forward_matches_darknet_on_the_final_checkpoint(darknet_bin, trained_run, tmp_path):
    model = DarknetModel.load(trained_run.cfg, trained_run.final_weights)
    images = []
    for source in read_list(trained_run.data_dir / "valid.txt")[:6]:
        # PNG at the network size: darknet's letterbox is then the identity and both sides
        # decode the same pixels (stb_image and OpenCV decode JPEG slightly differently)
        png = tmp_path / "png" / f"{source.stem}.png"
        png.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(png), cv2.resize(cv2.imread(str(source)), model.size, interpolation=cv2.INTER_AREA))
        images.append(png)
    theirs = run_darknet_valid(
        darknet_bin, trained_run.cfg, trained_run.final_weights, images, trained_run.names, tmp_path / "valid"
    )
    # A barely trained network (rolling variances still near darknet's initial 0) has raw
    # outputs in the thousands; float32 sums taken in a different order then differ by a few
    # ulps of those values, which moves a softmax probability by ~1e-6 of the largest output.
    largest = max(
        float(np.abs(model.forward(preprocess(cv2.imread(str(p)), model.size))).max()) for p in images
    )
    prob_tol = max(PROB_TOL, 1e-6 * largest)
    result = compare_rows(our_rows(model, images), theirs, prob_tol=prob_tol, coord_tol=COORD_TOL)
    print(f"largest |raw output| {largest:.1f}, prob tolerance {prob_tol:.2e}: {result.summary()}")
    assert result.ok, result.summary()
    assert result.matched == len(theirs) > 0
