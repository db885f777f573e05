"""The service's YAML configuration: parse, validate, and turn into typed settings.

Every mistake becomes one :class:`UserError` line naming the file and the dotted field,
e.g. ``config.yml: source.kind: must be one of camera, video, stream, folder``.
Unknown fields are errors too (a typo must not be silently ignored).
See ``edge_image/config.example.yml`` for every field with its default.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit, urlunsplit

import yaml

from edge_image.contract.errors import UserError
from edge_image.contract.fields import Fields

if TYPE_CHECKING:
    from edge_image.contract.signing import BundleTrust

SOURCE_KINDS = ("camera", "video", "stream", "folder")
BACKEND_KINDS = ("auto", "mvnc", "openvino", "opencv")
OPENVINO_DEVICES = ("CPU", "MYRIAD", "GPU", "AUTO")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
#: Where a Pi keeps the public keys bundles must be signed with (roles/edge_service installs them).
DEFAULT_TRUSTED_KEYS = Path("/etc/edge-image/trusted-keys")

T = TypeVar("T")


def redact_url(url: str) -> str:
    """``url`` with its credentials replaced by ``***``, for status pages, logs and ``check-config``
    (``/healthz`` answers without a token): the password of ``user:password@``, and the value of
    every query parameter (cameras take ``?user=…&password=…`` or tokens there).

    >>> redact_url("rtsp://admin:secret@10.0.0.9:554/live")
    'rtsp://admin:***@10.0.0.9:554/live'
    >>> redact_url("http://cam.local/video.cgi?user=admin&pwd=s3cret")
    'http://cam.local/video.cgi?user=***&pwd=***'
    >>> redact_url("http://cam.local/stream.mjpg")
    'http://cam.local/stream.mjpg'
    """
    parts = urlsplit(url)
    if parts.password is not None:
        host = parts.netloc.rsplit("@", 1)[1]
        parts = parts._replace(netloc=f"{parts.username}:***@{host}")
    if parts.query:
        query = "&".join(f"{item.partition('=')[0]}=***" for item in parts.query.split("&") if item)
        parts = parts._replace(query=query)
    return urlunsplit(parts)


@dataclass(frozen=True)
class Backoff:
    """Reconnect delays: ``initial`` seconds, times ``factor`` after each failure, at most ``maximum``.

    The cap is what bounds recovery: a camera or stick that comes back is picked up by the next
    attempt, at most ``maximum`` seconds later, however long it was away. 3 s keeps recovery
    under 5 s (tests/edge/test_faults.py measures it) for the price of one open attempt every 3 s.
    """

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 3.0

    def delay(self, failures: int) -> float:
        """Delay before retry number ``failures`` (1-based).

        >>> [Backoff(0.5, 2.0, 3.0).delay(n) for n in (1, 2, 3, 4)]
        [0.5, 1.0, 2.0, 3.0]
        """
        return min(self.maximum, self.initial * self.factor ** max(0, failures - 1))


@dataclass(frozen=True)
class ModelConfig:
    """``model:`` the bundle directory, thresholds, whether to watch it for changes, and whose
    signatures a bundle must carry (``trusted_keys``: PEM files or directories of ``*.pem``;
    ``allow_unsigned``: development only, logged on every load)."""

    bundle: Path
    thresh: float = 0.25
    nms: float = 0.45
    watch: bool = True
    watch_interval: float = 2.0
    trusted_keys: tuple[Path, ...] = (DEFAULT_TRUSTED_KEYS,)
    allow_unsigned: bool = False

    def trust(self) -> BundleTrust:
        """The keys as they are on disk now (rotation needs no restart); :class:`UserError` if unreadable."""
        from edge_image.contract.signing import BundleTrust, load_trusted_keys

        return BundleTrust(load_trusted_keys(self.trusted_keys), allow_unsigned=self.allow_unsigned)


@dataclass(frozen=True)
class SourceConfig:
    """``source:`` where frames come from (``index`` for camera, ``path`` for video/folder, ``url``)."""

    kind: str
    index: int = 0
    path: Path | None = None
    url: str = ""
    loop: bool = False
    width: int = 0
    height: int = 0
    reconnect: Backoff = field(default_factory=Backoff)

    @property
    def live(self) -> bool:
        """Live sources (camera, stream) drop stale frames; files are read in order."""
        return self.kind in ("camera", "stream")

    def describe(self) -> str:
        """Human-readable source, e.g. ``camera 0`` or ``video /data/a.mp4``."""
        if self.kind == "camera":
            return f"camera {self.index}"
        if self.kind == "stream":
            return f"stream {redact_url(self.url or '')}"
        return f"{self.kind} {self.path}"


@dataclass(frozen=True)
class BackendConfig:
    """``backend:`` which inference engine (``auto`` picks stick → OpenVINO → OpenCV).

    ``precision``: ``f32`` makes OpenVINO's CPU plugin compute in float32 (its default on
    CPUs with bf16/fp16 units is reduced precision, which shifts scores by ~1%);
    ``auto`` keeps the plugin's faster default.
    """

    kind: str = "auto"
    device: str = "CPU"
    threads: int = 0
    precision: str = "f32"
    reopen: Backoff = field(default_factory=lambda: Backoff(1.0, 2.0, 3.0))


@dataclass(frozen=True)
class ServerConfig:
    """``server:`` HTTP bind address; ``token`` is required when not bound to loopback."""

    host: str = "127.0.0.1"
    port: int = 8080
    token: str = ""
    jpeg_quality: int = 80
    #: Host names (besides IP literals, localhost and this machine's name and name.local) that
    #: requests may carry in their Host header: anything else is refused (DNS rebinding).
    allowed_hosts: tuple[str, ...] = ()
    #: open connections beyond this get 503 and are closed (idle sockets cannot pile up)
    max_connections: int = 64
    #: seconds a client has for a TLS handshake, a request head or a request body
    request_timeout_s: float = 10.0
    #: PEM certificate chain and key: HTTPS instead of HTTP when both are set
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @property
    def scheme(self) -> str:
        """``https`` with a certificate, ``http`` without."""
        return "https" if self.tls_cert is not None else "http"


@dataclass(frozen=True)
class MqttConfig:
    """``outputs.mqtt:`` broker and topic for one JSON message per frame with detections."""

    host: str
    port: int = 1883
    topic: str = "edge/detections"
    client_id: str = ""
    qos: int = 0
    username: str = ""
    password: str = ""
    only_with_detections: bool = True
    #: MQTT over TLS (port 8883 by default), verifying the broker against ``tls_ca_file`` (system
    #: CAs when unset); ``tls_cert_file``/``tls_key_file``: a client certificate for brokers that ask
    tls: bool = False
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None


@dataclass(frozen=True)
class OutputsConfig:
    """``outputs:`` optional JSONL detection log and MQTT publishing."""

    jsonl: Path | None = None
    #: the JSONL log rotates at this size, keeping this many older files
    jsonl_max_mb: float = 10.0
    jsonl_keep: int = 3
    mqtt: MqttConfig | None = None


@dataclass(frozen=True)
class ServiceConfig:
    """Everything ``python -m edge_image serve`` needs."""

    path: Path
    model: ModelConfig
    source: SourceConfig
    backend: BackendConfig = field(default_factory=BackendConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    outputs: OutputsConfig = field(default_factory=OutputsConfig)
    fps_limit: float = 0.0
    log_level: str = "INFO"


def _paths(r: Fields, key: str, base: Path, default: tuple[Path, ...]) -> tuple[Path, ...]:
    """A path or a non-empty list of paths (relative to ``base``)."""
    value = r.raw(key)
    if value is None:
        return default
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) and v for v in items):
        raise r.error(key, f"must be a path or a non-empty list of paths, got {value!r}")
    return tuple(p if p.is_absolute() else base / p for p in (Path(os.path.expanduser(v)) for v in items))


def _backoff(reader: Fields, default: Backoff) -> Backoff:
    result = Backoff(
        initial=reader.number("initial", default.initial, low=0.0, high=3600.0),
        factor=reader.number("factor", default.factor, low=1.0, high=10.0),
        maximum=reader.number("max", default.maximum, low=0.0, high=3600.0),
    )
    reader.finish()
    if result.maximum < result.initial:
        raise reader.error("max", f"must be >= initial ({result.initial:g})")
    return result


def _source(r: Fields, base: Path) -> SourceConfig:
    kind = r.choice("kind", SOURCE_KINDS)
    index, path, url = 0, None, ""
    if kind == "camera":
        index = r.integer("index", 0, high=63)
    elif kind == "stream":
        url = r.string("url")
        if "://" not in url:
            raise r.error("url", f"must be a URL such as rtsp://host/path or http://host/video, got {url!r}")
    else:
        path = r.path("path", base)
    loop = r.boolean("loop", False)
    if loop and kind not in ("video", "folder"):
        raise r.error("loop", "only applies to video and folder sources")
    width = r.integer("width", 0, high=8192)
    height = r.integer("height", 0, high=8192)
    reconnect = _backoff(r.child("reconnect"), Backoff())
    r.finish()
    return SourceConfig(kind, index, path, url, loop, width, height, reconnect)


_HOST_NAME = re.compile(
    r"(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*"
)


def _host_names(r: Fields, key: str) -> tuple[str, ...]:
    value = r.raw(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(
        isinstance(v, str) and _HOST_NAME.fullmatch(v.lower()) for v in value
    ):
        raise r.error(key, f"must be a list of host names such as [pi-kitchen.local], got {value!r}")
    return tuple(v.lower() for v in value)


def _server(r: Fields, base: Path) -> ServerConfig:
    host = r.string("host", "127.0.0.1")
    if host not in LOCAL_HOSTS and host not in ("0.0.0.0", "::"):
        try:
            ipaddress.ip_address(host)
        except ValueError as exc:
            raise r.error("host", f"must be an IP address (e.g. 127.0.0.1 or 0.0.0.0), got {host!r}") from exc
    token = r.string("token", "")
    token_file = r.raw("token_file")
    if token_file is not None:
        if not isinstance(token_file, str):
            raise r.error("token_file", f"must be a string, got {token_file!r}")
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise r.error("token_file", f"cannot read {token_file}: {exc.strerror}") from exc
    if host not in LOCAL_HOSTS and not token:
        raise r.error(
            "token", f"is required when server.host is {host} (not loopback); set token or token_file"
        )
    if token and len(token) < 16:
        raise r.error("token", "must be at least 16 characters")
    tls_cert = r.path("tls_cert", base) if r.has("tls_cert") else None
    tls_key = r.path("tls_key", base) if r.has("tls_key") else None
    if (tls_cert is None) != (tls_key is None):
        raise r.error("tls_key" if tls_key is None else "tls_cert", "tls_cert and tls_key go together")
    server = ServerConfig(
        host=host,
        port=r.integer("port", 8080, low=0, high=65535),
        token=token,
        jpeg_quality=r.integer("jpeg_quality", 80, low=10, high=100),
        allowed_hosts=_host_names(r, "allowed_hosts"),
        max_connections=r.integer("max_connections", 64, low=1, high=4096),
        request_timeout_s=r.number("request_timeout_s", 10.0, low=0.5, high=300.0),
        tls_cert=tls_cert,
        tls_key=tls_key,
    )
    r.finish()
    return server


def _outputs(r: Fields, base: Path) -> OutputsConfig:
    jsonl = r.path("jsonl", base) if r.has("jsonl") else None
    jsonl_max_mb = r.number("jsonl_max_mb", 10.0, low=0.01, high=100_000.0)
    jsonl_keep = r.integer("jsonl_keep", 3, low=1, high=100)
    mqtt = None
    if r.has("mqtt"):
        m = r.child("mqtt")
        tls = m.boolean("tls", False)
        tls_files = {
            key: (m.path(key, base) if m.has(key) else None)
            for key in ("tls_ca_file", "tls_cert_file", "tls_key_file")
        }
        for key, path in tls_files.items():
            if path is not None and not tls:
                raise m.error(key, "needs tls: true")
        if (tls_files["tls_cert_file"] is None) != (tls_files["tls_key_file"] is None):
            raise m.error("tls_key_file", "tls_cert_file and tls_key_file go together")
        mqtt = MqttConfig(
            host=m.string("host"),
            port=m.integer("port", 8883 if tls else 1883, low=1, high=65535),
            topic=m.string("topic", "edge/detections"),
            client_id=m.string("client_id", ""),
            qos=m.integer("qos", 0, high=2),
            username=m.string("username", ""),
            password=m.string("password", ""),
            only_with_detections=m.boolean("only_with_detections", True),
            tls=tls,
            **tls_files,
        )
        if not mqtt.topic or any(ch in mqtt.topic for ch in "+#"):
            raise m.error("topic", "must be a non-empty topic without wildcards (+, #)")
        m.finish()
    else:
        r.raw("mqtt")
    r.finish()
    return OutputsConfig(jsonl=jsonl, jsonl_max_mb=jsonl_max_mb, jsonl_keep=jsonl_keep, mqtt=mqtt)


def parse_config(data: object, *, where: str = "config.yml", base: Path | None = None) -> ServiceConfig:
    """Validate an already-parsed YAML document; relative paths resolve against ``base``.

    >>> try:
    ...     parse_config({"model": {"bundle": "/m"}, "source": {"kind": "webcam"}}, where="c.yml")
    ... except UserError as exc:
    ...     print(exc)
    c.yml: source.kind: must be one of camera, video, stream, folder, got 'webcam'
    """
    base = base or Path.cwd()
    top = Fields(where, "", data)
    m = top.child("model")
    model = ModelConfig(
        bundle=m.path("bundle", base),
        thresh=m.number("thresh", 0.25, low=0.0, high=1.0),
        nms=m.number("nms", 0.45, low=0.0, high=1.0),
        watch=m.boolean("watch", True),
        watch_interval=m.number("watch_interval", 2.0, low=0.1, high=3600.0),
        trusted_keys=_paths(m, "trusted_keys", base, (DEFAULT_TRUSTED_KEYS,)),
        allow_unsigned=m.boolean("allow_unsigned", False),
    )
    m.finish()
    source = _source(top.child("source"), base)
    b = top.child("backend")
    backend = BackendConfig(
        kind=b.choice("kind", BACKEND_KINDS, "auto"),
        device=b.choice("device", OPENVINO_DEVICES, "CPU"),
        threads=b.integer("threads", 0, high=256),
        precision=b.choice("precision", ("f32", "auto"), "f32"),
        reopen=_backoff(b.child("reopen"), Backoff(1.0, 2.0, 3.0)),
    )
    b.finish()
    server = _server(top.child("server"), base)
    outputs = _outputs(top.child("outputs"), base)
    config = ServiceConfig(
        path=Path(where),
        model=model,
        source=source,
        backend=backend,
        server=server,
        outputs=outputs,
        fps_limit=top.number("fps_limit", 0.0, low=0.0, high=1000.0),
        log_level=top.choice("log_level", ("DEBUG", "INFO", "WARNING", "ERROR"), "INFO"),
    )
    top.finish()
    return config


def load_config(path: str | os.PathLike[str]) -> ServiceConfig:
    """Read and validate a YAML config file; :class:`UserError` names the file and field."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise UserError(f"{file}: config file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{file}: cannot read: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{file}: {line}invalid YAML ({problem})") from exc
    return parse_config(data, where=str(file), base=file.resolve().parent)
