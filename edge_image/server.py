"""HTTP side (aiohttp): live page, MJPEG stream, latest detections, health, metrics, reload.

Routes: ``/`` live page · ``/stream.mjpg`` annotated MJPEG · ``/snapshot.jpg`` latest frame ·
``/api/detections`` latest JSON · ``POST /api/reload`` verify and load a bundle ·
``/healthz`` · ``/metrics`` (Prometheus). When ``server.token`` is set every route except
``/healthz`` needs ``Authorization: Bearer TOKEN`` or ``?token=TOKEN`` (the page passes its
own ``?token=`` on to the stream and API calls).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from edge_image.config import ServiceConfig
from edge_image.metrics import Metrics
from edge_image.pipeline import Pipeline

BOUNDARY = "frame"
#: ``/healthz`` is unhealthy when no frame was processed for this long.
STALE_AFTER_S = 10.0
_TOKEN_RE = re.compile(r"([?&]token=)[^&]*")


class FrameHub:
    """Latest JPEG and record, handed from the pipeline thread to the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.jpeg: bytes | None = None
        self.record: dict[str, Any] | None = None
        self.seq = 0
        self.viewers = 0
        self._event = asyncio.Event()

    def publish_threadsafe(self, jpeg: bytes | None, record: dict[str, Any]) -> None:
        """Called from the pipeline thread for every processed frame."""
        self.loop.call_soon_threadsafe(self._publish, jpeg, record)

    def _publish(self, jpeg: bytes | None, record: dict[str, Any]) -> None:
        self.record = record
        if jpeg is not None:
            self.jpeg = jpeg
            self.seq += 1
            event, self._event = self._event, asyncio.Event()
            event.set()

    async def next_jpeg(self, after: int, timeout: float = 1.0) -> tuple[int, bytes | None]:
        """Wait for a JPEG newer than sequence ``after``; returns ``(seq, jpeg)``."""
        if self.seq <= after:
            try:
                await asyncio.wait_for(self._event.wait(), timeout)
            except TimeoutError:
                return self.seq, None
        return self.seq, self.jpeg


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RedactingAccessLogger(AbstractAccessLogger):
    """aiohttp's access log line without secrets: the page passes ``?token=`` on every poll,
    so the query's ``token`` value is written as ``***`` (the journal is readable by admins
    who should not learn the LAN token from it).

    Output: ``127.0.0.1 "GET /api/detections?token=*** HTTP/1.1" 200 0.004s``
    """

    def log(self, request: web.BaseRequest, response: web.StreamResponse, elapsed: float) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        self.logger.info(
            '%s "%s %s HTTP/%d.%d" %d %.3fs',
            request.remote,
            request.method,
            redact_query(request.path_qs),
            request.version.major,
            request.version.minor,
            response.status,
            elapsed,
        )


def redact_query(path_qs: str) -> str:
    """``path_qs`` with the value of every ``token`` query parameter replaced by ``***``.

    >>> redact_query("/api/detections?token=s3cret&x=1")
    '/api/detections?token=***&x=1'
    """
    return _TOKEN_RE.sub(r"\1***", path_qs)


def _token_middleware(token: str) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token and request.path != "/healthz":
            header = request.headers.get("Authorization", "")
            given = header[7:] if header.startswith("Bearer ") else request.query.get("token", "")
            if not hmac.compare_digest(given.encode(), token.encode()):
                return web.json_response({"error": "missing or wrong token"}, status=401)
        return await handler(request)

    return check


def _page() -> str:
    return resources.files("edge_image").joinpath("static/index.html").read_text(encoding="utf-8")


def make_app(config: ServiceConfig, pipeline: Pipeline, hub: FrameHub, metrics: Metrics) -> web.Application:
    """The aiohttp application serving ``pipeline``'s results."""
    app = web.Application(middlewares=[_token_middleware(config.server.token)])
    page = _page()

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                "Cache-Control": "no-store",
            }
        )
        await response.prepare(request)
        hub.viewers += 1
        seq = 0
        try:
            while not pipeline.stopped:
                seq, jpeg = await hub.next_jpeg(seq)
                if jpeg is None:
                    continue
                head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                await response.write(head.encode() + jpeg + b"\r\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            hub.viewers -= 1
        return response

    async def snapshot(request: web.Request) -> web.Response:
        if hub.jpeg is None:
            return web.json_response({"error": "no frame yet"}, status=503)
        return web.Response(body=hub.jpeg, content_type="image/jpeg", headers={"Cache-Control": "no-store"})

    def status_doc() -> dict[str, Any]:
        s = pipeline.status
        age = time.monotonic() - s.last_frame_at if s.last_frame_at else None
        return {
            "state": s.state,
            "model": s.model,
            "backend": s.backend,
            "device": s.device,
            "source": config.source.describe(),
            "last_frame_age_s": None if age is None else round(age, 3),
            "last_error": s.last_error,
            "last_reload": s.last_reload,
        }

    async def detections(request: web.Request) -> web.Response:
        doc = dict(hub.record or {"frame": None, "detections": []})
        doc["status"] = status_doc()
        return web.json_response(doc, headers={"Cache-Control": "no-store"})

    async def healthz(request: web.Request) -> web.Response:
        doc = status_doc()
        age = doc["last_frame_age_s"]
        healthy = doc["state"] == "running" and age is not None and age < STALE_AFTER_S
        doc["ok"] = healthy
        return web.json_response(doc, status=200 if healthy else 503)

    async def metrics_route(request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": "text/plain; version=0.0.4"})

    async def reload(request: web.Request) -> web.Response:
        target = None
        if request.can_read_body:
            try:
                body = await request.json()
            except json.JSONDecodeError:
                return web.json_response({"ok": False, "error": "body must be JSON"}, status=400)
            if not isinstance(body, dict):
                return web.json_response({"ok": False, "error": "body must be a JSON object"}, status=400)
            if body.get("bundle") is not None:
                target = Path(str(body["bundle"]))
        result = await asyncio.get_running_loop().run_in_executor(None, pipeline.request_reload, target)
        return web.json_response(result, status=200 if result.get("ok") else 409)

    app.router.add_get("/", index)
    app.router.add_get("/stream.mjpg", stream)
    app.router.add_get("/snapshot.jpg", snapshot)
    app.router.add_get("/api/detections", detections)
    app.router.add_post("/api/reload", reload)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_route)
    return app
