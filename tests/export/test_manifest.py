"""The bundle manifest: build, write, load, and refuse every kind of tampering (no TensorFlow)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge_image.contract.errors import UserError
from edge_image.contract.manifest import (
    MANIFEST_NAME,
    build_manifest,
    file_digest,
    load_bundle,
    read_manifest,
    write_manifest,
)

REPO = Path(__file__).resolve().parents[2]


def make_bundle(root: Path) -> Path:
    """A small bundle with an OpenVINO pair, an ONNX file and names."""
    root.mkdir(parents=True)
    (root / "obj.names").write_text("cat\ndog\n")
    (root / "model.onnx").write_bytes(bytes(range(256)) * 64)
    (root / "model.xml").write_text("<net/>")
    (root / "model.bin").write_bytes(b"\x00\x01" * 100)
    manifest = build_manifest(
        root,
        name="pets",
        version="7",
        classes=["cat", "dog"],
        anchors=[1.0, 2.0, 3.0, 4.0],
        input_size=(128, 160, 3),
        artifacts={"names": "obj.names", "onnx": "model.onnx", "openvino": "model.xml"},
        source_checkpoint={"weights": "pets_100.weights"},
        metrics={"valid": {"map": 0.5}},
        tool_versions={"onnx": "1.0"},
    )
    write_manifest(root, manifest)
    return root


def edit_manifest(root: Path, change) -> None:  # type: ignore[no-untyped-def]
    data = json.loads((root / MANIFEST_NAME).read_text())
    change(data)
    (root / MANIFEST_NAME).write_text(json.dumps(data))


def test_round_trip(tmp_path: Path) -> None:
    root = make_bundle(tmp_path / "b")
    bundle = load_bundle(root)
    assert bundle.classes == ("cat", "dog")
    assert bundle.anchors == (1.0, 2.0, 3.0, 4.0)
    assert bundle.input_size == (128, 160, 3)
    assert bundle.spec.classes == 2 and bundle.spec.num == 2
    assert bundle.path("onnx") == root.resolve() / "model.onnx"
    assert bundle.output_layout == "hwc"
    assert bundle.manifest["metrics"] == {"valid": {"map": 0.5}}
    listed = {f["path"]: f for f in bundle.manifest["files"]}
    assert sorted(listed) == ["model.bin", "model.onnx", "model.xml", "obj.names"]
    assert listed["model.onnx"]["bytes"] == 256 * 64
    assert listed["model.onnx"]["sha256"] == file_digest(root / "model.onnx")[0]
    assert bundle.manifest["created"].endswith("Z")
    assert sorted(p.name for p in root.iterdir()) == sorted([*listed, MANIFEST_NAME])  # no temp files left


def test_missing_artifact_kind_is_a_clear_error(tmp_path: Path) -> None:
    bundle = load_bundle(make_bundle(tmp_path / "b"))
    with pytest.raises(UserError, match=r"no 'pb' artifact in this bundle \(has: names, onnx, openvino\)"):
        bundle.path("pb")


def test_flipped_byte_is_refused(tmp_path: Path) -> None:
    root = make_bundle(tmp_path / "b")
    data = bytearray((root / "model.onnx").read_bytes())
    data[1000] ^= 0x01
    (root / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(UserError) as err:
        load_bundle(root)
    message = str(err.value)
    assert "model.onnx: sha256 mismatch (manifest " in message
    assert "\n" not in message
    load_bundle(root, verify=False)  # the manifest itself is still fine


def _swap_for_link(path: Path) -> None:
    """Replace ``path`` by a symlink to a copy of it outside the bundle."""
    elsewhere = path.parent.parent / f"elsewhere-{path.name}"
    elsewhere.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(elsewhere)


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        (lambda r: (r / "model.bin").unlink(), r"model\.bin: missing \(listed in manifest\.json\)"),
        (lambda r: (r / "extra.txt").write_text("x"), r"extra\.txt: unexpected file, not listed"),
        (
            lambda r: (r / "model.xml").write_text("<net></net>"),
            r"model\.xml: size mismatch \(manifest 6 bytes",
        ),
        (lambda r: (r / MANIFEST_NAME).unlink(), r"manifest\.json: missing \(not a model bundle\?\)"),
        (
            lambda r: (r / MANIFEST_NAME).write_text("{\n  oops"),
            r"manifest\.json:2:3: invalid JSON",
        ),
        # a listed file swapped for a link to a file elsewhere (same bytes: only lstat notices)
        (lambda r: _swap_for_link(r / "model.xml"), r"model\.xml: a symlink in the bundle"),
    ],
)
def test_file_problems_name_the_file(tmp_path: Path, action, expected: str) -> None:  # type: ignore[no-untyped-def]
    root = make_bundle(tmp_path / "b")
    action(root)
    with pytest.raises(UserError, match=expected):
        load_bundle(root)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda m: m.pop("classes"), r"classes: is required"),
        (lambda m: m.update(anchors=[1.0, 2.0, 3.0]), r"anchors: must be an even-length list"),
        (
            lambda m: m.update(input_size=[128, 160]),
            r"input_size: must be \[height, width, channels\]",
        ),
        (lambda m: m.update(schema=2), r"schema: unsupported version 2"),
        (lambda m: m["artifacts"].update(tflite="model.onnx"), r"artifacts\.tflite: unknown kind"),
        (lambda m: m["artifacts"].update(pb="model.pb"), r"artifacts\.pb: 'model\.pb' is not listed"),
        (lambda m: m["files"][0].update(path="../evil"), r"files\[0\]\.path: not a relative path"),
        (lambda m: m["files"][0].update(path="/etc/passwd"), r"files\[0\]\.path: not a relative"),
        (lambda m: m.update(version="../../etc"), r"version: '\.\./\.\./etc' must be letters"),
        (lambda m: m.update(version="-rf"), r"version: '-rf' must be letters"),
        (lambda m: m.update(version="v" * 129), r"version: 'v+' must be letters"),
        (
            lambda m: m["files"][1].update(sha256="XYZ"),
            r"files\[1\]\.sha256: must be 64 lowercase hex",
        ),
        (
            lambda m: m.update(files=[f for f in m["files"] if f["path"] != "model.bin"]),
            r"artifacts\.openvino: 'model\.bin' \(beside 'model\.xml'\) is not listed",
        ),
    ],
)
def test_bad_fields_are_named(tmp_path: Path, change, expected: str) -> None:  # type: ignore[no-untyped-def]
    root = make_bundle(tmp_path / "b")
    edit_manifest(root, change)
    with pytest.raises(UserError, match=expected):
        read_manifest(root)


def test_build_refuses_an_unknown_kind(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"x")
    with pytest.raises(UserError, match="unknown kind"):
        build_manifest(
            tmp_path,
            name="n",
            version="1",
            classes=["a"],
            anchors=[1, 1],
            input_size=[32, 32, 3],
            artifacts={"caffe": "a.bin"},
            source_checkpoint=None,
            metrics=None,
            tool_versions={},
        )


def test_edge_module_stays_light() -> None:
    code = (
        "import sys, edge_image.contract.manifest; "
        "names = ('numpy', 'tensorflow', 'openvino', 'onnx', 'onnxruntime', 'training_scripts'); "
        "heavy = [m for m in names if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
