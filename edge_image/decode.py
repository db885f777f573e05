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


def to_grid(output: np.ndarray, spec: RegionSpec, layout: Layout = "hwc") -> np.ndarray:
    """Reshape one raw output to ``(H, W, num, 5 + classes)`` float32.

    ``layout="hwc"``: ``(H, W, C)`` or ``(1, H, W, C)`` (TensorFlow, ONNX from TF, NCS).
    ``layout="chw"``: ``(C, H, W)`` or ``(1, C, H, W)`` (darknet, OpenCV DNN, OpenVINO IR
    converted with NCHW). A flat vector is accepted when the grid is square.

    >>> to_grid(np.zeros((1, 13, 13, 160)), RegionSpec(27)).shape
    (13, 13, 5, 32)
    """
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
    if layout == "chw":
        arr = np.transpose(arr, (1, 2, 0))
    elif layout != "hwc":
        raise ValueError(f"unknown layout {layout!r} (use 'hwc' or 'chw')")
    h, w, c = arr.shape
    if c != spec.channels:
        raise ValueError(f"output has {c} channels, the model spec needs {spec.channels}")
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
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0.0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0.0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0.0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def nms(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou_thresh: float) -> np.ndarray:
    """Greedy per-class NMS; returns kept indices sorted by descending score.

    Exactly darknet's ``do_nms_sort`` result (a box is dropped when a kept, higher-scored
    box of the same class overlaps it by more than ``iou_thresh``), computed without a
    per-box loop: the keep vector is the fixed point of
    ``keep[j] = not any(keep[i] and iou[i, j] > t for i before j)``, reached by repeated
    matrix steps (each step fixes at least one more leading entry; a few suffice).

    >>> b = np.array([[0, 0, 1, 1], [0, 0, 1, 0.9], [0, 0, 1, 1]], dtype=float)
    >>> nms(b, np.array([0.9, 0.8, 0.7]), np.array([0, 0, 1]), 0.45).tolist()
    [0, 2]
    """
    n = int(scores.shape[0])
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    boxes = np.asarray(boxes, dtype=np.float64)
    class_ids = np.asarray(class_ids)
    kept: list[np.ndarray] = []
    for cls in np.unique(class_ids):  # one matrix per class keeps memory at O(boxes per class ** 2)
        members = np.flatnonzero(class_ids == cls)
        order = members[np.argsort(-scores[members], kind="stable")]
        overlap = np.triu(iou_matrix(boxes[order], boxes[order]) > iou_thresh, k=1)
        keep = np.ones(order.size, dtype=bool)
        while True:
            new_keep = ~np.any(overlap & keep[:, None], axis=0)
            if np.array_equal(new_keep, keep):
                break
            keep = new_keep
        kept.append(order[keep])
    result = np.concatenate(kept)
    return result[np.argsort(-scores[result], kind="stable")]


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
    uses .45 in ``detector test`` and ``valid``).
    """
    grid = to_grid(output, spec, layout)
    h, w = grid.shape[:2]
    flat = grid.reshape(-1, 5 + spec.classes)
    objectness = _sigmoid(flat[:, 4])
    # objectness bounds every class probability, so only these cells can pass the threshold
    cells = np.flatnonzero(objectness > thresh)
    if cells.size == 0:
        return Detections.empty()
    rows_ = flat[cells].astype(np.float64)
    logits = rows_[:, 5:]
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = objectness[cells, None] * exp / exp.sum(axis=1, keepdims=True)
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
    bw = np.exp(t[:, 2]) * anchors[anchor, 0] / w
    bh = np.exp(t[:, 3]) * anchors[anchor, 1] / h
    xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
    scores = probs[sel, cls_idx]
    keep = nms(xyxy, scores, cls_idx, nms_thresh) if nms_thresh < 1.0 else np.argsort(-scores, kind="stable")
    return Detections(
        boxes=xyxy[keep].astype(np.float32),
        scores=scores[keep].astype(np.float32),
        class_ids=cls_idx[keep].astype(np.int64),
    )
