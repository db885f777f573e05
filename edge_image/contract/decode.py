"""YOLOv2 region-layer decoding and per-class NMS, vectorized, shared by every backend.

The raw network output has ``num * (5 + classes)`` channels per grid cell; channel
``a * (5 + classes) + k`` holds, for anchor ``a``: ``k=0..3`` → tx, ty, tw, th; ``k=4`` →
objectness logit; ``k=5..`` → class logits. The same channel order holds for darknet's
CHW memory layout and for the NHWC output of a TensorFlow / darkflow graph (and the NCS,
which returns channel-minor 13x13xN), so the two layouts differ only by a transpose,
done once in :func:`to_grid`.

Decoding follows darknet's ``get_region_detections`` (pjreddie src/region_layer.c):
``x = (col + sigmoid(tx)) / W``, ``y = (row + sigmoid(ty)) / H``,
``w = exp(tw) * anchor_w / W``, ``h = exp(th) * anchor_h / H``, objectness
``sigmoid(to)``, class probability ``objectness * softmax(classes)`` zeroed when not above
``thresh``; then ``do_nms_sort``: per class, greedy suppression of lower-scored boxes whose
IoU with a kept box is above ``nms_thresh``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Layout = Literal["hwc", "chw"]

VOC_TINY_ANCHORS: tuple[float, ...] = (1.08, 1.19, 3.42, 4.41, 6.63, 11.38, 9.42, 5.11, 16.62, 10.52)


@dataclass(frozen=True)
class RegionSpec:
    """What the region layer needs: class count and anchors (flat w,h pairs, grid units).

    >>> RegionSpec(classes=27, anchors=VOC_TINY_ANCHORS).channels
    160
    """

    classes: int
    anchors: tuple[float, ...] = VOC_TINY_ANCHORS

    def __post_init__(self) -> None:
        if self.classes < 1:
            raise ValueError(f"classes must be >= 1, got {self.classes}")
        if len(self.anchors) < 2 or len(self.anchors) % 2:
            raise ValueError(f"anchors must be w,h pairs, got {len(self.anchors)} numbers")

    @property
    def num(self) -> int:
        """Number of anchors (boxes predicted per cell)."""
        return len(self.anchors) // 2

    @property
    def channels(self) -> int:
        """Channels of the raw output: ``num * (5 + classes)``."""
        return self.num * (5 + self.classes)


@dataclass(frozen=True)
class Detections:
    """Detections after NMS, one row per (box, class) above threshold, best score first.

    ``boxes`` are ``[x1, y1, x2, y2]`` normalized to the network input (0..1, not clipped);
    ``scores`` are objectness × class probability; ``class_ids`` index the label list.
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @classmethod
    def empty(cls) -> Detections:
        """No detections."""
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    def to_pixels(self, width: int, height: int) -> np.ndarray:
        """Boxes as pixel ``[x1, y1, x2, y2]`` for an image of ``width`` x ``height``, clipped.

        >>> d = Detections(np.array([[-0.1, 0.25, 0.5, 1.2]]), np.array([0.9]), np.array([0]))
        >>> d.to_pixels(100, 200).tolist()
        [[0.0, 50.0, 50.0, 200.0]]
        """
        scale = np.array([width, height, width, height], dtype=np.float64)
        return np.clip(self.boxes.astype(np.float64) * scale, 0.0, scale)

    def to_records(self, names: Sequence[str], width: int, height: int) -> list[dict[str, object]]:
        """JSON-ready dicts: ``{"class_id", "label", "score", "box": [x1, y1, x2, y2] pixels}``."""
        pixels = self.to_pixels(width, height)
        return [
            {
                "class_id": int(c),
                "label": names[int(c)] if int(c) < len(names) else str(int(c)),
                "score": round(float(s), 5),
                "box": [round(float(v), 1) for v in box],
            }
            for box, s, c in zip(pixels, self.scores, self.class_ids, strict=True)
        ]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # 0.5 * (1 + tanh(x / 2)) equals 1 / (1 + exp(-x)) without overflow warnings.
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _as_3d(output: np.ndarray, spec: RegionSpec, layout: Layout) -> np.ndarray:
    """One raw output as a 3-D float32 array in its own layout (no copy when already float32)."""
    if layout not in ("hwc", "chw"):
        raise ValueError(f"unknown layout {layout!r} (use 'hwc' or 'chw')")
    arr = np.asarray(output, dtype=np.float32)
    if arr.ndim == 4:
        if arr.shape[0] != 1:
            raise ValueError(f"expected a batch of one, got shape {arr.shape}")
        arr = arr[0]
    if arr.ndim == 1:
        cells = arr.size // spec.channels
        side = round(cells**0.5)
        if side * side * spec.channels != arr.size:
            raise ValueError(f"cannot reshape {arr.size} values into a square grid of {spec.channels}")
        arr = arr.reshape((side, side, spec.channels) if layout == "hwc" else (spec.channels, side, side))
    if arr.ndim != 3:
        raise ValueError(f"expected a 3-D output, got shape {arr.shape}")
    c = arr.shape[2] if layout == "hwc" else arr.shape[0]
    if c != spec.channels:
        raise ValueError(f"output has {c} channels, the model spec needs {spec.channels}")
    return arr


def to_grid(output: np.ndarray, spec: RegionSpec, layout: Layout = "hwc") -> np.ndarray:
    """Reshape one raw output to ``(H, W, num, 5 + classes)`` float32.

    ``layout="hwc"``: ``(H, W, C)`` or ``(1, H, W, C)`` (TensorFlow, ONNX from TF, NCS).
    ``layout="chw"``: ``(C, H, W)`` or ``(1, C, H, W)`` (darknet, OpenCV DNN, OpenVINO IR
    converted with NCHW). A flat vector is accepted when the grid is square.

    >>> to_grid(np.zeros((1, 13, 13, 160)), RegionSpec(27)).shape
    (13, 13, 5, 32)
    """
    arr = _as_3d(output, spec, layout)
    if layout == "chw":
        arr = np.transpose(arr, (1, 2, 0))
    h, w, _ = arr.shape
    return arr.reshape(h, w, spec.num, 5 + spec.classes)


def region_boxes(
    output: np.ndarray, spec: RegionSpec, layout: Layout = "hwc"
) -> tuple[np.ndarray, np.ndarray]:
    """All candidate boxes and class probabilities, before thresholding.

    Returns ``(boxes, probs)``: ``boxes`` is ``(H*W*num, 4)`` ``[cx, cy, w, h]`` normalized
    and ``probs`` is ``(H*W*num, classes)`` objectness × softmax, in darknet's cell order
    (row, column, anchor).
    """
    grid = to_grid(output, spec, layout).astype(np.float64)
    h, w = grid.shape[:2]
    anchors = np.asarray(spec.anchors, dtype=np.float64).reshape(spec.num, 2)
    cols = np.arange(w, dtype=np.float64)[None, :, None]
    rows = np.arange(h, dtype=np.float64)[:, None, None]
    cx = (cols + _sigmoid(grid[..., 0])) / w
    cy = (rows + _sigmoid(grid[..., 1])) / h
    bw = np.exp(grid[..., 2]) * anchors[:, 0] / w
    bh = np.exp(grid[..., 3]) * anchors[:, 1] / h
    objectness = _sigmoid(grid[..., 4])
    logits = grid[..., 5:]
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs = objectness[..., None] * exp / exp.sum(axis=-1, keepdims=True)
    boxes = np.stack([cx, cy, bw, bh], axis=-1).reshape(-1, 4)
    return boxes, probs.reshape(-1, spec.classes)


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """``[cx, cy, w, h]`` → ``[x1, y1, x2, y2]`` (same units).

    >>> cxcywh_to_xyxy(np.array([[0.5, 0.5, 0.2, 0.4]])).round(3).tolist()
    [[0.4, 0.3, 0.6, 0.7]]
    """
    half = boxes[:, 2:4] / 2.0
    return np.concatenate([boxes[:, 0:2] - half, boxes[:, 0:2] + half], axis=1)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``[x1, y1, x2, y2]`` boxes: ``(len(a), len(b))``.

    >>> iou_matrix(np.array([[0, 0, 2, 2]]), np.array([[1, 1, 3, 3], [0, 0, 2, 2]])).round(4).tolist()
    [[0.1429, 1.0]]
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.maximum(iw, 0.0) * np.maximum(ih, 0.0)
    area_a = np.maximum(a[:, 2] - a[:, 0], 0.0) * np.maximum(a[:, 3] - a[:, 1], 0.0)
    area_b = np.maximum(b[:, 2] - b[:, 0], 0.0) * np.maximum(b[:, 3] - b[:, 1], 0.0)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


# Up to this many candidate boxes one IoU matrix serves all classes (fewer numpy calls); above
# it NMS works class by class, so the matrices stay small (sum of squares per class).
_NMS_DENSE_MAX = 96


def _suppressed_fixed_point(overlap: np.ndarray) -> np.ndarray:
    """Keep vector of greedy NMS given ``overlap[i, j]`` (i before j in score order, IoU > t).

    ``keep[j] = not any(keep[i] and overlap[i, j])`` is solved by iterating from all-kept;
    ``overlap`` is strictly upper triangular, so each step fixes at least one more leading
    entry and the loop ends after (longest suppression chain + 1) steps, usually 2 or 3.
    """
    keep = np.ones(overlap.shape[0], dtype=bool)
    while True:
        new_keep = ~np.any(overlap[keep], axis=0)
        if np.array_equal(new_keep, keep):
            return keep
        keep = new_keep


def nms(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou_thresh: float) -> np.ndarray:
    """Greedy per-class NMS; returns kept indices sorted by descending score.

    Exactly darknet's ``do_nms_sort`` result (a box is dropped when a kept, higher-scored
    box of the same class overlaps it by more than ``iou_thresh``), computed without a
    per-box loop: the keep vector is the fixed point of
    ``keep[j] = not any(keep[i] and iou[i, j] > t for i before j)``, reached by repeated
    matrix steps (each step fixes at least one more leading entry; a few suffice). Up to
    ``_NMS_DENSE_MAX`` boxes, one IoU matrix masked by "same class" serves all classes.

    >>> b = np.array([[0, 0, 1, 1], [0, 0, 1, 0.9], [0, 0, 1, 1]], dtype=float)
    >>> nms(b, np.array([0.9, 0.8, 0.7]), np.array([0, 0, 1]), 0.45).tolist()
    [0, 2]
    """
    scores = np.asarray(scores)
    n = int(scores.shape[0])
    if n <= 1:
        return np.zeros(n, dtype=np.int64)
    boxes = np.asarray(boxes, dtype=np.float64)
    class_ids = np.asarray(class_ids)
    order = np.argsort(-scores, kind="stable")
    if n <= _NMS_DENSE_MAX:
        ordered = boxes[order]
        cls = class_ids[order]
        overlap = iou_matrix(ordered, ordered) > iou_thresh
        overlap &= cls[:, None] == cls[None, :]
        overlap &= np.arange(n)[:, None] < np.arange(n)[None, :]
        return order[_suppressed_fixed_point(overlap)].astype(np.int64)
    kept: list[np.ndarray] = []
    for c in np.unique(class_ids):
        members = order[class_ids[order] == c]  # still in descending score order
        overlap = np.triu(iou_matrix(boxes[members], boxes[members]) > iou_thresh, k=1)
        kept.append(members[_suppressed_fixed_point(overlap)])
    result = np.concatenate(kept)
    return result[np.argsort(-scores[result], kind="stable")].astype(np.int64)


def _logit(p: float) -> float:
    """Inverse sigmoid for 0 < p < 1; objectness ``sigmoid(x) > p`` iff ``x > _logit(p)``."""
    return math.log(p / (1.0 - p))


def _candidates(
    arr: np.ndarray, spec: RegionSpec, layout: Layout, thresh: float
) -> tuple[np.ndarray, np.ndarray]:
    """Cells whose objectness may pass ``thresh``: ``(cell indices, rows (n, 5 + classes) float64)``.

    Cell index is darknet's order ``(row * W + col) * num + anchor``. The test runs on the
    raw logits (monotonic sigmoid) with a small margin; the exact test follows on the rows.
    """
    per = 5 + spec.classes
    limit = -np.inf if thresh <= 0.0 else _logit(min(thresh, 1.0 - 1e-7)) - 1e-3
    if layout == "hwc":
        flat = arr.reshape(-1, per)
        cells = np.flatnonzero(flat[:, 4] > limit)
        return cells, flat[cells].astype(np.float64)
    planes = arr.reshape(spec.num, per, -1)  # (anchor, channel, row*W + col)
    anchor, pos = np.nonzero(planes[:, 4, :] > limit)
    cells = pos * spec.num + anchor
    order = np.argsort(cells, kind="stable")
    anchor, pos, cells = anchor[order], pos[order], cells[order]
    return cells, planes[anchor, :, pos].astype(np.float64)


def decode(
    output: np.ndarray,
    spec: RegionSpec,
    *,
    layout: Layout = "hwc",
    thresh: float = 0.25,
    nms_thresh: float = 0.45,
) -> Detections:
    """Raw region output → :class:`Detections` (darknet semantics, see module docstring).

    ``thresh`` is on objectness × class probability (darknet ``-thresh``); ``nms_thresh``
    is the IoU above which a lower-scored box of the same class is suppressed (darknet
    uses .45 in ``detector test`` and ``valid``). Only cells whose objectness logit can
    pass ``thresh`` are decoded, so the cost follows the number of candidates, not the grid.

    >>> out = np.zeros((13, 13, 160), dtype=np.float32)
    >>> out[..., 4::32] = -10.0  # no objects anywhere ...
    >>> out[6, 6, 4] = 10.0  # ... but anchor 0 of the centre cell: sure object, uniform classes
    >>> d = decode(out, RegionSpec(27), thresh=0.02)
    >>> len(d), d.boxes[0].astype(float).round(3).tolist()
    (27, [0.458, 0.454, 0.542, 0.546])
    """
    arr = _as_3d(output, spec, layout)
    h, w = (arr.shape[0], arr.shape[1]) if layout == "hwc" else (arr.shape[1], arr.shape[2])
    cells, rows_ = _candidates(arr, spec, layout, thresh)
    if cells.size == 0:
        return Detections.empty()
    objectness = _sigmoid(rows_[:, 4])
    logits = rows_[:, 5:]
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = (objectness / exp.sum(axis=1))[:, None] * exp
    sel, cls_idx = np.nonzero(probs > thresh)
    if sel.size == 0:
        return Detections.empty()
    cell = cells[sel]
    anchor = cell % spec.num
    col = (cell // spec.num) % w
    row = cell // (spec.num * w)
    anchors = np.asarray(spec.anchors, dtype=np.float64).reshape(spec.num, 2)
    t = rows_[sel, :4]
    cx = (col + _sigmoid(t[:, 0])) / w
    cy = (row + _sigmoid(t[:, 1])) / h
    # An untrained model can emit huge tw/th: like darknet's float maths, the box becomes
    # infinite and its IoUs NaN (which suppress nothing); no warnings for that.
    with np.errstate(over="ignore", invalid="ignore"):
        bw = np.exp(t[:, 2]) * anchors[anchor, 0] / w
        bh = np.exp(t[:, 3]) * anchors[anchor, 1] / h
        xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        scores = probs[sel, cls_idx]
        keep = (
            nms(xyxy, scores, cls_idx, nms_thresh) if nms_thresh < 1.0 else np.argsort(-scores, kind="stable")
        )
        return Detections(
            boxes=xyxy[keep].astype(np.float32),
            scores=scores[keep].astype(np.float32),
            class_ids=cls_idx[keep].astype(np.int64),
        )
