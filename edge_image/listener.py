"""The service's listening socket: optional TLS, a cap on open connections, slow-client timeouts.

aiohttp's own sites accept any number of connections; here each accepted connection is counted
(:class:`ConnectionCap`) and one past ``server.max_connections`` gets a short ``503`` and is closed
before aiohttp sees it, so a flood of idle or half-open sockets cannot exhaust the Pi's file
descriptors or memory. Time limits (``server.request_timeout_s``): the TLS handshake
(``ssl_handshake_timeout``), a request head that does not arrive complete (aiohttp's keep-alive
timer starts at connect and closes a connection still waiting for its head), and a body
(:func:`read_body`, 408 and the connection closed).

Inputs: an :class:`aiohttp.web.AppRunner` that was set up, the server settings. Output: an
:class:`asyncio.Server`; bad TLS files are a :class:`UserError` naming the config field.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from edge_image.contract.errors import UserError

_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 21\r\n"
    b"Retry-After: 5\r\nConnection: close\r\n\r\ntoo many connections\n"
)


def tls_context(cert: Path, key: Path, *, where: str) -> ssl.SSLContext:
    """A server context (TLS 1.2 or newer) for the PEM certificate chain ``cert`` and its ``key``.

    ``where`` names the config file in errors, e.g. ``config.yml: server.tls_cert: cannot load ...``.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    for field, path in (("tls_cert", cert), ("tls_key", key)):
        if not path.is_file():
            raise UserError(f"{where}: server.{field}: {path} not found")
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise UserError(f"{where}: server.tls_cert: cannot load {cert} with the key {key}: {exc}") from exc
    return context


class ConnectionCap:
    """How many connections are open, and whether one more may be."""

    def __init__(self, limit: int, *, on_refused: Callable[[], None] = lambda: None) -> None:
        self.limit = limit
        self.open = 0
        self.refused = 0
        self._on_refused = on_refused

    def take(self) -> bool:
        """Count one more open connection; False (and counted as refused) when at the limit."""
        if self.open >= self.limit:
            self.refused += 1
            self._on_refused()
            return False
        self.open += 1
        return True

    def release(self) -> None:
        """A counted connection closed."""
        self.open -= 1


class _Counted(asyncio.Protocol):
    """aiohttp's request handler for one connection, released from the cap when it closes."""

    def __init__(self, inner: Any, cap: ConnectionCap) -> None:
        self._inner = inner
        self._cap = cap

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cap.release()
        self._inner.connection_lost(exc)


class _Refused(asyncio.Protocol):
    """A connection over the cap: answer 503 and close, nothing read."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(_REFUSAL)
        transport.close()


def protocol_factory(
    handler_factory: Callable[[], Any], cap: ConnectionCap
) -> Callable[[], asyncio.Protocol]:
    """A factory for ``loop.create_server``: aiohttp's handler while under ``cap``, a 503 otherwise."""

    def make() -> asyncio.Protocol:
        return _Counted(handler_factory(), cap) if cap.take() else _Refused()

    return make


async def listen(
    runner: web.AppRunner,
    *,
    host: str,
    port: int,
    cap: ConnectionCap,
    ssl_context: ssl.SSLContext | None,
    handshake_timeout: float,
) -> asyncio.Server:
    """Listen on ``host:port`` for ``runner`` (already set up); see the module doc."""
    assert runner.server is not None
    return await asyncio.get_running_loop().create_server(
        protocol_factory(runner.server, cap),
        host,
        port,
        ssl=ssl_context,
        ssl_handshake_timeout=handshake_timeout if ssl_context is not None else None,
        reuse_address=True,
    )


async def read_body(request: web.Request, timeout: float) -> bytes | None:
    """The request body, or None when it has not arrived within ``timeout`` seconds (answer
    :func:`too_slow`)."""
    try:
        async with asyncio.timeout(timeout):
            return await request.read()
    except TimeoutError:
        return None


def too_slow() -> web.Response:
    """408 that also closes the connection (the rest of the body is never read)."""
    response = web.json_response({"ok": False, "error": "request body too slow"}, status=408)
    response.force_close()
    return response
