"""Detection metrics: greedy matching, precision/recall curves, AP (area under the curve and
VOC2007 11-point), thresholded TP/FP/FN, average IoU.

Semantics follow AlexeyAB darknet's ``validate_detector_map`` (what ``detector map`` prints)
and the PASCAL VOC devkit it copies:

- A detection matches the ground-truth box of the same class, in the same image, with the
  highest IoU; it is a true positive when that IoU is above ``iou_thresh`` (strictly, as
  darknet and the devkit compare ``>``) and the box was not already taken by a higher-scored
  detection. A second detection of a taken box (a duplicate) is a false positive.
- AP "area under the curve" is the all-points interpolated AP (darknet's default since 2019,
  VOC2010+): the area under the precision envelope ``p(r) = max(precision at recall >= r)``.
- AP "11-point" is VOC2007's mean of the envelope at recall 0, 0.1, ..., 1.0 (darknet
  ``-points 11``; the numbers the seed project reported).
- A class with no ground-truth box has no AP (``None``) and is left out of the mean;
  a class with ground truth but no detections has AP 0.

All boxes are ``[x1, y1, x2, y2]`` in one coordinate system (normalized image coordinates
throughout this package).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from edge_image.contract.decode import iou_matrix


@dataclass(frozen=True)
class ImageTruth:
    """Ground truth of one image: ``boxes`` ``(n, 4)`` xyxy, ``class_ids`` ``(n,)``."""

    boxes: np.ndarray
    class_ids: np.ndarray

    @classmethod
    def of(cls, boxes: Sequence[Sequence[float]], class_ids: Sequence[int]) -> ImageTruth:
        """Build from plain lists (handy in tests and label readers)."""
        return cls(np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(class_ids, np.int64).reshape(-1))


@dataclass(frozen=True)
class ImagePredictions:
    """Detections of one image: ``boxes`` ``(m, 4)`` xyxy, ``scores`` ``(m,)``, ``class_ids`` ``(m,)``."""

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray

    @classmethod
    def of(
        cls, boxes: Sequence[Sequence[float]], scores: Sequence[float], class_ids: Sequence[int]
    ) -> ImagePredictions:
        """Build from plain lists."""
        return cls(
            np.asarray(boxes, np.float64).reshape(-1, 4),
            np.asarray(scores, np.float64).reshape(-1),
            np.asarray(class_ids, np.int64).reshape(-1),
        )


@dataclass(frozen=True)
class MatchedDetections:
    """Every detection of a data set after matching, sorted by descending score.

    ``tp`` is 1 for a true positive, 0 for a false positive; ``iou`` is the IoU with the
    best same-class ground-truth box (0 when there is none); ``image`` indexes the image.
    """

    scores: np.ndarray
    class_ids: np.ndarray
    tp: np.ndarray
    iou: np.ndarray
    image: np.ndarray


def match_image(
    pred: ImagePredictions, truth: ImageTruth, iou_thresh: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy matching of one image's detections; returns ``(tp, iou)`` in ``pred`` order.

    Detections are visited by descending score (stable, so ties keep input order); each
    takes its highest-IoU same-class truth box if the IoU is above ``iou_thresh`` and the
    box is still free, else it is a false positive.

    >>> t = ImageTruth.of([[0, 0, 1, 1]], [0])
    >>> p = ImagePredictions.of([[0, 0, 1, 1], [0, 0, 1, 0.9]], [0.5, 0.9], [0, 0])
    >>> [a.round(3).tolist() for a in match_image(p, t)]
    [[0.0, 1.0], [1.0, 0.9]]
    """
    m = pred.scores.shape[0]
    tp = np.zeros(m, np.float64)
    best_iou = np.zeros(m, np.float64)
    if m == 0:
        return tp, best_iou
    with np.errstate(invalid="ignore", over="ignore"):  # inf boxes of an untrained net: IoU nan → 0
        ious = iou_matrix(pred.boxes, truth.boxes) if truth.boxes.shape[0] else np.zeros((m, 0))
    ious = np.nan_to_num(ious, nan=0.0)
    same_class = pred.class_ids[:, None] == truth.class_ids[None, :]
    ious = np.where(same_class, ious, 0.0)
    taken = np.zeros(truth.boxes.shape[0], bool)
    for i in np.argsort(-pred.scores, kind="stable"):
        if ious.shape[1] == 0:
            break
        j = int(np.argmax(ious[i]))
        best_iou[i] = ious[i, j]
        if ious[i, j] > iou_thresh and not taken[j]:
            taken[j] = True
            tp[i] = 1.0
    return tp, best_iou


def match_dataset(
    preds: Sequence[ImagePredictions], truths: Sequence[ImageTruth], iou_thresh: float = 0.5
) -> MatchedDetections:
    """Match every image and concatenate, sorted by descending score (stable)."""
    if len(preds) != len(truths):
        raise ValueError(f"{len(preds)} prediction sets for {len(truths)} images")
    parts = [match_image(p, t, iou_thresh) for p, t in zip(preds, truths, strict=True)]
    scores = np.concatenate([p.scores for p in preds]) if preds else np.zeros(0)
    order = np.argsort(-scores, kind="stable")
    return MatchedDetections(
        scores=scores[order],
        class_ids=(np.concatenate([p.class_ids for p in preds]) if preds else np.zeros(0, np.int64))[order],
        tp=(np.concatenate([a for a, _ in parts]) if parts else np.zeros(0))[order],
        iou=(np.concatenate([b for _, b in parts]) if parts else np.zeros(0))[order],
        image=(
            np.concatenate([np.full(p.scores.shape[0], k) for k, p in enumerate(preds)])
            if preds
            else np.zeros(0, np.int64)
        )[order],
    )


def pr_curve(tp: np.ndarray | Sequence[float], n_truth: int) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall after each detection of one class (``tp`` sorted by score).

    >>> [a.round(3).tolist() for a in pr_curve(np.array([1.0, 0.0, 1.0]), 4)]
    [[1.0, 0.5, 0.667], [0.25, 0.25, 0.5]]
    """
    tp = np.asarray(tp, np.float64)
    ctp = np.cumsum(tp)
    cfp = np.cumsum(1.0 - tp)
    precision = ctp / np.maximum(ctp + cfp, np.finfo(np.float64).tiny)
    recall = ctp / n_truth if n_truth > 0 else np.zeros_like(ctp)
    return precision, recall


def ap_area(precision: np.ndarray, recall: np.ndarray) -> float:
    """All-points interpolated AP: area under the monotone precision envelope.

    >>> ap_area(np.array([1.0, 0.5, 2 / 3]), np.array([0.25, 0.25, 0.5]))
    0.41666666666666663
    """
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def ap_11point(precision: np.ndarray, recall: np.ndarray) -> float:
    """VOC2007 11-point AP: mean over r in {0, .1, ..., 1} of max precision at recall >= r.

    >>> round(ap_11point(np.array([1.0, 0.5, 2 / 3]), np.array([0.25, 0.25, 0.5])), 6)
    0.454545
    """
    total = 0.0
    for r in np.linspace(0.0, 1.0, 11):
        mask = recall >= r - 1e-12
        total += float(precision[mask].max()) if mask.any() else 0.0
    return total / 11.0


@dataclass(frozen=True)
class ClassResult:
    """Per-class numbers. ``ap``/``ap11`` are ``None`` when the class has no ground truth.

    ``tp``/``fp`` count detections with score >= the evaluation's ``conf_thresh``;
    ``precision``/``recall`` are the full curves (all detections) used for the PR plot.
    """

    class_id: int
    name: str
    n_truth: int
    n_detections: int
    ap: float | None
    ap11: float | None
    tp: int
    fp: int
    precision: list[float] = field(repr=False)
    recall: list[float] = field(repr=False)


@dataclass(frozen=True)
class Evaluation:
    """The numbers ``detector map`` prints, for one weights file on one image list."""

    classes: list[ClassResult]
    conf_thresh: float
    iou_thresh: float
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    average_iou: float
    map: float
    map11: float
    n_images: int

    def to_dict(self, *, curves: bool = True) -> dict[str, object]:
        """JSON-ready dict; ``curves=False`` drops the per-class PR curves."""
        classes = []
        for c in self.classes:
            row: dict[str, object] = {
                "class_id": c.class_id,
                "name": c.name,
                "n_truth": c.n_truth,
                "n_detections": c.n_detections,
                "ap": c.ap,
                "ap11": c.ap11,
                "tp": c.tp,
                "fp": c.fp,
            }
            if curves:
                row["precision"] = c.precision
                row["recall"] = c.recall
            classes.append(row)
        return {
            "n_images": self.n_images,
            "conf_thresh": self.conf_thresh,
            "iou_thresh": self.iou_thresh,
            "map": self.map,
            "map11": self.map11,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "average_iou": self.average_iou,
            "classes": classes,
        }


def _downsample(values: np.ndarray, limit: int) -> list[float]:
    """At most ``limit`` points of a curve, always keeping the last one (for JSON size)."""
    if values.size <= limit:
        return [round(float(v), 6) for v in values]
    idx = np.unique(np.concatenate([np.linspace(0, values.size - 1, limit).astype(int), [values.size - 1]]))
    return [round(float(v), 6) for v in values[idx]]


def evaluate_detections(
    preds: Sequence[ImagePredictions],
    truths: Sequence[ImageTruth],
    names: Sequence[str],
    *,
    conf_thresh: float = 0.25,
    iou_thresh: float = 0.5,
    curve_points: int = 200,
) -> Evaluation:
    """Compute every number of :class:`Evaluation` from detections and ground truth.

    ``preds`` should hold low-threshold detections (darknet uses .005) so the PR curve
    reaches high recall; ``conf_thresh`` only affects the TP/FP/FN, precision, recall, F1
    and average IoU numbers.
    """
    matched = match_dataset(preds, truths, iou_thresh)
    all_truth = np.concatenate([t.class_ids for t in truths]) if truths else np.zeros(0, np.int64)
    above = matched.scores >= conf_thresh
    results: list[ClassResult] = []
    for k, name in enumerate(names):
        n_truth = int(np.sum(all_truth == k))
        mine = matched.class_ids == k
        tp = matched.tp[mine]
        precision, recall = pr_curve(tp, n_truth)
        has_truth = n_truth > 0
        results.append(
            ClassResult(
                class_id=k,
                name=name,
                n_truth=n_truth,
                n_detections=int(mine.sum()),
                ap=ap_area(precision, recall) if has_truth else None,
                ap11=ap_11point(precision, recall) if has_truth else None,
                tp=int(matched.tp[mine & above].sum()),
                fp=int((1.0 - matched.tp[mine & above]).sum()),
                precision=_downsample(precision, curve_points),
                recall=_downsample(recall, curve_points),
            )
        )
    tp_total = int(matched.tp[above].sum())
    fp_total = int(above.sum()) - tp_total
    fn_total = int(all_truth.size) - tp_total
    precision_t = tp_total / (tp_total + fp_total) if tp_total + fp_total else 0.0
    recall_t = tp_total / all_truth.size if all_truth.size else 0.0
    f1 = 2 * precision_t * recall_t / (precision_t + recall_t) if precision_t + recall_t else 0.0
    matched_iou = np.where(matched.tp[above] > 0, matched.iou[above], 0.0)
    average_iou = float(matched_iou.mean()) if matched_iou.size else 0.0
    aps = [c.ap for c in results if c.ap is not None]
    ap11s = [c.ap11 for c in results if c.ap11 is not None]
    return Evaluation(
        classes=results,
        conf_thresh=conf_thresh,
        iou_thresh=iou_thresh,
        tp=tp_total,
        fp=fp_total,
        fn=fn_total,
        precision=precision_t,
        recall=recall_t,
        f1=f1,
        average_iou=average_iou,
        map=float(np.mean(aps)) if aps else 0.0,
        map11=float(np.mean(ap11s)) if ap11s else 0.0,
        n_images=len(truths),
    )


def format_darknet(ev: Evaluation) -> str:
    """The evaluation as ``detector map`` prints it (AlexeyAB's wording), both AP flavours.

    Per class ``class_id = i, name = X, ap = NN.NN%   (TP = a, FP = b)``; then
    precision/recall/F1 and TP/FP/FN/average IoU at ``conf_thresh``; then
    ``mean average precision (mAP@0.50) = 0.xxxx, or xx.xx %`` for the area-under-curve AP,
    and the same line for 11-point AP.
    """
    lines = []
    for c in ev.classes:
        ap = "n/a (no ground truth)" if c.ap is None else f"{100 * c.ap:.2f}%"
        ap11 = "" if c.ap11 is None else f", ap11 = {100 * c.ap11:.2f}%"
        lines.append(
            f"class_id = {c.class_id}, name = {c.name}, ap = {ap}{ap11}   (TP = {c.tp}, FP = {c.fp})"
        )
    t = ev.conf_thresh
    lines.append("")
    lines.append(
        f" for conf_thresh = {t:.2f}, precision = {ev.precision:.2f}, recall = {ev.recall:.2f}, "
        f"F1-score = {ev.f1:.2f}"
    )
    lines.append(
        f" for conf_thresh = {t:.2f}, TP = {ev.tp}, FP = {ev.fp}, FN = {ev.fn}, "
        f"average IoU = {100 * ev.average_iou:.2f} %"
    )
    lines.append("")
    lines.append(
        f" IoU threshold = {100 * ev.iou_thresh:.0f} %, used Area-Under-Curve for each unique Recall"
    )
    pct = f"{100 * ev.iou_thresh:.0f}"
    lines.append(
        f" mean average precision (mAP@0.{pct}) = {ev.map:.6f}, or {100 * ev.map:.2f} %  (area under curve)"
    )
    lines.append(
        f" mean average precision (mAP@0.{pct}) = {ev.map11:.6f}, or {100 * ev.map11:.2f} %  (VOC2007 11-pt)"
    )
    return "\n".join(lines)
