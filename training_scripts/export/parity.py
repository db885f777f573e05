"""Parity of every exported format with the numpy darknet reference forward.

For each artifact the raw output tensor on the same input batch must equal
:class:`training_scripts.darknet.forward.DarknetModel`'s within ``TOLERANCES`` (max absolute
error: 1e-4 for FP32 formats, 2e-2 for FP16), and the decoded detections
(:func:`edge_image.contract.decode.decode`, darknet semantics) must be the same boxes.

The tolerances hold for raw outputs within ``±OUTPUT_SCALE`` (a trained model's logits and
box terms). float32 and float16 are relative-precision formats, so for a model whose outputs
are larger the allowed error grows in proportion: ``tolerance * max(1, max|ref| / 10)``.
That case is real: darknet starts rolling variances at 0 and moves them 1 % per batch, so a
checkpoint after a few dozen iterations divides by ``sqrt`` of a fraction of the true
variance in every layer and its raw outputs reach 1e4-1e5, where one float32 ulp is already
larger than 1e-4. A layout, padding or folding mistake still shows up as an error of the
order of the outputs themselves.

Every runtime here returns NHWC ``(N, H, W, C)``; :func:`as_nhwc` is the one place where
another layout would be transposed, and it is checked against the expected grid shape.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edge_image.contract.decode import Detections, Layout, RegionSpec, decode
from edge_image.contract.errors import UserError
from edge_image.contract.manifest import ARTIFACT_TYPES, ARTIFACTS

#: Max absolute error allowed per artifact kind (from :data:`edge_image.contract.manifest.ARTIFACT_TYPES`).
TOLERANCES: dict[str, float] = {t.kind: t.parity.atol for t in ARTIFACT_TYPES if t.parity}
#: Raw-output magnitude up to which ``TOLERANCES`` apply unscaled.
OUTPUT_SCALE = 10.0
#: Detection matching per kind: (score margin around the threshold, max coordinate difference).
#: A box whose score is within ``margin`` of the threshold may legitimately appear on one side
#: only; every other box must have a same-class partner whose corners differ by at most the
#: given amount (normalized image units; 1e-3 is 0.4 px at 416). Corner distance rather than
#: IoU, because tiny boxes have an IoU that swings with sub-pixel changes.
MATCHING: dict[str, tuple[float, float]] = {
    t.kind: (t.parity.margin, t.parity.max_diff) for t in ARTIFACT_TYPES if t.parity
}


def as_nhwc(output: np.ndarray, grid: tuple[int, int, int], layout: Layout = "hwc") -> np.ndarray:
    """A runtime's raw batch output as ``(N, H, W, C)`` float32 (``layout='chw'`` transposes).

    >>> as_nhwc(np.zeros((2, 10, 13, 13)), (13, 13, 10), "chw").shape
    (2, 13, 13, 10)
    """
    arr = np.asarray(output, dtype=np.float32)
    if layout == "chw":
        arr = arr.transpose(0, 2, 3, 1)
    if arr.shape[1:] != tuple(grid):
        raise UserError(
            f"output shape {arr.shape} does not match the expected grid (N, {', '.join(map(str, grid))})"
        )
    return arr


def allowed_error(tolerance: float, output_max: float) -> float:
    """``tolerance`` for outputs within ``±OUTPUT_SCALE``, proportionally more beyond.

    >>> allowed_error(1e-4, 3.0), allowed_error(1e-4, 2.5e5)
    (0.0001, 2.5)
    """
    return tolerance * max(1.0, output_max / OUTPUT_SCALE)


def load_images(paths: Sequence[str | os.PathLike[str]], size: tuple[int, int]) -> np.ndarray:
    """Image files → ``(N, h, w, 3)`` float32 RGB 0..1 at ``size = (w, h)`` (OpenCV, stretch resize)."""
    import cv2

    from training_scripts.darknet.forward import preprocess

    batch = []
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise UserError(f"{path}: not a readable image")
        batch.append(preprocess(image, size)[0])
    if not batch:
        raise UserError("no parity images given")
    return np.stack(batch)


def random_images(count: int, input_size: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """``count`` smooth random RGB images (blurred noise in 0..1): a fallback parity batch."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w, c = input_size
    images = []
    for _ in range(count):
        coarse = rng.random((max(2, h // 16), max(2, w // 16), c)).astype(np.float32)
        images.append(
            cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC).clip(0.0, 1.0).reshape(h, w, c)
        )
    return np.stack(images).astype(np.float32)


def runner(kind: str) -> Callable[[Path, np.ndarray], np.ndarray]:
    """The function that runs an artifact of ``kind`` on a batch: its builder module's ``run``
    (heavy imports on call)."""
    row = ARTIFACTS.get(kind)
    if row is None or row.parity is None or row.builder is None:
        raise UserError(f"no runtime here for artifact kind {kind!r} (parity runs {', '.join(TOLERANCES)})")
    return importlib.import_module(row.builder).run


_UNBOUNDED = 1e6


def match_detections(kept: Detections, candidates: Detections, *, min_score: float, max_diff: float) -> str:
    """``""`` when every box of ``kept`` scoring at least ``min_score`` has a same-class box
    among ``candidates`` whose corners differ by at most ``max_diff`` (relative beyond 1.0);
    else a description of the first box without a partner.

    ``kept`` is one side's detections after NMS and ``candidates`` the other side's boxes
    before NMS, so a suppression decision flipped by a rounding-level score change is not
    counted as a different box, while a box that moved, changed class or vanished is.

    >>> d = Detections(np.array([[0.1, 0.1, 0.5, 0.5]]), np.array([0.9]), np.array([1]))
    >>> match_detections(d, d, min_score=0.25, max_diff=1e-3)
    ''
    >>> match_detections(d, Detections.empty(), min_score=0.25, max_diff=1e-3)
    'box class 1 score 0.900 [0.100, 0.100, 0.500, 0.500] has no match'
    """
    if len(kept) == 0:
        return ""
    # coordinates beyond a million image sizes (exp overflow of a barely trained model,
    # infinite in float32) are all "unbounded" and compare equal
    boxes = np.clip(kept.boxes.astype(np.float64), -_UNBOUNDED, _UNBOUNDED)[:, None, :]
    others = np.clip(candidates.boxes.astype(np.float64), -_UNBOUNDED, _UNBOUNDED)[None, :, :]
    # absolute in image units, relative for boxes larger than the image (exp(tw) amplifies)
    diffs = (np.abs(boxes - others) / np.maximum(1.0, np.abs(boxes))).max(axis=2)
    for i in range(len(kept)):
        if kept.scores[i] < min_score:
            continue
        same = candidates.class_ids == kept.class_ids[i]
        if not np.any(diffs[i][same] <= max_diff):
            box = ", ".join(f"{v:.3f}" for v in kept.boxes[i])
            klass, score = int(kept.class_ids[i]), float(kept.scores[i])
            return f"box class {klass} score {score:.3f} [{box}] has no match"
    return ""


@dataclass(frozen=True)
class FormatParity:
    """Parity of one artifact over a batch."""

    kind: str
    images: int
    max_abs: float
    tolerance: float
    output_max: float
    thresh: float
    reference_boxes: int
    export_boxes: int
    mismatch: str

    @property
    def ok(self) -> bool:
        """Raw output within tolerance and the same boxes."""
        return self.max_abs <= self.allowed and not self.mismatch

    @property
    def allowed(self) -> float:
        """The error allowed for this reference: the tolerance, scaled beyond ``OUTPUT_SCALE``."""
        return allowed_error(self.tolerance, self.output_max)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready, with ``ok``."""
        return asdict(self) | {"allowed": self.allowed, "ok": self.ok}

    def describe(self) -> str:
        """One line for people."""
        verdict = "ok" if self.ok else "FAILED"
        detail = f"; {self.mismatch}" if self.mismatch else ""
        return (
            f"{self.kind}: max |Δ| {self.max_abs:.2e} (allowed {self.allowed:.1e}, max |out| "
            f"{self.output_max:.3g}) "
            f"on {self.images} images, "
            f"{self.export_boxes}/{self.reference_boxes} boxes at thresh {self.thresh:g}: {verdict}{detail}"
        )


def _decode_pair(
    reference: np.ndarray, output: np.ndarray, spec: RegionSpec, thresh: float, nms: float
) -> tuple[Detections, Detections]:
    with np.errstate(over="ignore", invalid="ignore"):  # exp overflow of a barely trained model
        return (
            decode(reference, spec, layout="hwc", thresh=thresh, nms_thresh=nms),
            decode(output, spec, layout="hwc", thresh=thresh, nms_thresh=nms),
        )


def compare(
    kind: str,
    reference: np.ndarray,
    output: np.ndarray,
    spec: RegionSpec,
    *,
    thresh: float = 0.25,
    nms: float = 0.45,
) -> FormatParity:
    """Compare an artifact's NHWC batch output with the reference's (same shapes)."""
    if reference.shape != output.shape:
        raise UserError(f"{kind}: output shape {output.shape} differs from the reference {reference.shape}")
    tolerance = TOLERANCES.get(kind, 1e-4)
    margin, max_diff = MATCHING.get(kind, (1e-3, 1e-3))
    max_abs = float(np.max(np.abs(reference.astype(np.float64) - output.astype(np.float64))))
    output_max = float(np.max(np.abs(reference)))
    # box sizes are exp(raw): their relative error is the raw error, so it scales the same way
    max_diff = allowed_error(max_diff, output_max)
    ref_boxes = got_boxes = 0
    mismatch = ""
    loose = max(thresh - margin, 1e-6)
    for i in range(reference.shape[0]):
        a, b = _decode_pair(reference[i], output[i], spec, thresh, nms)
        ref_boxes += len(a)
        got_boxes += len(b)
        if mismatch:
            continue
        a_all, b_all = _decode_pair(reference[i], output[i], spec, loose, 1.0)
        for side, kept, others in (("reference", a, b_all), ("export", b, a_all)):
            miss = match_detections(kept, others, min_score=thresh + margin, max_diff=max_diff)
            if miss:
                mismatch = f"image {i}: {side} {miss}"
                break
    return FormatParity(
        kind, int(reference.shape[0]), max_abs, tolerance, output_max, thresh, ref_boxes, got_boxes, mismatch
    )


def check_artifact(
    kind: str,
    path: str | os.PathLike[str],
    batch: np.ndarray,
    reference: np.ndarray,
    spec: RegionSpec,
    *,
    thresh: float = 0.25,
) -> FormatParity:
    """Run the artifact at ``path`` on ``batch`` and :func:`compare` it with ``reference``."""
    output = as_nhwc(runner(kind)(Path(path), batch), reference.shape[1:])
    return compare(kind, reference, output, spec, thresh=thresh)
