"""What the pipeline hands every processed frame to: outputs (a JSONL log, MQTT publishing
with paho-mqtt) get its record, a viewer (the service's live page) its record and JPEG.

Every output receives the same record per processed frame (see :func:`frame_record`). A
failing output is logged and counted; it never stops the pipeline. Both are passed to
:class:`~edge_image.pipeline.Pipeline` when it is made.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from edge_image.config import MqttConfig
from edge_image.contract.errors import UserError

log = logging.getLogger(__name__)


class Output(Protocol):
    """Receives every frame's record (called from the pipeline thread)."""

    def write(self, record: dict[str, Any]) -> None:
        """Take one frame's record; may raise (counted as an output error)."""

    def close(self) -> None:
        """Flush and release; called once when the pipeline stops."""


class Viewer(Protocol):
    """The live view: the latest record and, when it wants one, the annotated JPEG."""

    def wants_jpeg(self) -> bool:
        """Whether someone is watching (otherwise a JPEG is drawn at most once a second)."""

    def publish(self, jpeg: bytes | None, record: dict[str, Any]) -> None:
        """Take the frame's record and JPEG (None: not drawn for this frame)."""


def frame_record(
    *,
    frame: int,
    timestamp: float,
    model: str,
    backend: str,
    width: int,
    height: int,
    detections: list[dict[str, object]],
    latency_ms: dict[str, float],
) -> dict[str, Any]:
    """The JSON document for one frame (also what ``/api/detections`` returns).

    >>> sorted(frame_record(frame=1, timestamp=0.0, model="m 1", backend="opencv", width=4, height=3,
    ...                     detections=[], latency_ms={}))
    ['backend', 'detections', 'frame', 'height', 'latency_ms', 'model', 'timestamp', 'width']
    """
    return {
        "frame": frame,
        "timestamp": round(timestamp, 3),
        "model": model,
        "backend": backend,
        "width": width,
        "height": height,
        "detections": detections,
        "latency_ms": {k: round(v, 3) for k, v in latency_ms.items()},
    }


class JsonlLog:
    """Append one JSON line per frame that has detections, rotating by size so the log cannot fill
    a Pi's SD card: at ``max_bytes`` the file becomes ``<name>.1`` (older ones shift up to
    ``<name>.<keep>``, the oldest is dropped). :class:`logging.handlers.RotatingFileHandler` does
    the rotation; every line is flushed as it is written.
    """

    def __init__(self, path: Path, *, max_bytes: int = 10 << 20, keep: int = 3) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=keep, encoding="utf-8"
        )
        self._handler.setFormatter(logging.Formatter("%(message)s"))

    def write(self, record: dict[str, Any]) -> None:
        if record["detections"]:
            line = json.dumps(record, separators=(",", ":"))
            self._handler.emit(logging.makeLogRecord({"msg": line, "levelno": logging.INFO}))

    def close(self) -> None:
        self._handler.close()


def mqtt_tls_context(config: MqttConfig) -> ssl.SSLContext:
    """TLS 1.2+ client context that verifies the broker's certificate and name (``tls_ca_file`` or
    the system CAs) and presents ``tls_cert_file``/``tls_key_file`` when given."""
    try:
        context = ssl.create_default_context(
            cafile=str(config.tls_ca_file) if config.tls_ca_file is not None else None
        )
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if config.tls_cert_file is not None and config.tls_key_file is not None:
            context.load_cert_chain(config.tls_cert_file, config.tls_key_file)
    except (OSError, ssl.SSLError) as exc:
        files = ", ".join(
            str(p) for p in (config.tls_ca_file, config.tls_cert_file, config.tls_key_file) if p is not None
        )
        raise UserError(f"outputs.mqtt: cannot load the TLS files {files}: {exc}") from exc
    return context


def _paho_client(client_id: str) -> Any:
    import paho.mqtt.client as mqtt

    return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)


class MqttPublisher:
    """Publish each record as JSON to ``config.topic``; connects in the background, reconnects itself.

    ``client_factory(client_id)`` returns a paho-compatible client (tests pass a fake).
    """

    def __init__(self, config: MqttConfig, client_factory: Callable[[str], Any] = _paho_client) -> None:
        self.config = config
        self.client = client_factory(config.client_id or f"edge-image-{os.getpid()}")
        if config.tls:
            self.client.tls_set_context(mqtt_tls_context(config))
        elif config.password:
            log.warning(
                "mqtt %s:%d: the password travels in clear text (set outputs.mqtt.tls: true)",
                config.host,
                config.port,
            )
        if config.username:
            self.client.username_pw_set(config.username, config.password or None)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.connected = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.connect_async(config.host, config.port, keepalive=30)
        self.client.loop_start()

    def _on_connect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any = None
    ) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("mqtt %s:%d refused the connection: %s", self.config.host, self.config.port, reason)
            return
        self.connected.set()
        log.info("mqtt connected to %s:%d", self.config.host, self.config.port)

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any = None
    ) -> None:
        self.connected.clear()

    def payload(self, record: dict[str, Any]) -> bytes | None:
        """Bytes to publish for ``record``, or None when it is skipped (no detections)."""
        if self.config.only_with_detections and not record["detections"]:
            return None
        return json.dumps(record, separators=(",", ":")).encode("utf-8")

    def write(self, record: dict[str, Any]) -> None:
        payload = self.payload(record)
        if payload is not None and self.connected.is_set():
            self.client.publish(self.config.topic, payload, qos=self.config.qos)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
