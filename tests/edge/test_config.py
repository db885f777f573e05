"""Config validation: every error is one line naming the file and the field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edge_image.config import Backoff, load_config, parse_config
from edge_image.contract.errors import UserError
from tests.edge.helpers import REPO_ROOT

BASE = {"model": {"bundle": "models/current"}, "source": {"kind": "video", "path": "clip.mp4", "loop": True}}


def with_(**sections: object) -> dict[str, object]:
    doc = {k: dict(v) for k, v in BASE.items()}  # type: ignore[call-overload]
    for dotted, value in sections.items():
        *parents, leaf = dotted.split("__")
        node = doc
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return doc


def error(doc: object) -> str:
    with pytest.raises(UserError) as info:
        parse_config(doc, where="config.yml", base=Path("/etc/edge"))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_minimal_config_defaults_and_relative_paths() -> None:
    c = parse_config(BASE, where="config.yml", base=Path("/etc/edge"))
    assert c.model.bundle == Path("/etc/edge/models/current")
    assert c.source.path == Path("/etc/edge/clip.mp4") and c.source.loop and not c.source.live
    assert (c.server.host, c.server.port, c.server.token) == ("127.0.0.1", 8080, "")
    assert c.backend.kind == "auto" and c.model.thresh == 0.25 and c.outputs.mqtt is None


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            with_(source__kind="webcam"),
            "config.yml: source.kind: must be one of camera, video, stream, folder, got 'webcam'",
        ),
        ({"source": {"kind": "camera"}}, "config.yml: model.bundle: is required"),
        (with_(model__thresh=1.5), "config.yml: model.thresh: must be a number in 0..1, got 1.5"),
        (with_(model__thersh=0.3), "config.yml: model.thersh: unknown field"),
        (
            with_(backend__kind="tpu"),
            "config.yml: backend.kind: must be one of auto, mvnc, openvino, opencv, got 'tpu'",
        ),
        (with_(server__port="80"), "config.yml: server.port: must be an integer in 0..65535, got '80'"),
        (with_(server__host="0.0.0.0"), "config.yml: server.token: is required when server.host is 0.0.0.0"),
        (
            with_(server__host="0.0.0.0", server__token="short"),
            "config.yml: server.token: must be at least 16",
        ),
        (with_(server__host="pi.local"), "config.yml: server.host: must be an IP address"),
        (with_(source__reconnect__max=0.1), "config.yml: source.reconnect.max: must be >= initial (0.5)"),
        (
            {"model": {"bundle": "m"}, "source": {"kind": "stream", "url": "cam"}},
            "config.yml: source.url: must be a URL",
        ),
        (
            {"model": {"bundle": "m"}, "source": {"kind": "camera", "loop": True}},
            "config.yml: source.loop: only applies",
        ),
        (with_(outputs__mqtt={"topic": "a/b"}), "config.yml: outputs.mqtt.host: is required"),
        (
            with_(outputs__mqtt={"host": "h", "topic": "a/#"}),
            "config.yml: outputs.mqtt.topic: must be a non-empty",
        ),
        (with_(fps_limit=True), "config.yml: fps_limit: must be a number"),
        ([1, 2], "config.yml: (top level): must be a mapping, got list"),
        (with_(extra=1), "config.yml: extra: unknown field"),
    ],
)
def test_errors_name_the_field(doc: object, expected: str) -> None:
    assert error(doc).startswith(expected)


def test_token_accepted_off_loopback(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("0123456789abcdef0123\n")
    c = parse_config(with_(server__host="0.0.0.0", server__token_file=str(token_file)), where="c.yml")
    assert c.server.token == "0123456789abcdef0123"


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text("model:\n  bundle: x\nsource: [unclosed\n")
    with pytest.raises(UserError, match=r"bad.yml: line \d+: invalid YAML"):
        load_config(path)
    with pytest.raises(UserError, match="config file not found"):
        load_config(tmp_path / "missing.yml")


def test_example_config_is_valid(tmp_path: Path) -> None:
    example = REPO_ROOT / "edge_image" / "config.example.yml"
    c = load_config(example)
    assert c.source.kind == "camera" and c.source.live and c.backend.kind == "auto"
    assert c.source.reconnect == Backoff(0.5, 2.0, 3.0)
    doc = yaml.safe_load(example.read_text())
    assert set(doc) == {"model", "source", "backend", "server", "outputs", "fps_limit", "log_level"}


def test_cli_prints_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text(yaml.safe_dump(with_(source__kind="webcam")))
    proc = subprocess.run(
        [sys.executable, "-m", "edge_image", "check-config", "--config", str(path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == f"error: {path}: source.kind: must be one of camera, video, stream, folder, got 'webcam'"
    )


def test_stream_credentials_never_reach_status_or_logs() -> None:
    """``/healthz`` answers without a token and shows the source: the password is masked."""
    doc = {
        "model": {"bundle": "m"},
        "source": {"kind": "stream", "url": "rtsp://admin:pa55@10.0.0.9:554/live"},
    }
    source = parse_config(doc, where="config.yml", base=Path("/etc/edge")).source
    assert source.url == "rtsp://admin:pa55@10.0.0.9:554/live"  # the capture still gets it
    assert source.describe() == "stream rtsp://admin:***@10.0.0.9:554/live"
    plain = {"model": {"bundle": "m"}, "source": {"kind": "stream", "url": "http://cam.local/video.mjpg"}}
    assert (
        parse_config(plain, where="c", base=Path("/")).source.describe()
        == "stream http://cam.local/video.mjpg"
    )


def test_trusted_keys_accept_a_path_or_a_list_and_refuse_the_rest() -> None:
    one = parse_config(
        {**BASE, "model": {"bundle": "m", "trusted_keys": "keys"}}, where="c.yml", base=Path("/etc/e")
    )
    assert one.model.trusted_keys == (Path("/etc/e/keys"),) and one.model.allow_unsigned is False
    two = parse_config(
        {**BASE, "model": {"bundle": "m", "trusted_keys": ["/a.pem", "/b.pem"]}}, where="c.yml"
    )
    assert two.model.trusted_keys == (Path("/a.pem"), Path("/b.pem"))
    assert parse_config(BASE, where="c.yml").model.trusted_keys == (Path("/etc/edge-image/trusted-keys"),)
    with pytest.raises(UserError, match=r"c\.yml: model\.trusted_keys: must be a path or a non-empty list"):
        parse_config({**BASE, "model": {"bundle": "m", "trusted_keys": []}}, where="c.yml")
