"""Reference forward pass of a Tiny-YOLOv2 darknet model on the CPU, in numpy.

It reproduces darknet's test-mode arithmetic (pjreddie src/convolutional_layer.c,
batchnorm_layer.c, maxpool_layer.c, activations.h):

* convolution: zero padding ``pad`` on every side, im2col + one BLAS matmul per layer;
* batch norm: ``(x - rolling_mean) / (sqrt(rolling_variance) + .000001)`` (darknet's
  ``normalize_cpu``: epsilon added to the standard deviation, not the variance), times
  ``scales``, plus ``biases``; without batch norm just ``+ biases``;
* activations: ``leaky`` = ``x if x > 0 else .1 * x``, ``linear``, ``relu``, ``logistic``;
* maxpool: window origin ``-(padding // 2)``, output ``(w + padding - size) // stride + 1``,
  out-of-image cells ignored. With the default ``padding = size - 1`` the size-2 stride-1
  pool of Tiny-YOLOv2 pads one column/row on the right/bottom only and keeps 13x13.

The model returns the raw output of the last convolution (before the region layer's
logistic/softmax), channel-minor ``(N, H, W, C)`` with channel ``a * (5 + classes) + k``:
darknet's CHW memory order transposed. :func:`edge_image.contract.decode.decode` turns it into boxes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_image.contract.decode import Detections, RegionSpec, decode
from edge_image.contract.errors import UserError
from training_scripts.darknet.cfg import LayerInfo, Section, describe, net_size, parse_cfg, region_spec
from training_scripts.darknet.weights import ConvWeights, DarknetWeights, read_weights

# darknet normalize_cpu: x = (x - mean) / (sqrt(variance) + .000001f)
BN_EPSILON = 1e-6
LEAKY_SLOPE = 0.1


def preprocess(image_bgr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """OpenCV BGR uint8 image → ``(1, h, w, 3)`` float32 RGB in 0..1 at ``size = (w, h)``.

    Resizes with ``cv2.INTER_LINEAR`` (a plain stretch, no letterbox: the edge service does
    the same). An image already at ``size`` is passed through unchanged, so it equals what
    darknet feeds the network for that image.
    """
    import cv2

    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        raise UserError(f"expected a colour image (H, W, 3), got shape {image_bgr.shape}")
    width, height = size
    if image_bgr.shape[1] != width or image_bgr.shape[0] != height:
        image_bgr = cv2.resize(image_bgr, (width, height), interpolation=cv2.INTER_LINEAR)
    rgb = image_bgr[:, :, ::-1].astype(np.float32) / np.float32(255.0)
    return rgb[None]


def _activate(x: np.ndarray, activation: str) -> np.ndarray:
    if activation == "leaky":
        return np.where(x > 0, x, x * np.float32(LEAKY_SLOPE))
    if activation == "relu":
        return np.maximum(x, np.float32(0))
    if activation == "logistic":
        return (np.float32(0.5) * (np.float32(1) + np.tanh(np.float32(0.5) * x))).astype(np.float32)
    return x


@dataclass
class _Conv:
    info: LayerInfo
    matrix: np.ndarray  # (size*size*c, filters): im2col rows in (ky, kx, c) order
    scale: np.ndarray  # per filter multiplier after the matmul
    shift: np.ndarray  # per filter offset

    @classmethod
    def build(cls, info: LayerInfo, params: ConvWeights) -> _Conv:
        k, c, f = info.size, info.in_c, info.filters
        matrix = np.ascontiguousarray(
            params.weights.astype(np.float32).transpose(2, 3, 1, 0).reshape(k * k * c, f)
        )
        if params.scales is not None:
            assert params.rolling_mean is not None and params.rolling_variance is not None
            std = np.sqrt(params.rolling_variance.astype(np.float32)) + np.float32(BN_EPSILON)
            scale = (params.scales / std).astype(np.float32)
            shift = (params.biases - params.rolling_mean * scale).astype(np.float32)
        else:
            scale = np.ones(f, np.float32)
            shift = params.biases.astype(np.float32)
        return cls(info, matrix, scale, shift)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        info = self.info
        n = x.shape[0]
        k, s, p = info.size, info.stride, info.pad
        if p:
            x = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
        oh, ow = info.out_h, info.out_w
        if k == 1 and s == 1:
            cols = x.reshape(n * oh * ow, info.in_c)
        else:
            cols = np.empty((n, oh, ow, k * k * info.in_c), np.float32)
            c = info.in_c
            for ky in range(k):
                for kx in range(k):
                    start = (ky * k + kx) * c
                    cols[..., start : start + c] = x[
                        :, ky : ky + s * (oh - 1) + 1 : s, kx : kx + s * (ow - 1) + 1 : s, :
                    ]
            cols = cols.reshape(n * oh * ow, k * k * c)
        out = cols @ self.matrix
        out *= self.scale
        out += self.shift
        return _activate(out, info.activation).reshape(n, oh, ow, info.filters)


def _maxpool(x: np.ndarray, info: LayerInfo) -> np.ndarray:
    before = info.pad // 2
    k, s, oh, ow = info.size, info.stride, info.out_h, info.out_w
    after_h = max(0, (oh - 1) * s + k - before - info.in_h)
    after_w = max(0, (ow - 1) * s + k - before - info.in_w)
    x = np.pad(x, ((0, 0), (before, after_h), (before, after_w), (0, 0)), constant_values=-np.inf)
    out = None
    for ky in range(k):
        for kx in range(k):
            window = x[:, ky : ky + s * (oh - 1) + 1 : s, kx : kx + s * (ow - 1) + 1 : s, :]
            out = window.copy() if out is None else np.maximum(out, window, out=out)
    assert out is not None
    return out


class DarknetModel:
    """A cfg plus weights, runnable on NHWC float32 batches.

    >>> from training_scripts.darknet.weights import random_weights
    >>> cfg = parse_cfg("[net]\\nwidth=32\\nheight=32\\nchannels=3\\n[convolutional]\\nfilters=12\\n"
    ...                 "size=1\\nactivation=linear\\n[region]\\nclasses=1\\nnum=2\\nanchors=1,1,2,2\\n")
    >>> model = DarknetModel(cfg, random_weights(cfg, seed=1))
    >>> model.forward(np.zeros((2, 32, 32, 3), np.float32)).shape
    (2, 32, 32, 12)
    """

    chunk = 8  # images per internal step of forward()

    def __init__(self, sections: Sequence[Section], weights: DarknetWeights) -> None:
        self.sections = list(sections)
        self.layers = describe(self.sections)
        self.size = net_size(self.sections)
        self.spec: RegionSpec | None = (
            region_spec(self.sections) if self.sections[-1].kind == "region" else None
        )
        params = weights.by_layer()
        self._steps: list[tuple[LayerInfo, _Conv | None]] = []
        for info in self.layers:
            if info.kind == "convolutional":
                if info.index not in params:
                    raise UserError(f"weights have no parameters for conv layer {info.index}")
                self._steps.append((info, _Conv.build(info, params[info.index])))
            elif info.kind == "maxpool":
                self._steps.append((info, None))
        self.weights = weights

    @classmethod
    def load(cls, cfg_path: str | os.PathLike[str], weights_path: str | os.PathLike[str]) -> DarknetModel:
        """Read ``cfg_path`` and ``weights_path`` (errors as :class:`UserError`)."""
        sections = parse_cfg(Path(cfg_path))
        return cls(sections, read_weights(weights_path, sections))

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(height, width, channels)`` one image must have."""
        first = self.layers[0]
        return first.in_h, first.in_w, first.in_c

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """``(N, h, w, c)`` float32 RGB 0..1 → raw last-conv output ``(N, H, W, C)``."""
        x = np.asarray(batch, dtype=np.float32)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[1:] != self.input_shape:
            raise UserError(
                f"model input must be (N, {', '.join(map(str, self.input_shape))}), got {x.shape}"
            )
        if x.shape[0] > self.chunk:  # bounds the im2col buffers (~25 MB per 416x416 image)
            return np.concatenate(
                [self.forward(x[i : i + self.chunk]) for i in range(0, x.shape[0], self.chunk)]
            )
        for info, conv in self._steps:
            x = conv(x) if conv is not None else _maxpool(x, info)
        return x

    def detect(self, image_bgr: np.ndarray, thresh: float = 0.25, nms: float = 0.45) -> Detections:
        """One BGR image → :class:`Detections` (boxes normalized to the image, darknet decoding)."""
        if self.spec is None:
            raise UserError("cfg has no [region] layer: cannot decode detections")
        output = self.forward(preprocess(image_bgr, self.size))
        return decode(output[0], self.spec, layout="hwc", thresh=thresh, nms_thresh=nms)
