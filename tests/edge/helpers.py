"""Helpers for the edge tests: small bundles, a scripted backend, a running service, HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge_image.contract.decode import VOC_TINY_ANCHORS, RegionSpec
from edge_image.contract.manifest import build_manifest, write_manifest
from tests.fixtures import signing

REPO_ROOT = Path(__file__).resolve().parents[2]
CLASSES = ("apple", "banana", "cherry")


def make_bundle(root: Path, files: dict[str, bytes], artifacts: dict[str, str], version: str = "1") -> Path:
    """Write ``files`` and a manifest listing them into ``root`` (a bundle with 3 classes), signed with
    the test key (tests/fixtures/signing.py)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "obj.names").write_text("\n".join(CLASSES) + "\n")
    for name, data in files.items():
        (root / name).write_bytes(data)
    manifest = build_manifest(
        root, name="fake-tiny-yolo", version=version, classes=CLASSES, anchors=VOC_TINY_ANCHORS,
        input_size=[416, 416, 3], artifacts={"names": "obj.names", **artifacts}, source_checkpoint=None,
        metrics=None, tool_versions={"test": "1"},
    )  # fmt: skip
    write_manifest(root, manifest)
    return signing.sign(root)


def one_object_output(
    spec: RegionSpec, row: int = 6, col: int = 6, anchor: int = 2, klass: int = 0
) -> np.ndarray:
    """An NHWC output with exactly one confident object (cell row/col, anchor, class)."""
    out = np.zeros((13, 13, spec.num, 5 + spec.classes), np.float32)
    out[..., 4] = -8.0
    out[row, col, anchor, 4] = 4.0
    out[row, col, anchor, 5 + klass] = 6.0
    return out.reshape(13, 13, spec.channels)


class ScriptedBackend:
    """A Backend that returns one object; ``fail_next`` makes the next infer raise BackendError."""

    name = "scripted"
    device = "test"
    input_hw = (416, 416)
    input_layout = "nhwc"
    input_dtype = np.float32
    output_layout = "hwc"

    def __init__(self, spec: RegionSpec, klass: int = 0) -> None:
        self.output = one_object_output(spec, klass=klass)
        self.closed = False
        self.calls = 0
        self.fail_next = False

    def infer(self, blob: np.ndarray) -> np.ndarray:
        from edge_image.backends import BackendError

        assert blob.shape == (1, 416, 416, 3) and blob.dtype == np.float32
        self.calls += 1
        if self.fail_next:
            self.fail_next = False
            raise BackendError("scripted failure")
        return self.output

    def close(self) -> None:
        self.closed = True


class Records(list):
    """An output that keeps every frame's record (pass it in ``Pipeline(outputs=[...])``)."""

    def write(self, record: dict[str, Any]) -> None:
        self.append(record)

    def close(self) -> None:
        pass


def write_images(folder: Path, count: int = 5, size: tuple[int, int] = (320, 240)) -> Path:
    """``count`` small JPEGs with a moving square."""
    folder.mkdir(parents=True, exist_ok=True)
    w, h = size
    for i in range(count):
        img = np.full((h, w, 3), 60, np.uint8)
        cv2.rectangle(img, (20 + 10 * i, 40), (120 + 10 * i, 140), (0, 0, 200), -1)
        cv2.imwrite(str(folder / f"img{i:03d}.jpg"), img)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(url: str, *, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None,
         timeout: float = 10.0) -> tuple[int, bytes, dict[str, str]]:  # fmt: skip
    """(status, body, headers) without raising on HTTP errors."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def get_json(url: str, **kw: Any) -> tuple[int, Any]:
    status, body, _ = http(url, **kw)
    return status, json.loads(body)


def metric(text: str, name: str, labels: str = "") -> float:
    """Value of one sample in Prometheus text: ``metric(t, "edge_frames_total")``."""
    key = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(key + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{key} not in metrics")


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail naming ``what``."""
    end = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < end:
        try:
            last = predicate()
        except (OSError, ValueError) as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last: {last!r})")


class ServiceProcess:
    """``python -m edge_image serve --config FILE`` as a subprocess, with its log kept."""

    def __init__(self, config: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.log_path = log
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge_image", "serve", "--config", str(config)],
            cwd=REPO_ROOT, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
        )  # fmt: skip

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return int(self.proc.returncode)


def scrape(url: str, name: str, labels: str = "", **kw: Any) -> float:
    """One sample from ``url``/metrics (``url`` is the service root)."""
    return metric(http(url + "/metrics", **kw)[1].decode(), name, labels)
