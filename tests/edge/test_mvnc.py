"""The mvnc backend against NCSDK v1 and v2 test doubles that enforce the API contracts."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_image.backends import BackendError, resolve_kind
from edge_image.backends.ncs import MvncBackend, api_version
from edge_image.config import BackendConfig, parse_config
from edge_image.contract.decode import decode
from edge_image.contract.errors import UserError
from edge_image.contract.manifest import Bundle, load_bundle
from edge_image.metrics import Metrics
from edge_image.pipeline import Pipeline
from tests.edge import fake_mvnc
from tests.edge.helpers import Records, make_bundle, one_object_output, write_images
from tests.fixtures import signing

V1_ORDER = ["EnumerateDevices", "Device", "OpenDevice", "AllocateGraph"]
V2_ORDER = ["enumerate_devices", "Device", "Device.open", "Graph", "Graph.allocate_with_fifos"]


@pytest.fixture
def ncs_bundle(tmp_path: Path) -> Bundle:
    root = make_bundle(
        tmp_path / "bundle", {"model.graph": b"\x01graph-blob" * 64}, {"ncs_graph": "model.graph"}
    )
    return load_bundle(root)


def _fake(version: int, bundle: Bundle) -> Any:
    output = one_object_output(bundle.spec, row=4, col=9, anchor=1, klass=2)

    def respond(tensor: np.ndarray) -> np.ndarray:
        assert float(tensor.min()) >= 0.0 and float(tensor.max()) <= 1.0  # RGB / 255
        return output

    make = fake_mvnc.make_v1 if version == 1 else fake_mvnc.make_v2
    return make(respond, (416, 416, 3))


@pytest.mark.parametrize("version", [1, 2])
def test_contract_infer_and_release_in_order(version: int, ncs_bundle: Bundle) -> None:
    api = _fake(version, ncs_bundle)
    assert api_version(api) == version
    backend = MvncBackend(ncs_bundle, api=api)
    assert backend.input_dtype == (np.float16 if version == 1 else np.float32)
    assert api.api.calls == (V1_ORDER if version == 1 else V2_ORDER)
    blob = np.random.default_rng(0).random((1, 416, 416, 3), dtype=np.float32)
    raw = backend.infer(blob.astype(backend.input_dtype))
    assert raw.shape == (13 * 13 * ncs_bundle.spec.channels,)  # flat, channel-minor
    dets = decode(raw, ncs_bundle.spec, layout=backend.output_layout)
    assert dets.class_ids.tolist() == [2]
    cx = (dets.boxes[0, 0] + dets.boxes[0, 2]) / 2
    cy = (dets.boxes[0, 1] + dets.boxes[0, 3]) / 2
    assert cx == pytest.approx(9.5 / 13, abs=1e-3) and cy == pytest.approx(4.5 / 13, abs=1e-3)
    backend.close()
    backend.close()  # idempotent
    tail = api.api.calls[-5:]
    if version == 1:
        assert api.api.calls[-4:] == ["LoadTensor", "GetResult", "DeallocateGraph", "CloseDevice"]
    else:
        assert tail == [
            "Fifo.destroy(in)",
            "Fifo.destroy(out)",
            "Graph.destroy",
            "Device.close",
            "Device.destroy",
        ]
    assert api.api.open_devices == 0


def test_graph_swapped_after_verification_is_never_allocated(ncs_bundle: Bundle) -> None:
    """The blob sent to the stick is the bytes that were hashed: a graph replaced (same size)
    after load_bundle verified it is refused before the device is touched."""
    api = _fake(2, ncs_bundle)
    (ncs_bundle.root / "model.graph").write_bytes(b"\x02evil-blob!" * 64)
    with pytest.raises(UserError, match=r"model\.graph: sha256 mismatch"):
        MvncBackend(ncs_bundle, api=api)
    assert api.api.calls == []


def test_v1_rejects_float32_tensor(ncs_bundle: Bundle) -> None:
    api = _fake(1, ncs_bundle)
    graph = api.Device(api.EnumerateDevices()[0])
    graph.OpenDevice()
    g = graph.AllocateGraph(b"blob")
    with pytest.raises(fake_mvnc.ContractError, match="float16"):
        g.LoadTensor(np.zeros((416, 416, 3), np.float32), None)
    with pytest.raises(fake_mvnc.ContractError, match="without LoadTensor"):
        g.GetResult()
    with pytest.raises(fake_mvnc.ContractError, match="DeallocateGraph first"):
        graph.CloseDevice()


def test_v2_rejects_wrong_order(ncs_bundle: Bundle) -> None:
    api = _fake(2, ncs_bundle)
    dev = api.Device(api.enumerate_devices()[0])
    graph = api.Graph("g")
    with pytest.raises(fake_mvnc.ContractError, match=r"before Device\.open"):
        graph.allocate_with_fifos(dev, b"blob")
    dev.open()
    fin, fout = graph.allocate_with_fifos(dev, b"blob")
    with pytest.raises(fake_mvnc.ContractError, match="float32"):
        graph.queue_inference_with_fifo_elem(fin, fout, np.zeros((416, 416, 3), np.float16), None)
    with pytest.raises(fake_mvnc.ContractError, match="destroying its FIFOs"):
        graph.destroy()
    with pytest.raises(fake_mvnc.ContractError, match="still allocated"):
        dev.close()
    with pytest.raises(fake_mvnc.ContractError, match=r"before Device\.close"):
        dev.destroy()


@pytest.mark.parametrize("version", [1, 2])
def test_unplugged_stick_is_backend_error_and_release_still_completes(
    version: int, ncs_bundle: Bundle
) -> None:
    api = _fake(version, ncs_bundle)
    backend = MvncBackend(ncs_bundle, api=api)
    api.api.plugged = False
    with pytest.raises(BackendError, match=f"mvnc v{version}"):
        backend.infer(np.zeros((1, 416, 416, 3), backend.input_dtype))
    backend.close()
    assert api.api.open_devices == 0
    with pytest.raises(BackendError, match="no Movidius stick"):
        MvncBackend(ncs_bundle, api=api)


@pytest.mark.parametrize("version", [1, 2])
def test_auto_picks_mvnc_when_stick_and_api_present(
    version: int, ncs_bundle: Bundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    usb = tmp_path / "usb"
    (usb / "1-1").mkdir(parents=True)
    (usb / "1-1" / "idVendor").write_text("1d6b\n")
    assert resolve_kind(BackendConfig(), ncs_bundle, usb) != "mvnc"  # no stick
    (usb / "1-1.2").mkdir()
    (usb / "1-1.2" / "idVendor").write_text("03e7\n")
    assert "mvnc" not in sys.modules
    assert resolve_kind(BackendConfig(), ncs_bundle, usb) != "mvnc"  # stick but no API installed
    api = _fake(version, ncs_bundle)
    monkeypatch.setitem(sys.modules, "mvnc", fake_mvnc.as_package(api))
    monkeypatch.setitem(sys.modules, "mvnc.mvncapi", api)
    assert resolve_kind(BackendConfig(), ncs_bundle, usb) == "mvnc"
    backend = MvncBackend(ncs_bundle)  # imports the (fake) mvnc package itself
    assert backend.version == version
    backend.close()


@pytest.mark.parametrize("version", [1, 2])
def test_pipeline_reopens_stick_after_unplug(version: int, ncs_bundle: Bundle, tmp_path: Path) -> None:
    api = _fake(version, ncs_bundle)
    images = write_images(tmp_path / "frames", 3)
    config = parse_config(
        {
            "model": {
                "bundle": str(ncs_bundle.root),
                "watch": False,
                "trusted_keys": str(signing.public_key()),
            },
            "source": {"kind": "folder", "path": str(images), "loop": True},
            "backend": {"kind": "mvnc", "reopen": {"initial": 0.05, "max": 0.1}},
        },
        where="t.yml",
    )
    metrics = Metrics()
    seen = Records()
    pipeline = Pipeline(
        config,
        metrics,
        outputs=[seen],
        backend_factory=lambda kind, cfg, bundle: MvncBackend(bundle, api=api),
    )
    pipeline.load_initial()
    thread = threading.Thread(target=pipeline.run, daemon=True)
    thread.start()
    try:
        _wait(lambda: len(seen) >= 3)
        api.api.plugged = False
        _wait(
            lambda: metrics.registry.get_sample_value("edge_reconnects_total", {"component": "backend"}) >= 2
        )
        assert pipeline.status.state == "reopening"
        before = len(seen)
        api.api.plugged = True
        _wait(lambda: len(seen) > before + 2)
    finally:
        pipeline.stop()
        thread.join(10)
        pipeline.close()
    assert metrics.registry.get_sample_value("edge_errors_total", {"kind": "backend"}) == 1
    assert seen[-1]["detections"][0]["label"] == "cherry"
    assert api.api.open_devices == 0  # every open device was closed again


def _wait(predicate: Callable[[], object], timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached")


def test_service_starts_without_stick_and_picks_it_up_later(ncs_bundle: Bundle, tmp_path: Path) -> None:
    api = _fake(2, ncs_bundle)
    api.api.plugged = False
    images = write_images(tmp_path / "frames", 2)
    config = parse_config(
        {
            "model": {
                "bundle": str(ncs_bundle.root),
                "watch": False,
                "trusted_keys": str(signing.public_key()),
            },
            "source": {"kind": "folder", "path": str(images), "loop": True},
            "backend": {"kind": "mvnc", "reopen": {"initial": 0.05, "max": 0.1}},
        },
        where="t.yml",
    )
    metrics = Metrics()
    seen = Records()
    pipeline = Pipeline(
        config,
        metrics,
        outputs=[seen],
        backend_factory=lambda kind, cfg, bundle: MvncBackend(bundle, api=api),
    )
    pipeline.load_initial()  # no stick: not fatal
    assert pipeline.backend is None and "no Movidius stick" in pipeline.status.last_error
    thread = threading.Thread(target=pipeline.run, daemon=True)
    thread.start()
    try:
        _wait(
            lambda: metrics.registry.get_sample_value("edge_reconnects_total", {"component": "backend"}) >= 2
        )
        api.api.plugged = True
        _wait(lambda: len(seen) >= 2)
    finally:
        pipeline.stop()
        thread.join(10)
        pipeline.close()
    assert api.api.open_devices == 0 and pipeline.status.backend == "mvnc"


def test_auto_falls_back_to_openvino_then_opencv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No stick: OpenVINO when it is installed and the bundle has IR/ONNX, else OpenCV DNN."""
    import importlib.util

    from tests.edge.helpers import make_bundle

    bundle = load_bundle(make_bundle(tmp_path / "b", {"model.onnx": b"onnx"}, {"onnx": "model.onnx"}))
    usb = tmp_path / "usb"
    usb.mkdir()
    assert resolve_kind(BackendConfig(), bundle, usb) == "openvino"  # the openvino package is pinned
    assert resolve_kind(BackendConfig(kind="opencv"), bundle, usb) == "opencv"  # explicit wins
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a)
    )
    assert resolve_kind(BackendConfig(), bundle, usb) == "opencv"
    pb_only = load_bundle(make_bundle(tmp_path / "c", {"model.pb": b"pb"}, {"pb": "model.pb"}))
    monkeypatch.setattr(importlib.util, "find_spec", real)
    assert (
        resolve_kind(BackendConfig(), pb_only, usb) == "opencv"
    )  # OpenVINO without IR/ONNX: cv2 reads the .pb
