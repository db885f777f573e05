"""The detect step the service and the bench share (edge_image.detector.Detector)."""

from __future__ import annotations

import numpy as np
import pytest

from edge_image.backends import BackendError
from edge_image.contract.decode import RegionSpec, decode
from edge_image.detector import DETECT_STAGES, Detector
from tests.edge.helpers import ScriptedBackend


def test_detect_times_each_stage_and_decodes_like_decode() -> None:
    spec = RegionSpec(3)
    backend = ScriptedBackend(spec, klass=2)
    result = Detector(backend, spec, thresh=0.3, nms=0.4).detect(np.zeros((240, 320, 3), np.uint8))
    assert tuple(result.stages) == DETECT_STAGES and all(s >= 0 for s in result.stages.values())
    expected = decode(backend.output, spec, layout="hwc", thresh=0.3, nms_thresh=0.4)
    assert len(result.detections) == len(expected) == 1 and result.raw is backend.output
    assert result.detections.to_records(("a", "b", "c"), 320, 240)[0]["label"] == "c"


def test_backend_errors_pass_through() -> None:
    spec = RegionSpec(3)
    backend = ScriptedBackend(spec)
    backend.fail_next = True
    with pytest.raises(BackendError, match="scripted failure"):
        Detector(backend, spec).detect(np.zeros((240, 320, 3), np.uint8))
