"""Edge service faults (issue 17, item 3): a reload that sticks while the watcher runs, a reload after
a finite source ended, and a detection log that cannot fill the SD card. The service runs in-process
with a scripted backend (tests/edge/test_service_unit.py's ``running``)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from edge_image.outputs import JsonlLog, frame_record
from tests.edge.helpers import get_json, http, make_bundle, wait_for, write_images
from tests.edge.test_service_unit import JSON, config_for, running


def _model(url: str) -> str:
    return get_json(url + "/api/detections")[1]["status"]["model"]


def test_reload_to_a_second_bundle_sticks_while_the_watcher_runs(tmp_path: Path) -> None:
    """Before: the watcher compared the configured bundle's manifest with the one just loaded,
    saw a difference and went back within one interval. Now it follows the bundle last loaded."""
    models = tmp_path / "models"
    first = make_bundle(models / "v1", {"model.onnx": b"onnx-bytes-v1"}, {"onnx": "model.onnx"})
    make_bundle(models / "v2", {"model.onnx": b"onnx-bytes-v2"}, {"onnx": "model.onnx"}, version="2")
    frames = write_images(tmp_path / "frames", 3)
    config = config_for(tmp_path, first, {"kind": "folder", "path": str(frames), "loop": True}, fps_limit=50)
    assert config.model.watch and config.model.watch_interval == 0.2
    with running(config, []) as svc:
        wait_for(lambda: http(svc.url + "/healthz")[0] == 200, 20, "healthy")
        status, result = get_json(
            svc.url + "/api/reload", method="POST", body=b'{"bundle": "v2"}', headers=JSON
        )
        assert status == 200 and result["model"] == "fake-tiny-yolo 2", result
        time.sleep(10 * config.model.watch_interval)
        assert _model(svc.url) == "fake-tiny-yolo 2"
        # the watcher now follows v2: a new version written there is picked up
        shutil.rmtree(models / "v2")
        make_bundle(models / "v2", {"model.onnx": b"onnx-bytes-v3"}, {"onnx": "model.onnx"}, version="3")
        wait_for(lambda: _model(svc.url) == "fake-tiny-yolo 3", 10, "v3 through the watcher")


def test_reload_after_a_finite_source_ended_answers_at_once(tmp_path: Path) -> None:
    """Before: nothing serviced reloads once the loop had returned, so the request hung for 120 s."""
    models = tmp_path / "models"
    first = make_bundle(models / "v1", {"model.onnx": b"onnx-bytes-v1"}, {"onnx": "model.onnx"})
    make_bundle(models / "v2", {"model.onnx": b"onnx-bytes-v2"}, {"onnx": "model.onnx"}, version="2")
    frames = write_images(tmp_path / "frames", 2)
    config = config_for(tmp_path, first, {"kind": "folder", "path": str(frames), "loop": False})
    with running(config, []) as svc:
        wait_for(lambda: svc.pipeline.status.state == "ended", 20, "folder finished")
        started = time.monotonic()
        status, result = get_json(
            svc.url + "/api/reload", method="POST", body=b'{"bundle": "v2"}', headers=JSON, timeout=30
        )
        assert time.monotonic() - started < 5
        assert status == 200 and result["model"] == "fake-tiny-yolo 2", result


def test_detection_log_rotates_at_its_size_cap(tmp_path: Path) -> None:
    """A busy camera must not fill the SD card: the log rolls over at max_bytes and keeps ``keep``
    older files; every line in every file is whole JSON."""
    path = tmp_path / "log" / "detections.jsonl"
    log = JsonlLog(path, max_bytes=4000, keep=2)
    detection = {"class_id": 0, "label": "logo", "score": 0.9, "box": [1, 2, 3, 4]}
    for frame in range(400):
        log.write(
            frame_record(
                frame=frame,
                timestamp=float(frame),
                model="m 1",
                backend="opencv",
                width=4,
                height=3,
                detections=[detection],
                latency_ms={"total": 1.0},
            )
        )
    log.close()
    files = sorted(path.parent.iterdir())
    assert [f.name for f in files] == ["detections.jsonl", "detections.jsonl.1", "detections.jsonl.2"]
    longest = max(len(line) + 1 for f in files for line in f.read_text().splitlines())
    for f in files:
        assert f.stat().st_size <= 4000 + longest
        frames = [json.loads(line)["frame"] for line in f.read_text().splitlines()]
        assert frames == sorted(frames) and frames
    newest = [json.loads(line)["frame"] for line in path.read_text().splitlines()]
    assert newest[-1] == 399
