"""The HTTP service against a hostile LAN and hostile web pages (the service in-process, a scripted
backend). Each test is named after the attack it stops."""

from __future__ import annotations

import socket
import ssl
import time
import urllib.request
from http.client import HTTPConnection, HTTPException
from pathlib import Path

import pytest

from edge_image.config import ServiceConfig, parse_config
from edge_image.contract.errors import UserError
from edge_image.listener import tls_context
from tests.edge.helpers import get_json, http, make_bundle, metric, wait_for, write_images
from tests.edge.test_service_unit import TOKEN, config_for, running
from tests.fixtures.tls import tls_files

JSON = {"Content-Type": "application/json"}


def _raw(port: int, method: str, path: str, headers: dict[str, str], body: bytes | None = None) -> int:
    """Status of one request sent exactly as given (the Host header included)."""
    conn = HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for key, value in headers.items():
        conn.putheader(key, value)
    if body is not None:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.status


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return make_bundle(tmp_path / "models" / "v1", {"model.onnx": b"onnx-bytes-v1"}, {"onnx": "model.onnx"})


@pytest.fixture
def frames(tmp_path: Path) -> Path:
    return write_images(tmp_path / "frames", 3)


def test_dns_rebinding_host_names_are_refused(tmp_path: Path, bundle: Path, frames: Path) -> None:
    config = config_for(
        tmp_path, bundle, {"kind": "folder", "path": str(frames), "loop": True},
        server={"port": 0, "allowed_hosts": ["pi-kitchen.local"]}, fps_limit=50,
    )  # fmt: skip
    with running(config, []) as svc:
        wait_for(lambda: http(svc.url + "/healthz")[0] == 200, 20, "healthy")
        port = svc.port
        for host, status in [
            ("evil.example", 421),  # a page on evil.example whose name now resolves to the Pi
            (f"evil.example:{port}", 421),
            (f"127.0.0.1:{port}", 200),
            (f"[::1]:{port}", 200),
            (f"localhost:{port}", 200),
            ("pi-kitchen.local", 200),  # configured
            ("PI-KITCHEN.LOCAL.", 200),
        ]:
            assert _raw(port, "GET", "/api/detections", {"Host": host}) == status, host
        assert _raw(port, "GET", "/healthz", {"Host": "evil.example"}) == 421  # the open route too


def test_cross_site_requests_cannot_reload(tmp_path: Path, bundle: Path, frames: Path) -> None:
    config = config_for(tmp_path, bundle, {"kind": "folder", "path": str(frames), "loop": True}, fps_limit=50)
    with running(config, []) as svc:
        wait_for(lambda: http(svc.url + "/healthz")[0] == 200, 20, "healthy")
        host = f"127.0.0.1:{svc.port}"

        def post(headers: dict[str, str], body: bytes = b"{}") -> int:
            return _raw(svc.port, "POST", "/api/reload", {"Host": host, **headers}, body)

        # a form or a "simple" fetch from another site: no JSON content type
        assert post({"Content-Type": "text/plain"}) == 415
        assert post({"Content-Type": "application/x-www-form-urlencoded"}, b"bundle=/etc") == 415
        # JSON from another origin (a preflight would have failed; a non-browser claiming one is refused)
        assert post({**JSON, "Origin": "http://evil.example"}) == 403
        assert post({**JSON, "Origin": f"http://{host}"}) == 200  # same origin: the page itself
        assert post(JSON) == 200  # no Origin, no cookie: curl on the node


def test_browser_cookie_without_origin_cannot_reload(tmp_path: Path, bundle: Path, frames: Path) -> None:
    config = config_for(
        tmp_path, bundle, {"kind": "folder", "path": str(frames), "loop": True},
        server={"port": 0, "token": TOKEN}, fps_limit=50,
    )  # fmt: skip
    with running(config, []) as svc:
        host = f"127.0.0.1:{svc.port}"
        cookie = {"Cookie": f"edge_token={TOKEN}", **JSON}
        assert _raw(svc.port, "POST", "/api/reload", {"Host": host, **cookie}, b"{}") == 403
        assert (
            _raw(svc.port, "POST", "/api/reload", {"Host": host, "Origin": f"http://{host}", **cookie}, b"{}")
            == 200
        )
        assert (
            _raw(
                svc.port,
                "POST",
                "/api/reload",
                {"Host": host, "Authorization": f"Bearer {TOKEN}", **JSON},
                b"{}",
            )
            == 200
        )


def test_reload_paths_outside_the_models_directory_are_refused(
    tmp_path: Path, bundle: Path, frames: Path
) -> None:
    config = config_for(tmp_path, bundle, {"kind": "folder", "path": str(frames), "loop": True}, fps_limit=50)
    with running(config, []) as svc:
        wait_for(lambda: http(svc.url + "/healthz")[0] == 200, 20, "healthy")
        for target in ("/etc", "../../../../etc", str(tmp_path / "frames")):
            status, doc = get_json(
                svc.url + "/api/reload",
                method="POST",
                body=f'{{"bundle": "{target}"}}'.encode(),
                headers=JSON,
            )
            assert status == 403 and "must be inside" in doc["error"], target
        other = make_bundle(
            tmp_path / "models" / "v2", {"model.onnx": b"onnx-bytes-v2"}, {"onnx": "model.onnx"}, "2"
        )
        status, doc = get_json(
            svc.url + "/api/reload",
            method="POST",
            body=f'{{"bundle": "{other.name}"}}'.encode(),
            headers=JSON,
        )
        assert status == 200 and doc["ok"], doc


def test_malformed_bodies_are_400_not_500(tmp_path: Path, bundle: Path, frames: Path) -> None:
    config = config_for(tmp_path, bundle, {"kind": "folder", "path": str(frames), "loop": True}, fps_limit=50)
    with running(config, []) as svc:
        for body, status in [
            (b"\xff\xfe\x00{", 400),  # not UTF-8
            (b'{"bundle": ', 400),  # cut short
            (b"[1, 2]", 400),  # not an object
            (b'{"bundle": 5}', 400),
            (b"{" + b" " * (70 * 1024) + b"}", 413),  # over 64 KiB
        ]:
            assert http(svc.url + "/api/reload", method="POST", body=body, headers=JSON)[0] == status, body[
                :20
            ]


def test_camera_credentials_in_query_strings_are_redacted() -> None:
    """/healthz (no token) and check-config show the source: neither the password nor a query token."""
    doc = {
        "model": {"bundle": "m"},
        "source": {
            "kind": "stream",
            "url": "rtsp://admin:hunter2@10.0.0.9/live?user=admin&password=hunter2&token=abc",
        },
    }
    described = parse_config(doc, where="c.yml").source.describe()
    assert "hunter2" not in described and "abc" not in described
    assert described == "stream rtsp://admin:***@10.0.0.9/live?user=***&password=***&token=***"


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.settimeout(10)
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


def test_idle_connection_flood_is_capped_with_503(tmp_path: Path, bundle: Path, frames: Path) -> None:
    """Idle sockets cannot pile up: one past server.max_connections gets 503 and is closed; once
    one closes, the service answers again; the refusals are counted in /metrics."""
    config = config_for(
        tmp_path, bundle, {"kind": "folder", "path": str(frames), "loop": True},
        server={"port": 0, "max_connections": 4, "request_timeout_s": 30}, fps_limit=50,
    )  # fmt: skip
    with running(config, []) as svc:
        wait_for(lambda: http(svc.url + "/healthz")[0] == 200, 20, "healthy")
        wait_for(lambda: metric(svc.metrics(), "edge_http_connections") <= 1, 10, "old connections closed")
        idle = [_connect(svc.port) for _ in range(4)]
        try:
            refused = _connect(svc.port)
            assert _read_until_closed(refused).startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
            refused.close()
        finally:
            idle.pop().close()
        wait_for(lambda: http(svc.url + "/healthz")[0] == 200, 10, "a slot free again")
        for sock in idle:
            sock.close()
        wait_for(lambda: http(svc.url + "/metrics")[0] == 200, 10, "metrics")
        assert metric(svc.metrics(), "edge_http_connections_refused_total") >= 1


def _one_second_timeouts(tmp_path: Path, bundle: Path, frames: Path) -> ServiceConfig:
    return config_for(
        tmp_path, bundle, {"kind": "folder", "path": str(frames), "loop": True},
        server={"port": 0, "request_timeout_s": 1}, fps_limit=50,
    )  # fmt: skip


def test_slowloris_half_sent_request_head_is_disconnected(tmp_path: Path, bundle: Path, frames: Path) -> None:
    """A client that never finishes its request head (slowloris) is dropped after
    server.request_timeout_s instead of holding a connection for aiohttp's default hour."""
    with running(_one_second_timeouts(tmp_path, bundle, frames), []) as svc:
        sock = _connect(svc.port)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        started = time.monotonic()
        assert _read_until_closed(sock) == b""
        assert time.monotonic() - started < 5
        sock.close()
        silent = _connect(svc.port)  # connects and sends nothing at all
        started = time.monotonic()
        assert _read_until_closed(silent) == b""
        assert time.monotonic() - started < 5
        silent.close()


def test_slow_request_body_gets_408(tmp_path: Path, bundle: Path, frames: Path) -> None:
    """A reload whose body trickles in slower than server.request_timeout_s is answered 408 and
    the connection closed."""
    with running(_one_second_timeouts(tmp_path, bundle, frames), []) as svc:
        sock = _connect(svc.port)
        sock.sendall(
            f"POST /api/reload HTTP/1.1\r\nHost: 127.0.0.1:{svc.port}\r\nContent-Type: application/json\r\n"
            "Content-Length: 100\r\n\r\n{".encode()
        )
        assert _read_until_closed(sock).startswith(b"HTTP/1.1 408 ")
        sock.close()
        assert not svc.pipeline.status.last_reload  # nothing was reloaded


def test_tls_serves_https_and_plain_http_gets_nothing(
    tmp_path: Path, bundle: Path, frames: Path, tls_pair: tuple[Path, Path]
) -> None:
    """With server.tls_cert/tls_key the service speaks HTTPS only: a client verifying
    the certificate gets the API; plain HTTP (a downgrade) gets no answer."""
    cert, key = tls_pair
    config = config_for(
        tmp_path, bundle, {"kind": "folder", "path": str(frames), "loop": True},
        server={"port": 0, "tls_cert": str(cert), "tls_key": str(key)}, fps_limit=50,
    )  # fmt: skip
    assert config.server.scheme == "https"
    with running(config, []) as svc:
        context = ssl.create_default_context(cafile=str(cert))
        url = f"https://127.0.0.1:{svc.port}/healthz"

        def healthy() -> bool:
            with urllib.request.urlopen(url, context=context, timeout=10) as response:
                return response.status == 200

        wait_for(healthy, 20, "healthy over https")
        with pytest.raises((OSError, HTTPException)):
            _raw(svc.port, "GET", "/healthz", {"Host": "127.0.0.1"})


def test_tls_settings_errors_name_the_field(
    tmp_path: Path, bundle: Path, tls_pair: tuple[Path, Path]
) -> None:
    cert, key = tls_pair
    source = {"kind": "folder", "path": str(tmp_path)}
    with pytest.raises(UserError, match=r"^test\.yml: server\.tls_key: tls_cert and tls_key go together$"):
        config_for(tmp_path, bundle, source, server={"tls_cert": str(cert)})
    with pytest.raises(UserError, match=r"server\.tls_key: .*missing\.key not found"):
        tls_context(cert, tmp_path / "missing.key", where="test.yml")
    other = tls_files(tmp_path / "other")[1]
    with pytest.raises(UserError, match=r"^test\.yml: server\.tls_cert: cannot load .* with the key"):
        tls_context(cert, other, where="test.yml")
    assert tls_context(cert, key, where="test.yml").minimum_version == ssl.TLSVersion.TLSv1_2


@pytest.fixture
def tls_pair(tmp_path: Path) -> tuple[Path, Path]:
    return tls_files(tmp_path / "tls")
