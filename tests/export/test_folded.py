"""Batch-norm folding and darknet → TensorFlow max-pool geometry (pure numpy, fast)."""

from __future__ import annotations

import numpy as np
import pytest

from edge_image.contract.errors import UserError
from training_scripts.darknet.cfg import LayerInfo, parse_cfg
from training_scripts.darknet.forward import DarknetModel
from training_scripts.darknet.profiles import generate_cfg
from training_scripts.darknet.weights import random_weights
from training_scripts.export.folded import FoldedConv, MaxPool, fold, pool_padding

ONE_BY_ONE = (
    "[net]\nwidth=8\nheight=8\nchannels=3\n"
    "[convolutional]\nbatch_normalize=1\nfilters=12\nsize=1\nstride=1\npad=1\nactivation=linear\n"
    "[region]\nclasses=1\nnum=2\nanchors=1,1,2,2\n"
)


def pool(n: int, size: int, stride: int, padding: int) -> LayerInfo:
    out = (n + padding - size) // stride + 1
    return LayerInfo(0, "maxpool", 1, n, n, 1, out, out, size=size, stride=stride, pad=padding)


def test_folded_1x1_conv_equals_darknet_batch_norm() -> None:
    cfg = parse_cfg(ONE_BY_ONE)
    weights = random_weights(cfg, seed=4)
    conv = fold(cfg, weights).layers[0]
    assert isinstance(conv, FoldedConv) and conv.kernel.shape == (1, 1, 3, 12) and conv.pad == 0
    x = np.random.default_rng(0).random((2, 8, 8, 3), dtype=np.float32)
    folded = x @ conv.kernel[0, 0] + conv.bias
    np.testing.assert_allclose(folded, DarknetModel(cfg, weights).forward(x), atol=1e-5)


def test_tiny_yolo_416_layers() -> None:
    cfg = parse_cfg(generate_cfg([f"c{i}" for i in range(20)], "gpu", train_images=10))
    network = fold(cfg, random_weights(cfg, seed=0))
    pools = [layer for layer in network.layers if isinstance(layer, MaxPool)]
    convs = [layer for layer in network.layers if isinstance(layer, FoldedConv)]
    assert [(p.size, p.stride, p.tf_padding) for p in pools] == [(2, 2, "SAME")] * 5 + [(2, 1, "SAME")]
    assert [c.pad for c in convs] == [1] * 8 + [0]
    assert [c.activation for c in convs] == ["leaky"] * 8 + ["linear"]
    assert network.input_size == (416, 416, 3)
    assert network.output_size == (13, 13, 125)
    assert network.spec.classes == 20 and network.spec.num == 5


@pytest.mark.parametrize(
    ("n", "size", "stride", "padding", "mode"),
    [
        (13, 2, 1, 1, "SAME"),  # tiny-yolo's last pool: 0 before, 1 after, keeps 13x13
        (26, 2, 2, 1, "SAME"),  # even input: no padding needed
        (13, 2, 2, 1, "SAME"),  # odd input: darknet pads 1 after, like TF SAME
        (12, 3, 1, 0, "VALID"),
        (12, 3, 1, 2, "SAME"),  # 1 before, 1 after
    ],
)
def test_pool_geometry(n: int, size: int, stride: int, padding: int, mode: str) -> None:
    assert pool_padding(pool(n, size, stride, padding)) == mode


def test_pool_without_tf_equivalent_is_refused() -> None:
    with pytest.raises(UserError, match="no TensorFlow SAME/VALID equivalent"):
        pool_padding(pool(12, 2, 1, 2))  # darknet: 13 outputs from 12; TensorFlow: 12 (SAME) or 11


def test_diverged_weights_are_refused() -> None:
    cfg = parse_cfg(ONE_BY_ONE)
    weights = random_weights(cfg, seed=0)
    weights.layers[0].weights[0, 0, 0, 0] = np.nan
    with pytest.raises(UserError, match="layer 0: weights contain NaN"):
        fold(cfg, weights)
