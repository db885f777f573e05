"""Edge service faults (issue 17, item 3): a reload that sticks while the watcher runs, a reload after
a finite source ended, a detection log that cannot fill the SD card, and camera loss and stick
unplug recovering within 5 s of the device coming back with the default backoff. The service runs in-process
with a scripted backend (tests/edge/test_service_unit.py's ``running``)."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edge_image.backends.ncs import MvncBackend
from edge_image.config import parse_config
from edge_image.contract.manifest import load_bundle
from edge_image.metrics import Metrics
from edge_image.outputs import JsonlLog, frame_record
from edge_image.pipeline import Pipeline
from edge_image.sources import Frame, SourceError
from tests.edge.helpers import Records, ScriptedBackend, get_json, http, make_bundle, wait_for, write_images
from tests.edge.test_mvnc import _fake
from tests.edge.test_service_unit import JSON, config_for, running
from tests.fixtures import signing


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


class _Camera:
    """A live camera double whose cable can be pulled: reads and opens fail while ``unplugged``."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        self.frames = frames
        self.unplugged = False
        self.index = 0

    def open(self) -> None:
        if self.unplugged:
            raise SourceError("cannot open camera 0")

    def read(self) -> Frame:
        time.sleep(0.02)
        if self.unplugged:
            raise SourceError("camera unplugged")
        self.index += 1
        return Frame(self.frames[self.index % len(self.frames)], self.index, time.monotonic())

    def close(self) -> None:
        pass


def _recovery(pipeline: Pipeline, seen: list[object], unplug: Callable[[bool], None], away_s: float) -> float:
    """Run ``pipeline``, pull the device for ``away_s`` seconds (long enough for the backoff to
    reach its cap: with the old 30 s cap the attempts came 1, 3, 7 and 15 s after the loss, the
    next one 7 s after the device was back),
    plug it back and return the seconds until the next frame comes out."""
    thread = threading.Thread(target=pipeline.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(seen) >= 3, 20, "first frames")
        unplug(True)
        time.sleep(away_s)
        before = len(seen)
        unplug(False)
        back = time.monotonic()
        wait_for(lambda: len(seen) > before, 30, "frames after the device came back")
        return time.monotonic() - back
    finally:
        pipeline.stop()
        thread.join(10)
        pipeline.close()


def test_camera_loss_recovers_within_5_s_with_the_default_backoff(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "v1", {"model.onnx": b"onnx-bytes-v1"}, {"onnx": "model.onnx"})
    config = config_for(tmp_path, bundle, {"kind": "camera", "index": 0})
    assert config.source.reconnect.maximum == 3.0  # the default: nothing set in the config
    camera = _Camera([np.zeros((32, 32, 3), np.uint8)])
    metrics = Metrics()
    seen = Records()
    pipeline = Pipeline(
        config,
        metrics,
        outputs=[seen],
        backend_factory=lambda kind, cfg, b: ScriptedBackend(b.spec),
        source_factory=lambda cfg: camera,
    )
    pipeline.load_initial()

    def unplug(state: bool) -> None:
        camera.unplugged = state

    took = _recovery(pipeline, seen, unplug, away_s=8.0)
    print(f"camera back -> first frame: {took:.2f} s")
    assert took < 5.0
    assert metrics.registry.get_sample_value("edge_reconnects_total", {"component": "source"}) >= 3


def test_stick_unplug_recovers_within_5_s_with_the_default_backoff(tmp_path: Path) -> None:
    root = make_bundle(
        tmp_path / "ncs", {"model.graph": b"\x01graph-blob" * 64}, {"ncs_graph": "model.graph"}
    )
    bundle = load_bundle(root)
    api = _fake(2, bundle)
    frames = write_images(tmp_path / "frames", 3)
    config = parse_config(
        {
            "model": {"bundle": str(root), "watch": False, "trusted_keys": str(signing.public_key())},
            "source": {"kind": "folder", "path": str(frames), "loop": True},
            "backend": {"kind": "mvnc"},
        },
        where="t.yml",
    )
    assert config.backend.reopen.maximum == 3.0  # the default
    metrics = Metrics()
    seen = Records()
    pipeline = Pipeline(
        config, metrics, outputs=[seen], backend_factory=lambda kind, cfg, b: MvncBackend(b, api=api)
    )
    pipeline.load_initial()

    def unplug(state: bool) -> None:
        api.api.plugged = not state

    took = _recovery(pipeline, seen, unplug, away_s=8.0)
    print(f"stick back -> first frame: {took:.2f} s")
    assert took < 5.0
    assert metrics.registry.get_sample_value("edge_reconnects_total", {"component": "backend"}) >= 3
    assert api.api.open_devices == 0  # the reopened stick was closed with the pipeline


def test_bundle_refused_while_half_copied_is_loaded_once_its_signature_lands(tmp_path: Path) -> None:
    """A bundle copied file by file (manifest.json before manifest.sig) is refused as unsigned at
    first; the signature arriving changes the watched stamp, so the watcher tries again (before:
    the manifest alone was the stamp, and the refused version was never retried)."""
    models = tmp_path / "models"
    current = make_bundle(models / "current", {"model.onnx": b"onnx-bytes-v1"}, {"onnx": "model.onnx"})
    staged = make_bundle(
        tmp_path / "staged", {"model.onnx": b"onnx-bytes-v2"}, {"onnx": "model.onnx"}, version="2"
    )
    frames = write_images(tmp_path / "frames", 3)
    config = config_for(
        tmp_path, current, {"kind": "folder", "path": str(frames), "loop": True}, fps_limit=50
    )
    with running(config, []) as svc:
        wait_for(lambda: http(svc.url + "/healthz")[0] == 200, 20, "healthy")
        (current / "manifest.sig").unlink()
        shutil.copy(staged / "model.onnx", current / "model.onnx")
        shutil.copy(staged / "manifest.json", current / "manifest.json")
        wait_for(
            lambda: (
                (
                    svc.pipeline.metrics.registry.get_sample_value(
                        "edge_model_reloads_total", {"result": "refused"}
                    )
                    or 0
                )
                >= 1
            ),
            10,
            "refused",
        )
        time.sleep(5 * config.model.watch_interval)
        assert _model(svc.url) == "fake-tiny-yolo 1"  # the half-copied bundle is not loaded
        shutil.copy(staged / "manifest.sig", current / "manifest.sig")
        wait_for(lambda: _model(svc.url) == "fake-tiny-yolo 2", 10, "v2 once its signature is there")
