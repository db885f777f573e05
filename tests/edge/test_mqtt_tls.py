"""MQTT over TLS with the real paho client against a minimal MQTT 3.1.1 broker on TLS (loopback):
the broker's certificate is verified, an untrusted broker gets nothing, settings errors name the
field. Each test is named after the attack it stops."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_image.config import MqttConfig, parse_config
from edge_image.contract.errors import UserError
from edge_image.outputs import MqttPublisher, frame_record
from tests.edge.helpers import wait_for
from tests.fixtures.tls import tls_files

CONNACK_ACCEPTED = b"\x20\x02\x00\x00"


def _read_packet(conn: ssl.SSLSocket) -> tuple[int, bytes] | None:
    """One MQTT control packet: (type, body); None when the client closed."""
    head = conn.recv(1)
    if not head:
        return None
    length, shift = 0, 0
    while True:
        byte = conn.recv(1)[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    body = b""
    while len(body) < length:
        chunk = conn.recv(length - len(body))
        if not chunk:
            return None
        body += chunk
    return head[0] >> 4, body


class TlsBroker:
    """Accepts TLS connections on loopback; records QoS 0 PUBLISHes and failed handshakes."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.published: list[tuple[str, bytes]] = []
        self.handshake_failures = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(raw,), daemon=True).start()

    def _session(self, raw: socket.socket) -> None:
        try:
            conn = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            self.handshake_failures += 1
            raw.close()
            return
        with conn:
            while (packet := _read_packet(conn)) is not None:
                kind, body = packet
                if kind == 1:  # CONNECT
                    conn.sendall(CONNACK_ACCEPTED)
                elif kind == 3:  # PUBLISH, QoS 0
                    size = int.from_bytes(body[:2], "big")
                    self.published.append((body[2 : 2 + size].decode(), body[2 + size :]))
                elif kind == 12:  # PINGREQ
                    conn.sendall(b"\xd0\x00")
                elif kind == 14:  # DISCONNECT
                    return

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[tuple[TlsBroker, Path]]:
    cert, key = tls_files(tmp_path / "broker")
    server = TlsBroker(cert, key)
    yield server, cert
    server.close()


def _record() -> dict[str, object]:
    return frame_record(
        frame=1, timestamp=0.0, model="m 1", backend="opencv", width=4, height=3,
        detections=[{"label": "logo", "score": 0.9, "box": [0, 0, 1, 1]}], latency_ms={},
    )  # fmt: skip


def test_detections_reach_a_verified_broker_over_tls(broker: tuple[TlsBroker, Path]) -> None:
    server, ca = broker
    config = MqttConfig(host="127.0.0.1", port=server.port, topic="edge/pi1", tls=True, tls_ca_file=ca)
    publisher = MqttPublisher(config)
    try:
        wait_for(publisher.connected.is_set, 15, "connected over TLS")
        publisher.write(_record())
        wait_for(lambda: server.published, 10, "a PUBLISH at the broker")
    finally:
        publisher.close()
    topic, payload = server.published[0]
    assert topic == "edge/pi1" and json.loads(payload)["detections"][0]["label"] == "logo"


def test_impostor_broker_gets_no_connection_and_no_detections(
    broker: tuple[TlsBroker, Path], tmp_path: Path
) -> None:
    """A broker whose certificate the Pi does not trust (a machine on the LAN posing as it) sees a
    failed handshake: no CONNECT, so neither the password nor any detection."""
    server, _ = broker
    other_ca = tls_files(tmp_path / "other")[0]
    config = MqttConfig(
        host="127.0.0.1", port=server.port, topic="edge/pi1", username="pi", password="secret",
        tls=True, tls_ca_file=other_ca,
    )  # fmt: skip
    publisher = MqttPublisher(config)
    try:
        wait_for(lambda: server.handshake_failures >= 1, 15, "a refused handshake")
        publisher.write(_record())
        assert not publisher.connected.is_set()
    finally:
        publisher.close()
    assert server.published == []


def test_mqtt_tls_settings_name_the_field(tmp_path: Path) -> None:
    base = {"model": {"bundle": "m"}, "source": {"kind": "camera"}}

    def mqtt(**fields: object) -> MqttConfig:
        doc = {**base, "outputs": {"mqtt": {"host": "broker", **fields}}}
        found = parse_config(doc, where="c.yml", base=tmp_path).outputs.mqtt
        assert found is not None
        return found

    assert mqtt(tls=True).port == 8883 and mqtt().port == 1883
    with pytest.raises(UserError, match=r"^c\.yml: outputs\.mqtt\.tls_ca_file: needs tls: true$"):
        mqtt(tls_ca_file="ca.pem")
    with pytest.raises(UserError, match=r"outputs\.mqtt\.tls_key_file: tls_cert_file and tls_key_file go"):
        mqtt(tls=True, tls_cert_file="c.pem")
    with pytest.raises(UserError, match=r"^outputs\.mqtt: cannot load the TLS files .*missing\.pem"):
        MqttPublisher(mqtt(tls=True, tls_ca_file="missing.pem"))
