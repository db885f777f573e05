"""The detect step shared by the service loop (:mod:`edge_image.pipeline`) and the bench
(:mod:`edge_image.bench`): preprocess → infer → decode, each stage timed.

Input: a BGR frame; output: :class:`DetectResult` (the decoded boxes, the raw output and the
seconds each stage took).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from edge_image.backends import Backend
from edge_image.contract.decode import Detections, RegionSpec, decode
from edge_image.preprocess import preprocess

#: The timed stages of :meth:`Detector.detect`, in order.
DETECT_STAGES: tuple[str, ...] = ("preprocess", "infer", "decode")


@dataclass(frozen=True)
class DetectResult:
    """One frame's detections, the backend's raw output and ``stages`` (seconds per stage)."""

    detections: Detections
    raw: np.ndarray
    stages: dict[str, float]


@dataclass(frozen=True)
class Detector:
    """``backend`` + the bundle's region ``spec`` + darknet's thresholds (``-thresh``, NMS)."""

    backend: Backend
    spec: RegionSpec
    thresh: float = 0.25
    nms: float = 0.45

    def detect(self, image: np.ndarray) -> DetectResult:
        """Detect objects in the BGR ``image`` (raises the backend's errors unchanged)."""
        backend = self.backend
        t0 = time.perf_counter()
        blob = preprocess(image, *backend.input_hw, backend.input_layout, backend.input_dtype)
        t1 = time.perf_counter()
        raw = backend.infer(blob)
        t2 = time.perf_counter()
        dets = decode(raw, self.spec, layout=backend.output_layout, thresh=self.thresh, nms_thresh=self.nms)
        t3 = time.perf_counter()
        return DetectResult(dets, raw, {"preprocess": t1 - t0, "infer": t2 - t1, "decode": t3 - t2})
