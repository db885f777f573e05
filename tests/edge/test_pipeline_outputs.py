"""Outputs and the viewer are passed to the pipeline when it is made: outputs get every record,
the viewer gets every record and a JPEG only while it wants one (else at most once a second),
and a pipeline without a viewer draws nothing."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from edge_image import pipeline as pipeline_module
from edge_image.metrics import Metrics
from edge_image.pipeline import Pipeline
from tests.edge.helpers import Records, ScriptedBackend, make_bundle, wait_for, write_images
from tests.edge.test_service_unit import config_for


class _Viewer:
    def __init__(self, wants: bool) -> None:
        self.wants = wants
        self.got: list[tuple[bytes | None, dict[str, Any]]] = []

    def wants_jpeg(self) -> bool:
        return self.wants

    def publish(self, jpeg: bytes | None, record: dict[str, Any]) -> None:
        self.got.append((jpeg, record))


def _run(tmp_path: Path, *, frames: int, viewer: _Viewer | None, records: Records) -> None:
    bundle = make_bundle(tmp_path / "v1", {"model.onnx": b"onnx-bytes-v1"}, {"onnx": "model.onnx"})
    images = write_images(tmp_path / "frames", 3)
    config = config_for(tmp_path, bundle, {"kind": "folder", "path": str(images), "loop": True})
    pipeline = Pipeline(
        config,
        Metrics(),
        outputs=[records],
        viewer=viewer,
        backend_factory=lambda kind, cfg, b: ScriptedBackend(b.spec),
    )
    pipeline.load_initial()
    thread = threading.Thread(target=pipeline.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(records) >= frames, 30, f"{frames} frames")
    finally:
        pipeline.stop()
        thread.join(10)
        pipeline.close()


def test_a_watching_viewer_gets_a_jpeg_with_every_record(tmp_path: Path) -> None:
    viewer, records = _Viewer(wants=True), Records()
    _run(tmp_path, frames=5, viewer=viewer, records=records)
    assert len(viewer.got) >= 5
    assert all(jpeg is not None and jpeg[:2] == b"\xff\xd8" for jpeg, _ in viewer.got)
    assert [r["frame"] for _, r in viewer.got[:5]] == [r["frame"] for r in records[:5]]
    assert records[0]["detections"][0]["label"] == "apple"


def test_an_idle_viewer_gets_at_most_one_jpeg_a_second(tmp_path: Path) -> None:
    viewer, records = _Viewer(wants=False), Records()
    _run(tmp_path, frames=8, viewer=viewer, records=records)
    jpegs = [jpeg for jpeg, _ in viewer.got if jpeg is not None]
    assert len(viewer.got) >= 8
    span = viewer.got[-1][1]["timestamp"] - viewer.got[0][1]["timestamp"]
    assert 1 <= len(jpegs) <= 1 + span
    assert viewer.got[0][0] is not None  # the first frame is drawn at once


def test_without_a_viewer_nothing_is_drawn(tmp_path: Path, monkeypatch) -> None:
    drawn: list[object] = []
    monkeypatch.setattr(pipeline_module, "annotate", lambda *a, **k: drawn.append(a))
    records = Records()
    _run(tmp_path, frames=5, viewer=None, records=records)
    assert len(records) >= 5 and drawn == []
