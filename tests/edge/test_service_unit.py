"""The service in-process with a scripted backend: endpoints, token, reload refusal, backend
reopen, source reconnect, sd_notify, outputs. Fast; the real-model runs are in test_service.py."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge_image.config import MqttConfig, ServiceConfig, parse_config
from edge_image.contract.manifest import Bundle
from edge_image.metrics import Metrics
from edge_image.outputs import JsonlLog, MqttPublisher, Viewer, frame_record
from edge_image.pipeline import Pipeline
from edge_image.service import serve
from tests.edge.helpers import (
    ScriptedBackend,
    free_port,
    get_json,
    http,
    make_bundle,
    metric,
    wait_for,
    write_images,
)
from tests.fixtures import signing

TOKEN = "0123456789abcdef-token"
JSON = {"Content-Type": "application/json"}


def http_no_redirect(url: str, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    """One GET without following redirects; the http.client response (read)."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers or {})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


class Running:
    """A service running on a background event loop."""

    def __init__(self, pipeline: Pipeline, port: int, loop: asyncio.AbstractEventLoop, stop: asyncio.Event):
        self.pipeline, self.port, self.loop, self.stop = pipeline, port, loop, stop
        self.url = f"http://127.0.0.1:{port}"
        self.auth: dict[str, str] = {}

    def metrics(self) -> str:
        return http(self.url + "/metrics", headers=self.auth)[1].decode()


@contextmanager
def running(
    config: ServiceConfig, backends: list[ScriptedBackend], outputs: list[Any] | None = None
) -> Iterator[Running]:
    def factory(kind: str, cfg: object, bundle: Bundle) -> ScriptedBackend:
        backend = ScriptedBackend(bundle.spec)
        backends.append(backend)
        return backend

    made: list[Pipeline] = []

    def make_pipeline(viewer: Viewer) -> Pipeline:
        made.append(
            Pipeline(config, Metrics(), outputs=outputs or (), viewer=viewer, backend_factory=factory)
        )
        return made[0]

    started = threading.Event()
    box: dict[str, Any] = {}

    def main() -> None:
        loop = asyncio.new_event_loop()
        box["loop"], box["stop"] = loop, asyncio.Event()

        def on_started(port: int) -> None:
            box["port"] = port
            started.set()

        try:
            box["rc"] = loop.run_until_complete(
                serve(config, make_pipeline, stop=box["stop"], on_started=on_started)
            )
        except BaseException as exc:
            box["error"] = exc
            started.set()
        finally:
            loop.close()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    assert started.wait(30), "service did not start"
    if "error" in box:
        raise box["error"]
    run = Running(made[0], box["port"], box["loop"], box["stop"])
    try:
        yield run
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(30)
        assert not thread.is_alive()
        assert box.get("rc") == 0


def config_for(tmp_path: Path, bundle: Path, source: dict[str, Any], **extra: Any) -> ServiceConfig:
    doc = {
        "model": {"bundle": str(bundle), "watch_interval": 0.2, "trusted_keys": str(signing.public_key())},
        "source": source,
        "backend": {"kind": "opencv", "reopen": {"initial": 0.05, "max": 0.2}},
        "server": {"port": 0},
        **extra,
    }
    return parse_config(doc, where="test.yml", base=tmp_path)


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return make_bundle(tmp_path / "bundle", {"model.onnx": b"onnx-bytes-v1"}, {"onnx": "model.onnx"})


@pytest.fixture
def frames(tmp_path: Path) -> Path:
    return write_images(tmp_path / "frames", 4)


def test_endpoints_token_and_metrics(
    tmp_path: Path, bundle: Path, frames: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    config = config_for(
        tmp_path, bundle, {"kind": "folder", "path": str(frames), "loop": True},
        server={"port": 0, "token": TOKEN}, fps_limit=50,
    )  # fmt: skip
    with running(config, []) as svc:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        svc.auth = auth
        wait_for(
            lambda: get_json(svc.url + "/api/detections", headers=auth)[1]["detections"], 20, "detections"
        )
        assert http(svc.url + "/api/detections")[0] == 401
        assert http(svc.url + "/metrics", headers={"Authorization": "Bearer wrong-token-1234567"})[0] == 401
        # the scheme is case-insensitive (RFC 9110); a token in a polled URL is not accepted
        assert http(svc.url + "/metrics", headers={"Authorization": f"bearer {TOKEN}"})[0] == 200
        assert http(svc.url + f"/api/detections?token={TOKEN}")[0] == 401
        status, doc = get_json(svc.url + "/api/detections", headers=auth)
        assert status == 200 and doc["status"]["state"] == "running"
        det = doc["detections"][0]
        assert det["label"] == "apple" and det["score"] > 0.9
        x1, y1, x2, y2 = det["box"]
        assert x1 < 160 < x2 and y1 < 120 < y2  # centre cell (6, 6) of a 320x240 frame
        assert doc["model"] == "fake-tiny-yolo 1" and set(doc["latency_ms"]) >= {"capture", "infer", "decode"}
        # /?token= once: the token becomes an HttpOnly SameSite=Strict cookie, the address loses it
        login = http_no_redirect(svc.url + f"/?token={TOKEN}")
        assert login.status == 303 and login.getheader("Location") == "/"
        cookie = login.getheader("Set-Cookie")
        assert (
            cookie.startswith(f"edge_token={TOKEN};") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        )
        page = http(svc.url + "/", headers={"Cookie": f"edge_token={TOKEN}"})[1].decode()
        assert "stream.mjpg" in page and "api/detections" in page and "location.search" not in page
        assert http(svc.url + "/api/detections", headers={"Cookie": f"edge_token={TOKEN}"})[0] == 200
        # the access log never has the token, not even the refused ?token= above
        access = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
        assert any('/api/detections?token=*** HTTP/1.1" 401' in line for line in access), access[:5]
        assert not any(TOKEN in line for line in access)
        first = metric(svc.metrics(), "edge_frames_total")
        status, body, _ = http(svc.url + "/snapshot.jpg", headers=auth)
        image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
        green = (image[..., 1] > 200) & (image[..., 0] < 80) & (image[..., 2] < 80)
        assert status == 200 and green.sum() > 200  # the drawn box
        wait_for(lambda: metric(svc.metrics(), "edge_frames_total") > first + 3, 20, "frames")
        text = svc.metrics()
        assert metric(text, "edge_detections_total", 'label="apple"') > 0
        assert metric(text, "edge_stage_seconds_count", 'stage="infer"') > 0
        assert metric(text, "edge_fps") > 0
        assert (
            'edge_model_info{backend="scripted",device="test",name="fake-tiny-yolo",version="1"} 1.0' in text
        )
        # MJPEG: multipart parts, each a JPEG
        import urllib.request

        req = urllib.request.Request(svc.url + "/stream.mjpg", headers=auth)
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.headers["Content-Type"].startswith("multipart/x-mixed-replace")
            chunk = resp.read(4096)
        assert chunk.startswith(b"--frame\r\nContent-Type: image/jpeg") and b"\xff\xd8" in chunk


def test_reload_refuses_corrupt_bundle_and_keeps_serving(tmp_path: Path, bundle: Path, frames: Path) -> None:
    config = config_for(tmp_path, bundle, {"kind": "folder", "path": str(frames), "loop": True}, fps_limit=50)
    backends: list[ScriptedBackend] = []
    with running(config, backends) as svc:
        wait_for(lambda: http(svc.url + "/healthz")[0] == 200, 20, "healthy")
        (bundle / "model.onnx").write_bytes(b"onnx-bytes-v2")  # same size, different bytes
        status, result = get_json(svc.url + "/api/reload", method="POST", body=b"{}", headers=JSON)
        assert status == 409 and not result["ok"]
        assert "model.onnx: sha256 mismatch" in result["error"] and result["kept"] == "fake-tiny-yolo 1"
        # the watcher sees a changed manifest too: a broken one is refused the same way
        (bundle / "manifest.json").write_text("{not json")
        wait_for(
            lambda: metric(svc.metrics(), "edge_model_reloads_total", 'result="refused"') >= 2, 10, "refusal"
        )
        frames_before = metric(svc.metrics(), "edge_frames_total")
        wait_for(lambda: metric(svc.metrics(), "edge_frames_total") > frames_before + 3, 10, "still serving")
        assert len(backends) == 1 and not backends[0].closed
        _, doc = get_json(svc.url + "/api/detections")
        assert (
            doc["status"]["last_reload"]["ok"] is False
            and "manifest.json" in doc["status"]["last_reload"]["error"]
        )
        # a good new version is picked up by the watcher, the old backend released
        shutil.rmtree(bundle)
        make_bundle(bundle, {"model.onnx": b"onnx-bytes-v2"}, {"onnx": "model.onnx"}, version="2")
        wait_for(lambda: get_json(svc.url + "/api/detections")[1]["model"] == "fake-tiny-yolo 2", 10, "v2")
        assert backends[0].closed and len(backends) == 2
        assert metric(svc.metrics(), "edge_model_reloads_total", 'result="ok"') == 1


def test_backend_failure_reopens_and_source_loss_reconnects(
    tmp_path: Path, bundle: Path, frames: Path
) -> None:
    source = {"kind": "folder", "path": str(frames), "loop": True, "reconnect": {"initial": 0.05, "max": 0.2}}
    config = config_for(tmp_path, bundle, source, fps_limit=50)
    backends: list[ScriptedBackend] = []
    with running(config, backends) as svc:
        wait_for(lambda: http(svc.url + "/healthz")[0] == 200, 20, "healthy")
        backends[-1].fail_next = True
        wait_for(lambda: len(backends) == 2, 10, "backend reopened")
        text = svc.metrics()
        assert metric(text, "edge_errors_total", 'kind="backend"') == 1
        assert metric(text, "edge_reconnects_total", 'component="backend"') == 1
        assert backends[0].closed
        hidden = tmp_path / "hidden"
        frames.rename(hidden)  # the "camera" disappears
        wait_for(
            lambda: metric(svc.metrics(), "edge_reconnects_total", 'component="source"') >= 2,
            15,
            "reconnects",
        )
        _, doc = get_json(svc.url + "/healthz")
        assert doc["state"] == "reconnecting" and "not found" in doc["last_error"]
        hidden.rename(frames)
        wait_for(lambda: http(svc.url + "/healthz")[0] == 200, 15, "recovered")
        assert metric(svc.metrics(), "edge_pipeline_up") == 1


def test_sd_notify_ready_watchdog_stopping(
    tmp_path: Path, bundle: Path, frames: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(10)
    monkeypatch.setenv("NOTIFY_SOCKET", str(sock_path))
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # ping every 0.1 s
    import os

    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    config = config_for(tmp_path, bundle, {"kind": "folder", "path": str(frames), "loop": True}, fps_limit=20)
    messages: list[str] = []
    with running(config, []):
        while sum(m == "WATCHDOG=1" for m in messages) < 3:
            messages.append(sock.recv(4096).decode())
    while "STOPPING=1" not in messages:
        messages.append(sock.recv(4096).decode())
    sock.close()
    assert messages[0].startswith("READY=1\nSTATUS=serving fake-tiny-yolo 1")
    assert messages[-1] == "STOPPING=1"


def test_jsonl_log_and_mqtt_payload(tmp_path: Path, bundle: Path, frames: Path) -> None:
    class FakeClient:
        def __init__(self, client_id: str) -> None:
            self.client_id = client_id
            self.published: list[tuple[str, bytes, int]] = []
            self.calls: list[str] = []

        def username_pw_set(self, user: str, password: str | None) -> None:
            self.calls.append(f"auth {user}")

        def reconnect_delay_set(self, min_delay: int, max_delay: int) -> None:
            self.calls.append("delay")

        def connect_async(self, host: str, port: int, keepalive: int) -> None:
            self.calls.append(f"connect {host}:{port}")

        def loop_start(self) -> None:
            self.calls.append("loop_start")
            self.on_connect(self, None, None, 0, None)

        def publish(self, topic: str, payload: bytes, qos: int) -> None:
            self.published.append((topic, payload, qos))

        def disconnect(self) -> None:
            self.calls.append("disconnect")

        def loop_stop(self) -> None:
            self.calls.append("loop_stop")

    clients: list[FakeClient] = []
    mqtt = MqttPublisher(
        MqttConfig(host="broker.local", topic="edge/pi1/detections", qos=1, username="pi"),
        client_factory=lambda cid: clients.append(FakeClient(cid)) or clients[-1],
    )
    jsonl = JsonlLog(tmp_path / "log" / "detections.jsonl")
    config = config_for(tmp_path, bundle, {"kind": "folder", "path": str(frames), "loop": False})
    with running(config, [], outputs=[jsonl, mqtt]) as svc:
        wait_for(lambda: svc.pipeline.status.state == "ended", 20, "folder finished")
    client = clients[0]
    assert client.calls[:4] == ["auth pi", "delay", "connect broker.local:1883", "loop_start"]
    assert client.calls[-2:] == ["disconnect", "loop_stop"]
    assert len(client.published) == 4
    topic, payload, qos = client.published[0]
    doc = json.loads(payload)
    assert (topic, qos) == ("edge/pi1/detections", 1)
    assert doc["detections"][0]["label"] == "apple" and doc["frame"] == 1 and doc["width"] == 320
    lines = (tmp_path / "log" / "detections.jsonl").read_text().splitlines()
    assert [json.loads(line)["frame"] for line in lines] == [1, 2, 3, 4]
    empty = frame_record(
        frame=9, timestamp=0, model="m", backend="b", width=1, height=1, detections=[], latency_ms={}
    )
    assert mqtt.payload(empty) is None


def test_stream_source_reconnects_until_the_stream_appears(
    tmp_path: Path, bundle: Path, frames: Path
) -> None:
    """Service B reads service A's /stream.mjpg over HTTP; A starts only after B has retried."""
    port = free_port()
    source_b = {
        "kind": "stream",
        "url": f"http://127.0.0.1:{port}/stream.mjpg",
        "reconnect": {"initial": 0.1, "max": 0.3},
    }
    config_b = config_for(tmp_path, bundle, source_b)
    config_a = config_for(
        tmp_path, bundle, {"kind": "folder", "path": str(frames), "loop": True},
        server={"port": port}, fps_limit=20,
    )  # fmt: skip
    with running(config_b, []) as b:
        wait_for(
            lambda: metric(b.metrics(), "edge_reconnects_total", 'component="source"') >= 2, 15, "retries"
        )
        assert http(b.url + "/healthz")[0] == 503
        with running(config_a, []):
            doc = wait_for(
                lambda: (d := get_json(b.url + "/api/detections")[1])["frame"] and d, 20, "B reading A"
            )
            assert http(b.url + "/healthz")[0] == 200
            assert doc["width"] == 320 and doc["status"]["source"].startswith("stream http://")
        # A is gone again: B notices and goes back to reconnecting
        retries = metric(b.metrics(), "edge_reconnects_total", 'component="source"')
        wait_for(
            lambda: metric(b.metrics(), "edge_reconnects_total", 'component="source"') > retries, 20, "loss"
        )
        assert metric(b.metrics(), "edge_errors_total", 'kind="source"') >= 1
