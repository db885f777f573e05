"""A bundle made before the bundle-contract redesign (tests/fixtures/frozen/README.md) still
verifies and loads, signature included, and is still refused once a byte of it changes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edge_image.contract.decode import VOC_TINY_ANCHORS
from edge_image.contract.errors import UserError
from edge_image.contract.manifest import load_bundle
from edge_image.contract.signing import BundleTrust, load_trusted_keys

FROZEN = Path(__file__).resolve().parents[1] / "fixtures" / "frozen"
BUNDLE = FROZEN / "bundle-2026.11.30-1"


def _trust() -> BundleTrust:
    return BundleTrust(load_trusted_keys([FROZEN / "signing-key.pub.pem"]))


def test_a_bundle_made_before_the_redesign_loads_verified(tmp_path: Path) -> None:
    copy = shutil.copytree(BUNDLE, tmp_path / "bundle")
    bundle = load_bundle(copy, trust=_trust())
    assert bundle.manifest["version"] == "2026.11.30-1"
    assert bundle.classes == ("adidas", "apple", "bmw")
    assert bundle.input_size == (416, 416, 3)
    assert bundle.anchors == tuple(VOC_TINY_ANCHORS)
    assert set(bundle.artifacts) >= {"onnx", "openvino", "ncs_graph"}
    assert bundle.artifact("onnx") == b"frozen onnx bytes\n"
    assert bundle.spec.classes == 3
    assert bundle.signer and bundle.signer != "unsigned"


def test_the_frozen_bundle_is_refused_once_changed(tmp_path: Path) -> None:
    copy = shutil.copytree(BUNDLE, tmp_path / "bundle")
    (copy / "model.onnx").write_bytes(b"frozen onnx bytes\r\n")
    with pytest.raises(UserError, match=r"model\.onnx: size"):
        load_bundle(copy, trust=_trust())
