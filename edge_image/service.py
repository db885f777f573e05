"""``serve``: wire config → pipeline thread + aiohttp server, systemd notify/watchdog, SIGTERM.

Exit codes: 0 after SIGTERM/SIGINT (graceful: the current frame finishes, the device is
released, then the server stops), 2 for a bad config or a refused model at start-up,
1 when the pipeline crashed (systemd ``Restart=on-failure`` restarts the service).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable

from aiohttp import web

from edge_image import sdnotify
from edge_image.config import ServiceConfig
from edge_image.contract.errors import UserError
from edge_image.listener import ConnectionCap, listen, tls_context
from edge_image.metrics import Metrics
from edge_image.outputs import JsonlLog, MqttPublisher, Output, Viewer
from edge_image.pipeline import Pipeline
from edge_image.server import FrameHub, RedactingAccessLogger, make_app

log = logging.getLogger(__name__)


def make_outputs(config: ServiceConfig) -> list[Output]:
    """The configured detection outputs (JSONL log, MQTT)."""
    outputs: list[Output] = []
    if config.outputs.jsonl is not None:
        outputs.append(
            JsonlLog(
                config.outputs.jsonl,
                max_bytes=int(config.outputs.jsonl_max_mb * (1 << 20)),
                keep=config.outputs.jsonl_keep,
            )
        )
    if config.outputs.mqtt is not None:
        try:
            outputs.append(MqttPublisher(config.outputs.mqtt))
        except UserError as exc:
            raise UserError(f"{config.path}: {exc}") from exc
    return outputs


async def _watchdog(pipeline: Pipeline, interval: float, stop: asyncio.Event) -> None:
    """Ping systemd while the pipeline thread's heartbeat is fresh (or its finite source has ended);
    a hung loop stops the pings and systemd restarts the service."""
    while not stop.is_set():
        if time.monotonic() - pipeline.heartbeat < 2 * interval or pipeline.status.state == "ended":
            sdnotify.notify("WATCHDOG=1")
        else:
            log.error(
                "pipeline heartbeat is %.0f s old: withholding the watchdog ping",
                time.monotonic() - pipeline.heartbeat,
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


async def serve(
    config: ServiceConfig,
    make_pipeline: Callable[[Viewer], Pipeline] | None = None,
    *,
    stop: asyncio.Event | None = None,
    on_started: Callable[[int], None] | None = None,
) -> int:
    """Run until SIGTERM/SIGINT (or ``stop`` is set); returns the process exit code.

    ``make_pipeline(viewer)`` and ``stop`` let a caller (tests, an embedding program) supply
    its own pipeline, given the live page's viewer (the default: :class:`Pipeline` with the
    configured outputs); ``on_started(port)`` is called once HTTP is listening.
    """
    loop = asyncio.get_running_loop()
    hub = FrameHub(loop)
    if make_pipeline is None:
        pipeline = Pipeline(config, Metrics(), outputs=make_outputs(config), viewer=hub)
    else:
        pipeline = make_pipeline(hub)
    metrics = pipeline.metrics
    if pipeline.bundle is None:
        await loop.run_in_executor(None, pipeline.load_initial)
    runner = web.AppRunner(
        make_app(config, pipeline, hub, metrics),
        handle_signals=False,
        shutdown_timeout=2.0,
        access_log_class=RedactingAccessLogger,
        # aiohttp starts this timer at connect: a client that has not sent a whole request head
        # by then (or idles between requests) is disconnected
        keepalive_timeout=config.server.request_timeout_s,
        # and the unread rest of a refused body is drained for at most as long before closing
        lingering_time=config.server.request_timeout_s,
    )
    await runner.setup()
    server_cfg = config.server
    cap = ConnectionCap(server_cfg.max_connections, on_refused=metrics.connections_refused.inc)
    metrics.connections.set_function(lambda: cap.open)
    try:
        ssl_context = (
            tls_context(server_cfg.tls_cert, server_cfg.tls_key, where=str(config.path))
            if server_cfg.tls_cert is not None and server_cfg.tls_key is not None
            else None
        )
        listening = await listen(
            runner,
            host=server_cfg.host,
            port=server_cfg.port,
            cap=cap,
            ssl_context=ssl_context,
            handshake_timeout=server_cfg.request_timeout_s,
        )
    except OSError as exc:
        await runner.cleanup()
        pipeline.close()
        raise UserError(
            f"{config.path}: server.port: cannot listen on "
            f"{server_cfg.host}:{server_cfg.port}: {exc.strerror}"
        ) from exc
    except UserError:
        await runner.cleanup()
        pipeline.close()
        raise
    port = listening.sockets[0].getsockname()[1] if listening.sockets else server_cfg.port
    log.info(
        "serving %s://%s:%d/ (source: %s; at most %d connections)",
        server_cfg.scheme,
        server_cfg.host,
        port,
        config.source.describe(),
        server_cfg.max_connections,
    )

    stop = stop or asyncio.Event()
    crashed: list[BaseException] = []

    def run_pipeline() -> None:
        try:
            pipeline.run()
        except BaseException as exc:
            log.exception("pipeline crashed")
            crashed.append(exc)
            loop.call_soon_threadsafe(stop.set)

    signals = threading.current_thread() is threading.main_thread()
    if signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    thread = threading.Thread(target=run_pipeline, name="pipeline", daemon=True)
    thread.start()
    if on_started is not None:
        on_started(port)
    sdnotify.notify(f"READY=1\nSTATUS=serving {pipeline.status.model} on {pipeline.status.backend}")
    interval = sdnotify.watchdog_interval()
    watchdog = asyncio.create_task(_watchdog(pipeline, interval, stop)) if interval else None
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        sdnotify.notify("STOPPING=1")
        pipeline.stop()
        await loop.run_in_executor(None, thread.join, 30.0)
        pipeline.close()
        if watchdog is not None:
            await watchdog
        listening.close()
        await runner.cleanup()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(listening.wait_closed(), 5.0)
        if signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
    return 1 if crashed else 0
