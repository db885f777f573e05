"""The numpy forward pass + shared decoder against real darknet's ``detector valid``.

Tolerance (stated claim): for the same cfg, weights and images (PNG, already at the network
size so darknet's letterbox is the identity), every detection darknet prints at thresh .005 /
NMS .45 has exactly one partner of ours, and vice versa, with |prob| difference <= 2e-5
(darknet prints 6 decimals) and every box corner within 0.01 px.
"""

from __future__ import annotations

import time
from dataclasses import replace

import cv2
import numpy as np
import pytest

from edge_image.contract.decode import decode
from edge_image.contract.errors import UserError
from tests.darknet.conftest import write_images
from training_scripts.darknet.cfg import parse_cfg
from training_scripts.darknet.forward import DarknetModel, preprocess
from training_scripts.darknet.valid import (
    VALID_NMS,
    VALID_THRESH,
    compare_rows,
    detections_to_rows,
    run_darknet_valid,
)
from training_scripts.darknet.weights import ConvWeights, DarknetWeights, random_weights, write_weights

PROB_TOL = 2e-5
COORD_TOL = 0.01


def our_rows(model: DarknetModel, paths):
    rows = []
    for path in paths:
        image = cv2.imread(str(path))
        output = model.forward(preprocess(image, model.size))[0]
        detections = decode(output, model.spec, thresh=VALID_THRESH, nms_thresh=VALID_NMS)
        rows += detections_to_rows(path.stem, detections, image.shape[1], image.shape[0])
    return rows


def one_layer_model(cfg_text: str, layer: ConvWeights | None = None) -> DarknetModel:
    sections = parse_cfg(cfg_text)
    return DarknetModel(sections, DarknetWeights(layers=[layer] if layer else []))


def test_maxpool_matches_darknet_padding_rule():
    x = np.arange(25, dtype=np.float32).reshape(1, 5, 5, 1)
    # size 2 stride 1, default padding 1: window at (i, j), cells past the right/bottom edge ignored
    same = one_layer_model("[net]\nwidth=5\nheight=5\nchannels=1\n[maxpool]\nsize=2\nstride=1\n").forward(x)
    assert same.shape == (1, 5, 5, 1)
    expected = np.array([[min(i + 1, 4) * 5 + min(j + 1, 4) for j in range(5)] for i in range(5)])
    np.testing.assert_array_equal(same[0, :, :, 0], expected)
    # size 2 stride 2 on an odd size: (5 + 1 - 2) // 2 + 1 = 3, the last window holds one column
    half = one_layer_model("[net]\nwidth=5\nheight=5\nchannels=1\n[maxpool]\nsize=2\nstride=2\n").forward(x)
    np.testing.assert_array_equal(half[0, :, :, 0], [[6, 8, 9], [16, 18, 19], [21, 23, 24]])


def test_batchnorm_epsilon_is_added_to_the_standard_deviation():
    cfg = (
        "[net]\nwidth=2\nheight=1\nchannels=1\n"
        "[convolutional]\nbatch_normalize=1\nfilters=1\nsize=1\nactivation=leaky\n"
    )
    layer = ConvWeights(
        layer=0,
        biases=np.array([0.5], np.float32),
        weights=np.ones((1, 1, 1, 1), np.float32),
        scales=np.array([2.0], np.float32),
        rolling_mean=np.array([0.25], np.float32),
        rolling_variance=np.array([1e-6], np.float32),
    )
    out = one_layer_model(cfg, layer).forward(np.array([[[[0.75], [-0.75]]]], np.float32))[0, 0, :, 0]
    std = np.sqrt(1e-6) + 1e-6  # darknet normalize_cpu; sqrt(var + eps) would give 1.414e-3
    positive = (0.75 - 0.25) / std * 2 + 0.5
    negative = 0.1 * ((-0.75 - 0.25) / std * 2 + 0.5)  # leaky slope .1
    np.testing.assert_allclose(out, [positive, negative], rtol=1e-5)


def test_preprocess_is_rgb_over_255_at_net_size():
    image = np.zeros((30, 40, 3), np.uint8)
    image[..., 0] = 255  # blue in BGR
    batch = preprocess(image, (64, 32))
    assert batch.shape == (1, 32, 64, 3) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch[0, 0, 0], [0.0, 0.0, 1.0])
    same = preprocess(image, (40, 30))
    assert np.array_equal(same[0], image[:, :, ::-1] / np.float32(255))


def test_forward_rejects_wrong_input_and_missing_layers(smoke_cfg):
    _, sections = smoke_cfg
    model = DarknetModel(sections, random_weights(sections, seed=0))
    with pytest.raises(UserError, match=r"model input must be \(N, 128, 128, 3\), got \(1, 64, 64, 3\)"):
        model.forward(np.zeros((1, 64, 64, 3), np.float32))
    weights = random_weights(sections, seed=0)
    weights.layers = weights.layers[:-1]
    with pytest.raises(UserError, match="no parameters for conv layer 14"):
        DarknetModel(sections, weights)


def test_matches_darknet_valid_on_cpu_smoke_cfg(darknet_bin, smoke_cfg, tmp_path):
    cfg, sections = smoke_cfg
    weights = random_weights(sections, seed=11)
    weights_path = write_weights(tmp_path / "w.weights", weights)
    images = write_images(tmp_path / "images", 128, 6, seed=1)
    theirs = run_darknet_valid(darknet_bin, cfg, weights_path, images, ["a", "b", "c"], tmp_path / "valid")
    model = DarknetModel.load(cfg, weights_path)
    result = compare_rows(our_rows(model, images), theirs, prob_tol=PROB_TOL, coord_tol=COORD_TOL)
    assert result.ok, result.summary()
    assert result.matched == len(theirs) > 500  # thousands of boxes, a strong check
    assert {r.image_id for r in theirs} == {p.stem for p in images}

    # negative control: a 1% change in one bias of the last layer must be caught
    last = weights.layers[-1]
    nudged = replace(last, biases=last.biases * np.float32(1.01))
    altered = DarknetModel(sections, replace(weights, layers=[*weights.layers[:-1], nudged]))
    assert not compare_rows(our_rows(altered, images), theirs, prob_tol=PROB_TOL, coord_tol=COORD_TOL).ok


def test_matches_darknet_valid_on_yolov2_tiny_voc_416(darknet_bin, voc_cfg, tmp_path):
    cfg, sections = voc_cfg
    weights_path = write_weights(tmp_path / "voc.weights", random_weights(sections, seed=12))
    images = write_images(tmp_path / "images", 416, 4, seed=2)
    names = [f"class{i}" for i in range(20)]
    start = time.perf_counter()
    theirs = run_darknet_valid(darknet_bin, cfg, weights_path, images, names, tmp_path / "valid")
    darknet_s = time.perf_counter() - start
    start = time.perf_counter()
    model = DarknetModel.load(cfg, weights_path)
    ours = our_rows(model, images)
    ours_s = time.perf_counter() - start
    result = compare_rows(ours, theirs, prob_tol=PROB_TOL, coord_tol=COORD_TOL)
    assert result.ok, result.summary()
    assert result.matched == len(theirs) > 1000
    # speed, measured against darknet on the same machine at the same moment (the CPU is
    # shared, so absolute times vary): loading + 4 images at 416x416 no slower than 2x darknet
    print(f"416x416 x4: ours {ours_s:.2f} s, darknet valid {darknet_s:.2f} s")
    assert ours_s < 2 * darknet_s, (ours_s, darknet_s)


def test_detect_resizes_and_decodes(smoke_cfg):
    _, sections = smoke_cfg
    model = DarknetModel(sections, random_weights(sections, seed=13))
    image = (np.random.default_rng(0).random((90, 200, 3)) * 255).astype(np.uint8)
    detections = model.detect(image, thresh=0.2, nms=0.45)
    raw = model.forward(preprocess(image, (128, 128)))[0]
    expected = decode(raw, model.spec, thresh=0.2, nms_thresh=0.45)
    assert len(detections) == len(expected) > 0
    np.testing.assert_array_equal(detections.boxes, expected.boxes)


def test_run_darknet_valid_pads_short_lists(darknet_bin, smoke_cfg, tmp_path):
    cfg, sections = smoke_cfg
    weights_path = write_weights(tmp_path / "w.weights", random_weights(sections, seed=14))
    images = write_images(tmp_path / "images", 128, 1, seed=3)
    rows = run_darknet_valid(darknet_bin, cfg, weights_path, images, ["a", "b", "c"], tmp_path / "valid")
    assert rows and {r.image_id for r in rows} == {"img0"}
    model = DarknetModel.load(cfg, weights_path)
    assert compare_rows(our_rows(model, images), rows, prob_tol=PROB_TOL, coord_tol=COORD_TOL).ok


@pytest.mark.parametrize(
    ("activation", "expected"),
    [
        ("leaky", [-0.2, 0.0, 3.0]),
        ("linear", [-2.0, 0.0, 3.0]),
        ("relu", [0.0, 0.0, 3.0]),
        ("logistic", [1 / (1 + np.exp(2.0)), 0.5, 1 / (1 + np.exp(-3.0))]),
    ],
)
def test_activations(activation, expected):
    cfg = (
        f"[net]\nwidth=3\nheight=1\nchannels=1\n[convolutional]\nfilters=1\nsize=1\nactivation={activation}\n"
    )
    layer = ConvWeights(0, np.zeros(1, np.float32), np.ones((1, 1, 1, 1), np.float32))
    out = one_layer_model(cfg, layer).forward(np.array([[[[-2.0], [0.0], [3.0]]]], np.float32))
    np.testing.assert_allclose(out[0, 0, :, 0], expected, rtol=1e-6)
