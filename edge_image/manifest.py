"""The model bundle's ``manifest.json``: build it (export side), read and verify it (edge side).

A bundle is one directory holding a converted model in several formats plus what is needed
to decode its output::

    BUNDLE/
      manifest.json        this module's format (below)
      obj.names            class labels, one per line
      model.cfg            darknet cfg      model.weights  darknet weights
      model.pb             frozen TF graph  model.meta     darkflow meta JSON
      model.onnx           ONNX             model.xml/.bin OpenVINO IR FP32
      model-fp16.xml/.bin  OpenVINO IR FP16 model.graph    NCS graph (when compiled)

``manifest.json``::

    {
      "schema": 1,
      "name": "tiny-yolo-voc", "version": "2026.11.24-1",
      "created": "2026-11-24T13:30:00Z",
      "classes": ["person", ...],
      "anchors": [1.08, 1.19, ...],                 # w,h pairs in grid cells
      "input_size": [416, 416, 3],                  # height, width, channels (RGB, /255, NHWC)
      "output_layout": "hwc",                       # raw output channel-minor (see decode.to_grid)
      "artifacts": {"onnx": "model.onnx", ...},    # kind -> file (see ARTIFACT_KINDS)
      "files": [{"path": "model.onnx", "sha256": "...", "bytes": 63475012}, ...],
      "source_checkpoint": {...}, "metrics": {...}, "tool_versions": {...}
    }

Every file in the directory except the manifest itself is listed in ``files``;
:func:`load_bundle` refuses a bundle whose files are missing, extra, resized or changed, with
one line naming the file. Only the standard library and :mod:`edge_image.decode` are imported,
so the edge service can use this module without TensorFlow or OpenVINO.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from edge_image.atomic import write_bytes
from edge_image.decode import RegionSpec
from edge_image.errors import UserError

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1

#: Artifact kinds a manifest may name, and what each file is.
ARTIFACT_KINDS: dict[str, str] = {
    "darknet_cfg": "darknet network cfg",
    "darknet_weights": "darknet weights (the source checkpoint)",
    "names": "class labels, one per line",
    "pb": "frozen TensorFlow GraphDef (input 'input' NHWC, output 'output')",
    "meta": "darkflow .meta JSON (labels, anchors, input size)",
    "onnx": "ONNX model",
    "openvino": "OpenVINO IR FP32 (.xml; its .bin beside it)",
    "openvino_fp16": "OpenVINO IR FP16 (.xml; its .bin beside it)",
    "ncs_graph": "Movidius NCSDK graph compiled by mvNCCompile",
}

#: Kinds whose file comes with a companion weights file of the same stem.
_COMPANIONS: dict[str, str] = {"openvino": ".bin", "openvino_fp16": ".bin"}

_REQUIRED: tuple[str, ...] = (
    "schema",
    "name",
    "version",
    "created",
    "classes",
    "anchors",
    "input_size",
    "artifacts",
    "files",
)

_CHUNK = 1 << 20


def file_digest(path: str | os.PathLike[str]) -> tuple[str, int]:
    """SHA-256 hex digest and size in bytes of a file, read in 1 MiB chunks.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a"
    >>> _ = p.write_bytes(b"abc")
    >>> file_digest(p)
    ('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', 3)
    """
    digest = hashlib.sha256()
    size = 0
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _bundle_files(bundle_dir: Path) -> list[str]:
    """Relative POSIX paths of every regular file under ``bundle_dir`` except the manifest."""
    found = []
    for path in sorted(bundle_dir.rglob("*")):
        if path.is_file():
            rel = path.relative_to(bundle_dir).as_posix()
            if rel != MANIFEST_NAME:
                found.append(rel)
    return found


def _utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def build_manifest(
    bundle_dir: str | os.PathLike[str],
    *,
    name: str,
    version: str,
    classes: Sequence[str],
    anchors: Sequence[float],
    input_size: Sequence[int],
    artifacts: Mapping[str, str],
    source_checkpoint: Mapping[str, Any] | str | None,
    metrics: Mapping[str, Any] | None,
    tool_versions: Mapping[str, str],
    output_layout: str = "hwc",
) -> dict[str, Any]:
    """Describe the files already in ``bundle_dir``; returns the manifest dict (not written).

    ``input_size`` is ``(height, width, channels)``; ``artifacts`` maps a kind from
    :data:`ARTIFACT_KINDS` to a file relative to ``bundle_dir``. Every file in the directory
    (except ``manifest.json``) is hashed into ``files``. The result passes
    :func:`validate_manifest`; a bad argument raises :class:`UserError`.
    """
    root = Path(bundle_dir)
    manifest: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "name": str(name),
        "version": str(version),
        "created": _utc_now(),
        "classes": [str(c) for c in classes],
        "anchors": [float(a) for a in anchors],
        "input_size": [int(v) for v in input_size],
        "output_layout": output_layout,
        "artifacts": dict(artifacts),
        "files": [],
        "source_checkpoint": source_checkpoint if source_checkpoint is not None else {},
        "metrics": dict(metrics or {}),
        "tool_versions": dict(tool_versions),
    }
    for rel in _bundle_files(root):
        sha, size = file_digest(root / rel)
        manifest["files"].append({"path": rel, "sha256": sha, "bytes": size})
    validate_manifest(manifest, where=str(root / MANIFEST_NAME))
    return manifest


def write_manifest(bundle_dir: str | os.PathLike[str], manifest: Mapping[str, Any]) -> Path:
    """Write ``manifest`` as ``bundle_dir/manifest.json`` atomically (temp file, fsync, rename)."""
    target = Path(bundle_dir) / MANIFEST_NAME
    data = (json.dumps(manifest, indent=2, sort_keys=False) + "\n").encode("utf-8")
    return write_bytes(target, data)


def _field_error(where: str, key: str, problem: str) -> UserError:
    return UserError(f"{where}: field {key!r}: {problem}")


def safe_relpath(rel: object) -> bool:
    """Whether ``rel`` is a non-empty relative POSIX path that stays inside its directory."""
    if not isinstance(rel, str) or not rel:
        return False
    pure = PurePosixPath(rel)
    return not pure.is_absolute() and ".." not in pure.parts and "\\" not in rel


def validate_manifest(manifest: object, *, where: str = MANIFEST_NAME) -> None:
    """Check the manifest's fields and types; raise :class:`UserError` naming the first bad field.

    >>> validate_manifest({"schema": 1}, where="m.json")
    Traceback (most recent call last):
    ...
    edge_image.errors.UserError: m.json: field 'name': missing
    """
    if not isinstance(manifest, dict):
        raise UserError(f"{where}: must be a JSON object, got {type(manifest).__name__}")
    for key in _REQUIRED:
        if key not in manifest:
            raise _field_error(where, key, "missing")
    if manifest["schema"] != SCHEMA_VERSION:
        raise _field_error(
            where, "schema", f"unsupported version {manifest['schema']!r} (need {SCHEMA_VERSION})"
        )
    for key in ("name", "version", "created"):
        if not isinstance(manifest[key], str) or not manifest[key]:
            raise _field_error(where, key, "must be a non-empty string")
    classes = manifest["classes"]
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) and c for c in classes):
        raise _field_error(where, "classes", "must be a non-empty list of non-empty strings")
    anchors = manifest["anchors"]
    if (
        not isinstance(anchors, list)
        or len(anchors) < 2
        or len(anchors) % 2
        or not all(
            isinstance(a, int | float) and not isinstance(a, bool) and math.isfinite(a) and a > 0
            for a in anchors
        )
    ):
        raise _field_error(where, "anchors", "must be an even-length list of positive numbers (w,h pairs)")
    size = manifest["input_size"]
    if (
        not isinstance(size, list)
        or len(size) != 3
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
    ):
        raise _field_error(where, "input_size", "must be [height, width, channels] positive integers")
    if manifest.get("output_layout", "hwc") not in ("hwc", "chw"):
        raise _field_error(where, "output_layout", "must be 'hwc' or 'chw'")
    files = manifest["files"]
    if not isinstance(files, list):
        raise _field_error(where, "files", "must be a list")
    seen: set[str] = set()
    for i, entry in enumerate(files):
        key = f"files[{i}]"
        if not isinstance(entry, dict) or set(entry) != {"path", "sha256", "bytes"}:
            raise _field_error(where, key, "must be an object with exactly path, sha256, bytes")
        if not safe_relpath(entry["path"]) or entry["path"] == MANIFEST_NAME:
            raise _field_error(
                where, f"{key}.path", f"not a relative path inside the bundle: {entry['path']!r}"
            )
        sha = entry["sha256"]
        if not isinstance(sha, str) or len(sha) != 64 or any(ch not in "0123456789abcdef" for ch in sha):
            raise _field_error(where, f"{key}.sha256", "must be 64 lowercase hex digits")
        if not isinstance(entry["bytes"], int) or isinstance(entry["bytes"], bool) or entry["bytes"] < 0:
            raise _field_error(where, f"{key}.bytes", "must be a non-negative integer")
        if entry["path"] in seen:
            raise _field_error(where, f"{key}.path", f"{entry['path']!r} listed twice")
        seen.add(entry["path"])
    artifacts = manifest["artifacts"]
    if not isinstance(artifacts, dict) or not artifacts:
        raise _field_error(where, "artifacts", "must be a non-empty object of kind -> file")
    for kind, rel in artifacts.items():
        if kind not in ARTIFACT_KINDS:
            raise _field_error(
                where, f"artifacts.{kind}", f"unknown kind (known: {', '.join(ARTIFACT_KINDS)})"
            )
        if not safe_relpath(rel) or rel not in seen:
            raise _field_error(where, f"artifacts.{kind}", f"{rel!r} is not listed in 'files'")
        companion = _COMPANIONS.get(kind)
        if companion is not None:
            beside = str(PurePosixPath(rel).with_suffix(companion))
            if beside not in seen:
                raise _field_error(
                    where, f"artifacts.{kind}", f"{beside!r} (beside {rel!r}) is not listed in 'files'"
                )
    for key in ("metrics", "tool_versions"):
        if key in manifest and not isinstance(manifest[key], dict):
            raise _field_error(where, key, "must be an object")


def verify_files(
    bundle_dir: str | os.PathLike[str], manifest: Mapping[str, Any], *, allow_unlisted: bool = False
) -> None:
    """Check that the directory holds exactly the listed files with the listed sizes and digests
    (``allow_unlisted=True``: other files may sit beside them, e.g. a published report).

    Raises :class:`UserError` with one line naming the first offending file, e.g.
    ``model.onnx: sha256 mismatch (manifest 3f2a9c01..., file 77b0e1d4...)``.
    """
    root = Path(bundle_dir)
    listed = {entry["path"]: entry for entry in manifest["files"]}
    present = set() if allow_unlisted else set(_bundle_files(root))
    for rel in sorted(present - set(listed)):
        raise UserError(f"{root / rel}: unexpected file, not listed in {MANIFEST_NAME}")
    for rel, entry in listed.items():
        path = root / rel
        if not path.is_file():
            raise UserError(f"{path}: missing (listed in {MANIFEST_NAME})")
        size = path.stat().st_size
        if size != entry["bytes"]:
            raise UserError(f"{path}: size mismatch (manifest {entry['bytes']} bytes, file {size} bytes)")
        sha, _ = file_digest(path)
        if sha != entry["sha256"]:
            raise UserError(
                f"{path}: sha256 mismatch (manifest {entry['sha256'][:12]}..., file {sha[:12]}...)"
            )


@dataclass(frozen=True)
class Bundle:
    """A loaded (and by default verified) model bundle.

    ``input_size`` is ``(height, width, channels)``; ``artifacts`` maps kind → file name
    relative to ``root``; ``output_layout`` is the raw output's layout for
    :func:`edge_image.decode.decode`.
    """

    root: Path
    manifest: dict[str, Any]
    classes: tuple[str, ...]
    anchors: tuple[float, ...]
    input_size: tuple[int, int, int]
    artifacts: dict[str, str]
    output_layout: str = field(default="hwc")

    def has(self, kind: str) -> bool:
        """Whether the bundle carries an artifact of ``kind``."""
        return kind in self.artifacts

    def path(self, kind: str) -> Path:
        """Absolute path of the artifact ``kind``; :class:`UserError` if the bundle lacks it."""
        if kind not in self.artifacts:
            have = ", ".join(sorted(self.artifacts)) or "none"
            raise UserError(f"{self.root / MANIFEST_NAME}: no {kind!r} artifact in this bundle (has: {have})")
        return self.root / self.artifacts[kind]

    @property
    def spec(self) -> RegionSpec:
        """Region-layer decoding parameters (class count and anchors)."""
        return RegionSpec(classes=len(self.classes), anchors=self.anchors)


def read_manifest(bundle_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse and validate ``bundle_dir/manifest.json`` (no file checks); :class:`UserError` if bad."""
    path = Path(bundle_dir) / MANIFEST_NAME
    if not Path(bundle_dir).is_dir():
        raise UserError(f"{bundle_dir}: bundle directory not found")
    if not path.is_file():
        raise UserError(f"{path}: missing (not a model bundle?)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: line {exc.lineno} column {exc.colno}: invalid JSON ({exc.msg})") from exc
    validate_manifest(manifest, where=str(path))
    return manifest


def load_bundle(bundle_dir: str | os.PathLike[str], *, verify: bool = True) -> Bundle:
    """Read ``bundle_dir/manifest.json`` and (``verify=True``) check every file's size and SHA-256.

    Raises :class:`UserError` naming the manifest field or the file that is wrong: a bad
    field, a missing or unexpected file, a size or checksum mismatch. ``verify=False`` only
    validates the manifest itself (for quick listings).
    """
    root = Path(bundle_dir).resolve()
    manifest = read_manifest(root)
    if verify:
        verify_files(root, manifest)
    h, w, c = manifest["input_size"]
    return Bundle(
        root=root,
        manifest=manifest,
        classes=tuple(manifest["classes"]),
        anchors=tuple(float(a) for a in manifest["anchors"]),
        input_size=(h, w, c),
        artifacts=dict(manifest["artifacts"]),
        output_layout=manifest.get("output_layout", "hwc"),
    )
