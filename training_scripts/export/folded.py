"""cfg + weights → inference-only layer parameters, batch norm folded into each convolution.

darknet's test-mode convolution with batch norm is (pjreddie src/convolutional_layer.c,
``normalize_cpu``)::

    y = scales * (conv(x, W) - rolling_mean) / (sqrt(rolling_variance) + 1e-6) + biases

which is one convolution with per-filter scaled weights and a bias::

    k = scales / (sqrt(rolling_variance) + 1e-6)
    y = conv(x, W * k) + (biases - rolling_mean * k)

Every exporter (TensorFlow graph, and through it ONNX / OpenVINO / NCS) builds from the
:class:`FoldedNetwork` made here, so they all share one set of numbers. Pure numpy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from edge_image.contract.decode import RegionSpec
from edge_image.contract.errors import UserError
from training_scripts.darknet.cfg import LayerInfo, Section, describe, net_channels, net_size, region_spec
from training_scripts.darknet.forward import BN_EPSILON, LEAKY_SLOPE
from training_scripts.darknet.weights import ConvWeights, DarknetWeights

Activation = Literal["leaky", "linear", "relu", "logistic"]


@dataclass(frozen=True)
class FoldedConv:
    """One convolution: ``kernel`` is HWIO float32 ``(size, size, in_c, filters)``.

    darknet pads ``pad`` pixels of zeros on every side (``pad = size // 2`` for ``pad=1``)
    and then slides a VALID window with ``stride``.
    """

    index: int
    kernel: np.ndarray
    bias: np.ndarray
    stride: int
    pad: int
    activation: Activation

    @property
    def filters(self) -> int:
        """Output channels."""
        return int(self.kernel.shape[3])


@dataclass(frozen=True)
class MaxPool:
    """A max pool whose darknet geometry equals TensorFlow's ``padding`` mode.

    ``tf_padding`` is ``"SAME"`` or ``"VALID"``: :func:`pool_padding` proves that the
    TensorFlow window placement is darknet's for the layer's input size.
    """

    index: int
    size: int
    stride: int
    tf_padding: Literal["SAME", "VALID"]


Layer = FoldedConv | MaxPool


@dataclass(frozen=True)
class FoldedNetwork:
    """The network the exporters build: input ``(height, width, channels)``, layers, region."""

    input_size: tuple[int, int, int]
    layers: tuple[Layer, ...]
    output_size: tuple[int, int, int]
    spec: RegionSpec

    @property
    def leaky_slope(self) -> float:
        """darknet's leaky ReLU slope."""
        return LEAKY_SLOPE


def fold_conv(info: LayerInfo, params: ConvWeights) -> FoldedConv:
    """Fold one darknet conv layer (weights ``(filters, c, k, k)``) into HWIO kernel + bias.

    >>> from training_scripts.darknet.weights import ConvWeights
    >>> from training_scripts.darknet.cfg import LayerInfo
    >>> info = LayerInfo(0, "convolutional", 1, 4, 4, 1, 4, 4, filters=1, size=1, stride=1,
    ...                  batch_normalize=True, activation="linear")
    >>> p = ConvWeights(0, np.array([0.5], np.float32), np.full((1, 1, 1, 1), 2.0, np.float32),
    ...                 np.array([3.0], np.float32), np.array([1.0], np.float32), np.array([4.0], np.float32))
    >>> f = fold_conv(info, p)
    >>> round(float(f.kernel[0, 0, 0, 0]), 4), round(float(f.bias[0]), 4)  # 2*3/2, 0.5 - 1*3/2
    (3.0, -1.0)
    """
    weights = params.weights.astype(np.float64)
    expected = (info.filters, info.in_c, info.size, info.size)
    if weights.shape != expected:
        raise UserError(f"layer {info.index}: weights shape {weights.shape}, cfg needs {expected}")
    if params.scales is not None:
        if params.rolling_mean is None or params.rolling_variance is None:
            raise UserError(f"layer {info.index}: batch norm scales without rolling mean/variance")
        if np.any(params.rolling_variance < 0):
            raise UserError(f"layer {info.index}: negative rolling variance in the weights")
        # float32 like darknet, then folded in float64 to add no rounding of our own
        std = np.sqrt(params.rolling_variance.astype(np.float32)) + np.float32(BN_EPSILON)
        k = (params.scales.astype(np.float32) / std).astype(np.float64)
        bias = params.biases.astype(np.float64) - params.rolling_mean.astype(np.float64) * k
        weights = weights * k[:, None, None, None]
    else:
        bias = params.biases.astype(np.float64)
    kernel = np.ascontiguousarray(weights.transpose(2, 3, 1, 0), dtype=np.float32)
    if not (np.all(np.isfinite(kernel)) and np.all(np.isfinite(bias))):
        raise UserError(f"layer {info.index}: weights contain NaN or infinity (diverged training?)")
    return FoldedConv(
        index=info.index,
        kernel=kernel,
        bias=bias.astype(np.float32),
        stride=info.stride,
        pad=info.pad,
        activation=info.activation,  # type: ignore[arg-type]
    )


def pool_padding(info: LayerInfo) -> Literal["SAME", "VALID"]:
    """TensorFlow padding mode that places darknet's max-pool windows exactly, or UserError.

    darknet (src/maxpool_layer.c): output ``(in + padding - size) // stride + 1``, window
    origin ``-(padding // 2)``, out-of-image cells ignored. TensorFlow SAME: output
    ``ceil(in / stride)``, ``pad_total = max((out - 1) * stride + size - in, 0)`` split
    ``pad_total // 2`` before, and padded cells never win. VALID: no padding. Tiny-YOLOv2's
    stride-2 pools (even inputs) are both SAME and VALID; its size-2 stride-1 pool
    (padding 1: 0 before, 1 after) is SAME only.

    >>> from training_scripts.darknet.cfg import LayerInfo
    >>> pool = lambda n, k, s, p: LayerInfo(0, "maxpool", 1, n, n, 1, (n + p - k) // s + 1,
    ...                                     (n + p - k) // s + 1, size=k, stride=s, pad=p)
    >>> pool_padding(pool(13, 2, 1, 1)), pool_padding(pool(26, 2, 2, 1)), pool_padding(pool(13, 2, 2, 1))
    ('SAME', 'SAME', 'SAME')
    """
    before = info.pad // 2
    for mode in ("SAME", "VALID"):
        ok = True
        for n, out in ((info.in_h, info.out_h), (info.in_w, info.out_w)):
            if mode == "SAME":
                tf_out = math.ceil(n / info.stride)
                tf_before = max((tf_out - 1) * info.stride + info.size - n, 0) // 2
            else:
                tf_out = (n - info.size) // info.stride + 1
                tf_before = 0
            ok = ok and tf_out == out and tf_before == before
        if ok:
            return mode  # type: ignore[return-value]
    raise UserError(
        f"layer {info.index}: maxpool size={info.size} stride={info.stride} padding={info.pad} on "
        f"{info.in_w}x{info.in_h} has no TensorFlow SAME/VALID equivalent (change the input size)"
    )


def fold(sections: Sequence[Section], weights: DarknetWeights) -> FoldedNetwork:
    """Fold a parsed cfg and its weights into a :class:`FoldedNetwork` (UserError if unsupported)."""
    infos = describe(sections)
    params = weights.by_layer()
    layers: list[Layer] = []
    for info in infos:
        if info.kind == "convolutional":
            if info.index not in params:
                raise UserError(f"weights have no parameters for conv layer {info.index}")
            layers.append(fold_conv(info, params[info.index]))
        elif info.kind == "maxpool":
            layers.append(MaxPool(info.index, info.size, info.stride, pool_padding(info)))
        elif info.kind == "region":
            if info.index != len(infos) - 1:
                raise UserError(f"layer {info.index}: [region] must be the last layer")
        else:
            raise UserError(f"layer {info.index}: [{info.kind}] cannot be exported")
    last = [i for i in infos if i.kind != "region"][-1]
    width, height = net_size(sections)
    return FoldedNetwork(
        input_size=(height, width, net_channels(sections)),
        layers=tuple(layers),
        output_size=(last.out_h, last.out_w, last.out_c),
        spec=region_spec(sections),
    )
