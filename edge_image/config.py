"""The service's YAML configuration: parse, validate, and turn into typed settings.

Every mistake becomes one :class:`UserError` line naming the file and the dotted field,
e.g. ``config.yml: source.kind: must be one of camera, video, stream, folder``.
Unknown fields are errors too (a typo must not be silently ignored).
See ``edge_image/config.example.yml`` for every field with its default.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import yaml

from edge_image.errors import UserError

SOURCE_KINDS = ("camera", "video", "stream", "folder")
BACKEND_KINDS = ("auto", "mvnc", "openvino", "opencv")
OPENVINO_DEVICES = ("CPU", "MYRIAD", "GPU", "AUTO")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")

T = TypeVar("T")


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, for status pages and logs (``/healthz``
    answers without a token).

    >>> redact_url("rtsp://admin:secret@10.0.0.9:554/live")
    'rtsp://admin:***@10.0.0.9:554/live'
    >>> redact_url("http://cam.local/stream.mjpg")
    'http://cam.local/stream.mjpg'
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


@dataclass(frozen=True)
class Backoff:
    """Reconnect delays: ``initial`` seconds, times ``factor`` after each failure, at most ``maximum``."""

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 30.0

    def delay(self, failures: int) -> float:
        """Delay before retry number ``failures`` (1-based).

        >>> [Backoff(0.5, 2.0, 3.0).delay(n) for n in (1, 2, 3, 4)]
        [0.5, 1.0, 2.0, 3.0]
        """
        return min(self.maximum, self.initial * self.factor ** max(0, failures - 1))


@dataclass(frozen=True)
class ModelConfig:
    """``model:`` the bundle directory, thresholds, and whether to watch it for changes."""

    bundle: Path
    thresh: float = 0.25
    nms: float = 0.45
    watch: bool = True
    watch_interval: float = 2.0


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
    reopen: Backoff = field(default_factory=lambda: Backoff(1.0, 2.0, 30.0))


@dataclass(frozen=True)
class ServerConfig:
    """``server:`` HTTP bind address; ``token`` is required when not bound to loopback."""

    host: str = "127.0.0.1"
    port: int = 8080
    token: str = ""
    jpeg_quality: int = 80


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


@dataclass(frozen=True)
class OutputsConfig:
    """``outputs:`` optional JSONL detection log and MQTT publishing."""

    jsonl: Path | None = None
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


class _Reader:
    """Typed access to one mapping of the YAML document, naming ``file: a.b.c`` in errors."""

    def __init__(self, where: str, prefix: str, data: object) -> None:
        self.where = where
        self.prefix = prefix
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise self.error("", f"must be a mapping, got {type(data).__name__}")
        self.data: Mapping[str, Any] = data
        self.used: set[str] = set()

    def name(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix and key else (self.prefix or key)

    def error(self, key: str, problem: str) -> UserError:
        return UserError(f"{self.where}: {self.name(key) or '(top level)'}: {problem}")

    def has(self, key: str) -> bool:
        return key in self.data and self.data[key] is not None

    def raw(self, key: str) -> object:
        self.used.add(key)
        return self.data.get(key)

    def child(self, key: str) -> _Reader:
        return _Reader(self.where, self.name(key), self.raw(key))

    def _get(self, key: str, default: T | None, check: Callable[[object], T | None], what: str) -> T:
        value = self.raw(key)
        if value is None:
            if default is None:
                raise self.error(key, "is required")
            return default
        result = check(value)
        if result is None:
            raise self.error(key, f"must be {what}, got {value!r}")
        return result

    def string(self, key: str, default: str | None = None) -> str:
        return self._get(key, default, lambda v: v if isinstance(v, str) else None, "a string")

    def boolean(self, key: str, default: bool | None = None) -> bool:
        return self._get(key, default, lambda v: v if isinstance(v, bool) else None, "true or false")

    def integer(self, key: str, default: int | None = None, *, low: int = 0, high: int = 2**31) -> int:
        def check(v: object) -> int | None:
            return v if isinstance(v, int) and not isinstance(v, bool) and low <= v <= high else None

        return self._get(key, default, check, f"an integer in {low}..{high}")

    def number(self, key: str, default: float | None = None, *, low: float = 0.0, high: float = 1e9) -> float:
        def check(v: object) -> float | None:
            ok = isinstance(v, int | float) and not isinstance(v, bool) and low <= v <= high
            return float(v) if ok else None  # type: ignore[arg-type]

        return self._get(key, default, check, f"a number in {low:g}..{high:g}")

    def choice(self, key: str, choices: tuple[str, ...], default: str | None = None) -> str:
        value = self.raw(key)
        if value is None and default is not None:
            return default
        if value not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)}")
        return str(value)

    def path(self, key: str, base: Path, default: Path | None = None) -> Path:
        text = self.string(key, None if default is None else str(default))
        path = Path(os.path.expanduser(text))
        return path if path.is_absolute() else (base / path)

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.error(unknown[0], "unknown field")


def _backoff(reader: _Reader, default: Backoff) -> Backoff:
    result = Backoff(
        initial=reader.number("initial", default.initial, low=0.0, high=3600.0),
        factor=reader.number("factor", default.factor, low=1.0, high=10.0),
        maximum=reader.number("max", default.maximum, low=0.0, high=3600.0),
    )
    reader.finish()
    if result.maximum < result.initial:
        raise reader.error("max", f"must be >= initial ({result.initial:g})")
    return result


def _source(r: _Reader, base: Path) -> SourceConfig:
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


def _server(r: _Reader) -> ServerConfig:
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
    server = ServerConfig(
        host=host,
        port=r.integer("port", 8080, low=0, high=65535),
        token=token,
        jpeg_quality=r.integer("jpeg_quality", 80, low=10, high=100),
    )
    r.finish()
    return server


def _outputs(r: _Reader, base: Path) -> OutputsConfig:
    jsonl = r.path("jsonl", base) if r.has("jsonl") else None
    mqtt = None
    if r.has("mqtt"):
        m = r.child("mqtt")
        mqtt = MqttConfig(
            host=m.string("host"),
            port=m.integer("port", 1883, low=1, high=65535),
            topic=m.string("topic", "edge/detections"),
            client_id=m.string("client_id", ""),
            qos=m.integer("qos", 0, high=2),
            username=m.string("username", ""),
            password=m.string("password", ""),
            only_with_detections=m.boolean("only_with_detections", True),
        )
        if not mqtt.topic or any(ch in mqtt.topic for ch in "+#"):
            raise m.error("topic", "must be a non-empty topic without wildcards (+, #)")
        m.finish()
    else:
        r.raw("mqtt")
    r.finish()
    return OutputsConfig(jsonl=jsonl, mqtt=mqtt)


def parse_config(data: object, *, where: str = "config.yml", base: Path | None = None) -> ServiceConfig:
    """Validate an already-parsed YAML document; relative paths resolve against ``base``.

    >>> parse_config({"model": {"bundle": "/m"}, "source": {"kind": "webcam"}}, where="c.yml")
    Traceback (most recent call last):
    ...
    edge_image.errors.UserError: c.yml: source.kind: must be one of camera, video, stream, folder
    """
    base = base or Path.cwd()
    top = _Reader(where, "", data)
    m = top.child("model")
    model = ModelConfig(
        bundle=m.path("bundle", base),
        thresh=m.number("thresh", 0.25, low=0.0, high=1.0),
        nms=m.number("nms", 0.45, low=0.0, high=1.0),
        watch=m.boolean("watch", True),
        watch_interval=m.number("watch_interval", 2.0, low=0.1, high=3600.0),
    )
    m.finish()
    source = _source(top.child("source"), base)
    b = top.child("backend")
    backend = BackendConfig(
        kind=b.choice("kind", BACKEND_KINDS, "auto"),
        device=b.choice("device", OPENVINO_DEVICES, "CPU"),
        threads=b.integer("threads", 0, high=256),
        precision=b.choice("precision", ("f32", "auto"), "f32"),
        reopen=_backoff(b.child("reopen"), Backoff(1.0, 2.0, 30.0)),
    )
    b.finish()
    server = _server(top.child("server"))
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
