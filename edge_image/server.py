"""HTTP side (aiohttp): live page, MJPEG stream, latest detections, health, metrics, reload.

Routes: ``/`` live page · ``/stream.mjpg`` annotated MJPEG · ``/snapshot.jpg`` latest frame ·
``/api/detections`` latest JSON · ``POST /api/reload`` verify and load a bundle ·
``/healthz`` · ``/metrics`` (Prometheus).

Request checks (middlewares, in this order):

- **Host**: an IP literal, ``localhost``, this machine's name (and ``name.local``) or one of
  ``server.allowed_hosts``; anything else is 421 (a DNS-rebinding page reaches the service under
  its own name).
- **Token** (when ``server.token`` is set), every route but ``/healthz``: ``Authorization: Bearer
  TOKEN`` (the scheme in any case) or the ``edge_token`` cookie. Opening ``/?token=TOKEN`` once
  sets that cookie (HttpOnly, SameSite=Strict) and redirects to ``/``: the page's polls and stream
  carry no token in their URLs. A token in any other URL is not accepted.
- **State changes** (POST): ``Content-Type: application/json`` (415 otherwise: no cross-site form
  or simple request gets through), an ``Origin`` header, when present, of this very host (403), and
  for a browser (the cookie) an ``Origin`` at all. Bodies are at most 64 KiB (413); non-UTF-8 or
  malformed JSON is 400, never 500.
- **Reload** paths must be inside the models directory (the parent of ``model.bundle``), 403
  otherwise; a body slower than ``server.request_timeout_s`` is 408.

Connections (the cap, head and handshake timeouts, TLS) are :mod:`edge_image.listener`'s.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import os
import re
import socket
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from edge_image.config import ServiceConfig
from edge_image.listener import read_body, too_slow
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

    def wants_jpeg(self) -> bool:
        """Someone watches the MJPEG stream (a :class:`~edge_image.outputs.Viewer`)."""
        return self.viewers > 0

    def publish(self, jpeg: bytes | None, record: dict[str, Any]) -> None:
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


COOKIE = "edge_token"
#: Largest request body (the reload request is a few hundred bytes).
MAX_BODY = 64 * 1024
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


def allowed_host_names(configured: tuple[str, ...] = ()) -> frozenset[str]:
    """Host names (not IP literals, which are always allowed) a request's Host header may carry."""
    name = socket.gethostname().lower()
    return frozenset({"localhost", name, f"{name}.local", *configured})


def host_allowed(host: str | None, names: frozenset[str]) -> bool:
    """Whether ``host`` (the Host header's name, without port or brackets) may reach the service.

    >>> names = frozenset({"localhost", "pi"})
    >>> [host_allowed(h, names) for h in ("192.168.1.20", "::1", "PI", "evil.example", None)]
    [True, True, True, False, False]
    """
    if not host:
        return False
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return host.lower().rstrip(".") in names


def _host_middleware(names: frozenset[str]) -> Middleware:
    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not host_allowed(request.url.host, names):
            return web.json_response(
                {"error": f"Host {request.host!r} not served here (add it to server.allowed_hosts)"},
                status=421,
            )
        return await handler(request)

    return check


def _bearer(header: str) -> str:
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def _token_middleware(token: str) -> Middleware:
    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not token or request.path == "/healthz":
            return await handler(request)
        if request.path == "/" and request.method == "GET" and "token" in request.query:
            # the one URL a token may travel in: trade it for the cookie and drop it from the address
            if not hmac.compare_digest(request.query["token"].encode(), token.encode()):
                return web.json_response({"error": "missing or wrong token"}, status=401)
            response = web.Response(status=303, headers={"Location": "/", "Cache-Control": "no-store"})
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
            return response
        given = _bearer(request.headers.get("Authorization", "")) or request.cookies.get(COOKIE, "")
        if not hmac.compare_digest(given.encode(), token.encode()):
            return web.json_response({"error": "missing or wrong token"}, status=401)
        return await handler(request)

    return check


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    return origin in (f"http://{request.host}", f"https://{request.host}")


@web.middleware
async def _state_change_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        if request.content_type != "application/json":
            return web.json_response(
                {"ok": False, "error": "Content-Type must be application/json"}, status=415
            )
        browser = COOKIE in request.cookies and not request.headers.get("Authorization")
        if ("Origin" in request.headers or browser) and not _same_origin(request):
            return web.json_response({"ok": False, "error": "cross-origin request refused"}, status=403)
    return await handler(request)


def _page() -> str:
    return resources.files("edge_image").joinpath("static/index.html").read_text(encoding="utf-8")


def make_app(config: ServiceConfig, pipeline: Pipeline, hub: FrameHub, metrics: Metrics) -> web.Application:
    """The aiohttp application serving ``pipeline``'s results."""
    app = web.Application(
        middlewares=[
            _host_middleware(allowed_host_names(config.server.allowed_hosts)),
            _token_middleware(config.server.token),
            _state_change_middleware,
        ],
        client_max_size=MAX_BODY,
    )
    models_root = Path(os.path.abspath(config.model.bundle)).parent
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
        raw = await read_body(request, config.server.request_timeout_s)
        if raw is None:
            return too_slow()
        if raw.strip():
            try:
                body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                return web.json_response({"ok": False, "error": "body must be UTF-8 JSON"}, status=400)
            if not isinstance(body, dict):
                return web.json_response({"ok": False, "error": "body must be a JSON object"}, status=400)
            if body.get("bundle") is not None:
                if not isinstance(body["bundle"], str) or "\x00" in body["bundle"]:
                    return web.json_response({"ok": False, "error": "bundle must be a path"}, status=400)
                target = Path(os.path.realpath(models_root / body["bundle"]))
                if not target.is_relative_to(os.path.realpath(models_root)):
                    return web.json_response(
                        {"ok": False, "error": f"bundle must be inside {models_root}"}, status=403
                    )
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
