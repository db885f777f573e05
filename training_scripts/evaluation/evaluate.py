"""Evaluate darknet weights on an image list with the numpy reference forward pass.

Pipeline per image: OpenCV reads it, :func:`training_scripts.darknet.forward.preprocess`
stretches it to the network size (RGB, 0..1; what the edge service does too),
:class:`~training_scripts.darknet.forward.DarknetModel` runs the layers, and
:func:`edge_image.contract.decode.decode` turns the raw output into boxes at a low threshold
(.005, as darknet's ``detector valid``/``map``) with NMS .45. Boxes come out normalized to
the image, the same frame as darknet labels; clipped to the image (as darknet's ``valid``
output is), they are matched against the labels (:mod:`training_scripts.evaluation.metrics`).

On the Flickr27 *query* list (images without boxes, one brand or ``none`` per image,
from the data set's ``report.json``) the measure is image-level accuracy: an image with a
brand is right when the highest-scored detection above ``conf_thresh`` has that brand; a
``none`` image is right when nothing is detected above ``conf_thresh``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_image.contract.decode import decode
from edge_image.contract.errors import UserError, read_json
from edge_image.contract.progress import Progress
from training_scripts.darknet.cfg import check_classes, parse_cfg
from training_scripts.darknet.forward import DarknetModel, preprocess
from training_scripts.darknet.weights import read_weights
from training_scripts.dataset.darknet_layout import label_path_for, read_labels, read_list
from training_scripts.evaluation.metrics import (
    Evaluation,
    ImagePredictions,
    ImageTruth,
    evaluate_detections,
    format_darknet,
)
from training_scripts.training.data import DataConfig, load_data_config

LISTS: tuple[str, ...] = ("valid", "test", "query", "train")
AP_THRESH = 0.005  # darknet validate_detector / validate_detector_map
NMS_THRESH = 0.45
BATCH = 8
# Keep decoded inputs in memory between checkpoints when they take less than this.
CACHE_LIMIT_BYTES = 512 * 1024 * 1024


def resolve_list(data: DataConfig, which: str) -> Path:
    """The image list ``which`` (``valid``, ``test``, ``query``, ``train``, or a list file path).

    Named lists come from the ``.data`` file, or ``DIR/<name>.txt`` beside it.
    """
    if which not in LISTS:
        path = Path(which)
        if not path.is_file():
            raise UserError(f"--list {which}: not one of {', '.join(LISTS)} and not a list file")
        return path.resolve()
    path = data.resolve(which) or data.root / f"{which}.txt"
    if not path.is_file():
        raise UserError(f"{data.obj_data}: no {which} list ({path} not found)")
    return path


def read_images(data: DataConfig, list_path: Path) -> list[Path]:
    """Absolute image paths of a list (relative entries are relative to the data folder)."""
    images = [p if p.is_absolute() else data.root / p for p in read_list(list_path)]
    if not images:
        raise UserError(f"{list_path}: the list is empty")
    return images


def load_truths(images: Sequence[Path], n_classes: int) -> list[ImageTruth]:
    """Ground truth per image from darknet's label files, as normalized ``xyxy`` boxes."""
    truths = []
    for image in images:
        label = label_path_for(image)
        rows = read_labels(label)
        bad = rows[:, 0] >= n_classes
        if bad.any():
            raise UserError(
                f"{label}: class id {int(rows[bad][0, 0])} but the data set has {n_classes} classes"
            )
        cx, cy, w, h = rows[:, 1], rows[:, 2], rows[:, 3], rows[:, 4]
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        truths.append(ImageTruth(boxes, rows[:, 0].astype(np.int64)))
    return truths


def load_image(path: Path) -> np.ndarray:
    """An image as OpenCV BGR uint8 (error when unreadable)."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise UserError(f"{path}: cannot read image")
    return image


class InputBatches:
    """Network inputs for a list of images, in batches, decoded once and cached when small."""

    def __init__(self, images: Sequence[Path], size: tuple[int, int], batch: int = BATCH) -> None:
        self.images = list(images)
        self.size = size
        self.batch = batch
        width, height = size
        self._cache: list[np.ndarray] | None = (
            [] if len(self.images) * width * height * 3 * 4 <= CACHE_LIMIT_BYTES else None
        )
        self._complete = False

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._cache is not None and self._complete:
            yield from self._cache
            return
        for start in range(0, len(self.images), self.batch):
            chunk = self.images[start : start + self.batch]
            arrays = np.concatenate([preprocess(load_image(p), self.size) for p in chunk])
            if self._cache is not None:
                self._cache.append(arrays)
            yield arrays
        self._complete = self._cache is not None


def predict(
    model: DarknetModel,
    inputs: InputBatches,
    *,
    thresh: float = AP_THRESH,
    nms: float = NMS_THRESH,
    label: str = "evaluate",
) -> tuple[list[ImagePredictions], float]:
    """Detections for every image (normalized ``xyxy``) and the images/s achieved."""
    if model.spec is None:
        raise UserError("cfg has no [region] layer: cannot decode detections")
    if model.size != inputs.size:
        raise UserError(f"model input {model.size} differs from the prepared inputs {inputs.size}")
    progress = Progress(label, len(inputs.images), unit="img", interval=2.0, quiet_s=2.0)
    start = time.perf_counter()
    preds: list[ImagePredictions] = []
    for batch in inputs:
        outputs = model.forward(batch)
        for output in outputs:
            # an untrained net can give exp(tw) overflows: inf boxes, which simply never match
            with np.errstate(over="ignore", invalid="ignore"):
                det = decode(output, model.spec, layout="hwc", thresh=thresh, nms_thresh=nms)
            # clipped to the image, as darknet's valid output and the edge service report them
            boxes = np.clip(np.nan_to_num(det.boxes.astype(np.float64), nan=0.0), 0.0, 1.0)
            preds.append(ImagePredictions(boxes, det.scores.astype(np.float64), det.class_ids))
        progress.advance(len(outputs))
    progress.close()
    elapsed = time.perf_counter() - start
    return preds, len(preds) / elapsed if elapsed > 0 else float("inf")


def read_query_labels(data: DataConfig, images: Sequence[Path]) -> list[str | None]:
    """Brand (or None for ``none``) per query image, from the data set's ``report.json``."""
    report_path = data.root / "report.json"
    report = read_json(report_path, missing="not found; the query labels live there (run `prepare` again)")
    labels = report.get("query_labels")
    if not isinstance(labels, dict):
        raise UserError(f"{report_path}: no query_labels (the data set has no query set)")
    out: list[str | None] = []
    for image in images:
        if image.stem not in labels:
            raise UserError(f"{report_path}: query_labels has no entry for {image.stem}")
        out.append(labels[image.stem])
    return out


@dataclass(frozen=True)
class QueryResult:
    """Image-level accuracy on the query set."""

    n_images: int
    correct: int
    accuracy: float
    with_class: int
    with_class_correct: int
    none: int
    none_correct: int
    conf_thresh: float

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return dict(self.__dict__)

    def format(self) -> str:
        """Lines in the style of the mAP output."""
        return "\n".join(
            [
                f" query set, conf_thresh = {self.conf_thresh:.2f}: accuracy = {100 * self.accuracy:.2f} % "
                f"({self.correct} of {self.n_images} images)",
                f"   branded images: {self.with_class_correct} of {self.with_class} right (top detection)",
                f"   'none' images: {self.none_correct} of {self.none} with no detection",
            ]
        )


def query_accuracy(
    preds: Sequence[ImagePredictions], labels: Sequence[str | None], names: Sequence[str], conf_thresh: float
) -> QueryResult:
    """Image-level accuracy: top detection's class equals the brand; nothing on ``none`` images.

    >>> p = [ImagePredictions.of([[0, 0, 1, 1]], [0.9], [1]), ImagePredictions.of([], [], [])]
    >>> query_accuracy(p, ["b", None], ["a", "b"], 0.25).accuracy
    1.0
    """
    correct = with_class = with_class_correct = none = none_correct = 0
    for pred, label in zip(preds, labels, strict=True):
        keep = pred.scores >= conf_thresh
        top = None
        if keep.any():
            top = names[int(pred.class_ids[keep][int(np.argmax(pred.scores[keep]))])]
        if label is None:
            none += 1
            none_correct += top is None
        else:
            with_class += 1
            with_class_correct += top == label
        correct += top == label
    n = len(labels)
    return QueryResult(
        n_images=n,
        correct=correct,
        accuracy=correct / n if n else 0.0,
        with_class=with_class,
        with_class_correct=with_class_correct,
        none=none,
        none_correct=none_correct,
        conf_thresh=conf_thresh,
    )


@dataclass(frozen=True)
class EvaluationRun:
    """One weights file evaluated on one list (``evaluation`` or ``query`` is set)."""

    weights: Path
    cfg: Path
    list_name: str
    list_path: Path
    n_images: int
    images_per_second: float
    evaluation: Evaluation | None
    query: QueryResult | None

    def to_dict(self, *, curves: bool = True) -> dict[str, object]:
        """JSON-ready dict."""
        return {
            "weights": str(self.weights),
            "cfg": str(self.cfg),
            "list": self.list_name,
            "list_path": str(self.list_path),
            "n_images": self.n_images,
            "images_per_second": round(self.images_per_second, 3),
            "evaluation": self.evaluation.to_dict(curves=curves) if self.evaluation else None,
            "query": self.query.to_dict() if self.query else None,
        }

    def format(self) -> str:
        """darknet ``detector map``-style text."""
        head = (
            f"{self.weights.name} on {self.list_name} ({self.n_images} images, "
            f"{self.images_per_second:.1f} images/s)"
        )
        body = self.query.format() if self.query else format_darknet(self.evaluation)  # type: ignore[arg-type]
        return f"{head}\n{body}"


class Evaluator:
    """Evaluates several weights files of one cfg on one list, decoding the images once."""

    def __init__(self, data: DataConfig, cfg: Path, which: str = "valid") -> None:
        self.data = data
        self.cfg = Path(cfg).resolve()
        self.sections = parse_cfg(self.cfg)
        check_classes(self.sections, data.names, names_source=str(data.names_file))
        self.which = which
        self.list_path = resolve_list(data, which)
        self.images = read_images(data, self.list_path)
        self.query_labels = read_query_labels(data, self.images) if which == "query" else None
        self.truths = None if which == "query" else load_truths(self.images, len(data.names))
        self.inputs: InputBatches | None = None

    def run(self, weights: Path, *, conf_thresh: float = 0.25, iou_thresh: float = 0.5) -> EvaluationRun:
        """Evaluate ``weights`` (errors for weights of another cfg come from the reader)."""
        weights = Path(weights).resolve()
        model = DarknetModel(self.sections, read_weights(weights, self.sections))
        if self.inputs is None:
            self.inputs = InputBatches(self.images, model.size)
        preds, rate = predict(model, self.inputs, label=f"evaluate {weights.name}")
        evaluation = query = None
        if self.query_labels is not None:
            query = query_accuracy(preds, self.query_labels, self.data.names, conf_thresh)
        else:
            assert self.truths is not None
            evaluation = evaluate_detections(
                preds, self.truths, self.data.names, conf_thresh=conf_thresh, iou_thresh=iou_thresh
            )
        return EvaluationRun(
            weights=weights,
            cfg=self.cfg,
            list_name=self.which,
            list_path=self.list_path,
            n_images=len(self.images),
            images_per_second=rate,
            evaluation=evaluation,
            query=query,
        )


def evaluate(
    data: str | Path, cfg: str | Path, weights: str | Path, which: str = "valid", *, conf_thresh: float = 0.25
) -> EvaluationRun:
    """Evaluate one weights file (see :class:`Evaluator`)."""
    return Evaluator(load_data_config(data), Path(cfg), which).run(Path(weights), conf_thresh=conf_thresh)
