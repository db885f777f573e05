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
one line naming the file. Only the standard library is imported (:mod:`edge_image.contract.decode`, for
:attr:`Bundle.spec`, when it is used), so the edge service and any Ansible controller can use this
module without numpy, TensorFlow or OpenVINO. The same checks guard every path a bundle takes:
``pack``, the edge role on the controller (:mod:`edge_image.bundle_check`), ``check-config`` and the
service.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from edge_image.contract.atomic import repair_dir, write_bytes
from edge_image.contract.errors import UserError, parse_json
from edge_image.contract.fields import Fields
from edge_image.contract.signing import SIGNATURE_NAME, BundleTrust

if TYPE_CHECKING:
    from edge_image.contract.decode import RegionSpec

_log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Parity:
    """How closely an artifact must match the numpy darknet reference (export's parity check).

    ``atol``: max absolute error on the raw output (scaled up beyond ``|output| > 10``);
    ``margin``: score margin around the threshold within which a box may appear on one side
    only; ``max_diff``: max corner difference of matched boxes (normalized image units).
    """

    atol: float
    margin: float = 1e-3
    max_diff: float = 1e-3


@dataclass(frozen=True)
class ArtifactType:
    """One kind of file a bundle holds: its ``artifacts`` key in the manifest and all that goes with it.

    - ``kind``: the manifest key; ``description``: what the file is;
    - ``file``: its name in the bundles ``export`` writes; ``companion``: the suffix of the file
      that comes with it under the same stem (an IR's ``.bin``), or None;
    - ``format``: its ``export --formats`` name (None: copied or written beside another format,
      not converted on its own); ``builder``: the module that builds it (its ``build(ctx)``;
      ``run(path, batch)`` runs it for parity; an optional ``preflight(ctx)`` checks tools before
      any conversion); ``extras``: kinds its builder writes too (the ``.pb``'s darkflow meta);
    - ``precision``: the arithmetic it stores (``f32``, ``f16``); ``parity``: its tolerances,
      None when no runtime here can run it (the NCS graph).

    This table is the one place a format is described: adding a format is its row here and
    its builder module.
    """

    kind: str
    description: str
    file: str
    companion: str | None = None
    format: str | None = None
    builder: str | None = None
    extras: tuple[str, ...] = ()
    precision: str = "f32"
    parity: Parity | None = None


ARTIFACT_TYPES: tuple[ArtifactType, ...] = (
    ArtifactType("darknet_cfg", "darknet network cfg", "model.cfg"),
    ArtifactType("darknet_weights", "darknet weights (the source checkpoint)", "model.weights"),
    ArtifactType("names", "class labels, one per line", "obj.names"),
    ArtifactType(
        "pb", "frozen TensorFlow GraphDef (input 'input' NHWC, output 'output')", "model.pb",
        format="pb", builder="training_scripts.export.tf_graph", extras=("meta",), parity=Parity(1e-4),
    ),
    ArtifactType("meta", "darkflow .meta JSON (labels, anchors, input size)", "model.meta"),
    ArtifactType(
        "onnx", "ONNX model", "model.onnx",
        format="onnx", builder="training_scripts.export.onnx_export", parity=Parity(1e-4),
    ),
    ArtifactType(
        "openvino", "OpenVINO IR FP32 (.xml; its .bin beside it)", "model.xml", companion=".bin",
        format="openvino", builder="training_scripts.export.openvino_export", parity=Parity(1e-4),
    ),
    ArtifactType(
        "openvino_fp16", "OpenVINO IR FP16 (.xml; its .bin beside it)", "model-fp16.xml", companion=".bin",
        format="openvino-fp16", builder="training_scripts.export.openvino_export", precision="f16",
        parity=Parity(2e-2, margin=0.05, max_diff=1e-2),
    ),
    ArtifactType(
        "ncs_graph", "Movidius NCSDK graph compiled by mvNCCompile", "model.graph",
        format="ncs", builder="training_scripts.export.ncs", precision="f16",
    ),
)  # fmt: skip
#: :data:`ARTIFACT_TYPES` by kind.
ARTIFACTS: dict[str, ArtifactType] = {t.kind: t for t in ARTIFACT_TYPES}
#: Artifact kinds a manifest may name, and what each file is.
ARTIFACT_KINDS: dict[str, str] = {t.kind: t.description for t in ARTIFACT_TYPES}


def companion(kind: str, rel: str) -> str | None:
    """The file that comes with artifact ``kind`` stored at ``rel`` (an IR's weights), or None.

    >>> companion("openvino", "openvino/model.xml"), companion("onnx", "model.onnx")
    ('openvino/model.bin', None)
    """
    known = ARTIFACTS.get(kind)
    suffix = known.companion if known else None
    return None if suffix is None else PurePosixPath(rel).with_suffix(suffix).as_posix()


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
    """Relative POSIX paths of the regular files under ``bundle_dir`` but the manifest and its signature."""
    found = []
    for path in sorted(bundle_dir.rglob("*")):
        if path.is_file():
            rel = path.relative_to(bundle_dir).as_posix()
            if rel not in (MANIFEST_NAME, SIGNATURE_NAME):
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


def safe_relpath(rel: object) -> bool:
    """Whether ``rel`` is a non-empty relative POSIX path that stays inside its directory.

    >>> [safe_relpath(p) for p in ("a/b.onnx", "../x", "/etc/passwd", "", "a/./b")]
    [True, False, False, False, True]
    """
    if not isinstance(rel, str) or not rel or "\x00" in rel:
        return False
    pure = PurePosixPath(rel)
    return not pure.is_absolute() and ".." not in pure.parts and "\\" not in rel


#: ``version`` names a directory on the device: letters, digits and ``. _ + -``, not starting with
#: a dot or a dash, at most 128 characters.
VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")


def validate_manifest(manifest: object, *, where: str = MANIFEST_NAME) -> None:
    """Check the manifest's fields and types; raise :class:`UserError` naming the first bad field
    (read through :class:`~edge_image.contract.fields.Fields`, as every hand-off file is).

    >>> try:
    ...     validate_manifest({"schema": 1}, where="m.json")
    ... except UserError as exc:
    ...     print(exc)
    m.json: name: is required
    """
    top = Fields(where, "", manifest)
    for key in _REQUIRED:
        if not top.has(key):
            raise top.error(key, "is required")
    if top.raw("schema") != SCHEMA_VERSION:
        raise top.error("schema", f"unsupported version {top.raw('schema')!r} (need {SCHEMA_VERSION})")
    top.text("name")
    top.text("created")
    version = top.text("version")
    if not VERSION_PATTERN.fullmatch(version):
        raise top.error(
            "version",
            f"{version!r} must be letters, digits and . _ + - (at most 128, not starting with "
            "a dot or a dash): it names the bundle's directory on the device",
        )
    if not top.strings("classes"):
        raise top.error("classes", "must be a non-empty list of non-empty strings")
    anchors = top.value("anchors", list, "a list")
    if (
        len(anchors) < 2
        or len(anchors) % 2
        or not all(
            isinstance(a, int | float) and not isinstance(a, bool) and math.isfinite(a) and a > 0
            for a in anchors
        )
    ):
        raise top.error("anchors", "must be an even-length list of positive numbers (w,h pairs)")
    size = top.value("input_size", list, "a list")
    if len(size) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size):
        raise top.error("input_size", "must be [height, width, channels] positive integers")
    top.choice("output_layout", ("hwc", "chw"), "hwc")
    seen: set[str] = set()
    for entry in top.mappings("files"):
        if set(entry.data) != {"path", "sha256", "bytes"}:
            raise entry.error("", "must be an object with exactly path, sha256, bytes")
        rel = entry.raw("path")
        if not safe_relpath(rel) or rel in (MANIFEST_NAME, SIGNATURE_NAME):
            raise entry.error("path", f"not a relative path inside the bundle: {rel!r}")
        sha = entry.raw("sha256")
        if not isinstance(sha, str) or len(sha) != 64 or any(ch not in "0123456789abcdef" for ch in sha):
            raise entry.error("sha256", "must be 64 lowercase hex digits")
        if entry.value("bytes", int, "a non-negative integer") < 0:
            raise entry.error("bytes", "must be a non-negative integer")
        if rel in seen:
            raise entry.error("path", f"{rel!r} listed twice")
        seen.add(rel)  # type: ignore[arg-type]
    artifacts = top.required_child("artifacts")
    if not artifacts.data:
        raise top.error("artifacts", "must be a non-empty object of kind -> file")
    for kind, rel in artifacts.data.items():
        if kind not in ARTIFACT_KINDS:
            raise artifacts.error(kind, f"unknown kind (known: {', '.join(ARTIFACT_KINDS)})")
        if not safe_relpath(rel) or rel not in seen:
            raise artifacts.error(kind, f"{rel!r} is not listed in 'files'")
        beside = companion(kind, rel)
        if beside is not None and beside not in seen:
            raise artifacts.error(kind, f"{beside!r} (beside {rel!r}) is not listed in 'files'")
    for key in ("metrics", "tool_versions"):
        top.optional(key, dict, "an object")


def first_symlink(root: Path, rel: str) -> Path | None:
    """The first symlink among ``root/rel`` and the directories between ``root`` and it, or None."""
    path = root
    for part in PurePosixPath(rel).parts:
        path = path / part
        if path.is_symlink():
            return path
    return None


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
        _refuse_symlink(root, rel)
        if not path.is_file():
            raise UserError(f"{path}: missing (listed in {MANIFEST_NAME})")
        size = path.stat().st_size
        _check_size(path, entry, size)
        _check_sha256(path, entry, file_digest(path)[0])


def _refuse_symlink(root: Path, rel: str) -> None:
    link = first_symlink(root, rel)
    if link is not None:
        raise UserError(f"{link}: a symlink in the bundle (a bundle holds regular files only)")


def _check_size(path: Path, entry: Mapping[str, Any], size: int) -> None:
    if size != entry["bytes"]:
        raise UserError(f"{path}: size mismatch (manifest {entry['bytes']} bytes, file {size} bytes)")


def _check_sha256(path: Path, entry: Mapping[str, Any], sha: str) -> None:
    if sha != entry["sha256"]:
        raise UserError(f"{path}: sha256 mismatch (manifest {entry['sha256'][:12]}..., file {sha[:12]}...)")


@dataclass(frozen=True)
class Bundle:
    """A loaded (and by default verified) model bundle.

    ``input_size`` is ``(height, width, channels)``; ``artifacts`` maps kind → file name
    relative to ``root``; ``output_layout`` is the raw output's layout for
    :func:`edge_image.contract.decode.decode`.
    """

    root: Path
    manifest: dict[str, Any]
    classes: tuple[str, ...]
    anchors: tuple[float, ...]
    input_size: tuple[int, int, int]
    artifacts: dict[str, str]
    output_layout: str = field(default="hwc")
    #: key id of the verified signer ("unsigned" when allowed without one, "" when not checked)
    signer: str = ""

    def has(self, kind: str) -> bool:
        """Whether the bundle carries an artifact of ``kind``."""
        return kind in self.artifacts

    def path(self, kind: str) -> Path:
        """Absolute path of the artifact ``kind``; :class:`UserError` if the bundle lacks it."""
        if kind not in self.artifacts:
            have = ", ".join(sorted(self.artifacts)) or "none"
            raise UserError(f"{self.root / MANIFEST_NAME}: no {kind!r} artifact in this bundle (has: {have})")
        return self.root / self.artifacts[kind]

    def read(self, rel: str) -> bytes:
        """The bytes of the listed file ``rel``, read once and checked against the manifest.

        Backends load these bytes, never the path: what they run is what was hashed, so a file
        swapped after :func:`load_bundle` verified it is refused (:class:`UserError` naming the
        file), not loaded. The last path component is opened with ``O_NOFOLLOW`` and no directory
        on the way may be a symlink.
        """
        entry = next((e for e in self.manifest["files"] if e["path"] == rel), None)
        if entry is None:
            raise UserError(f"{self.root / rel}: not listed in {MANIFEST_NAME}")
        _refuse_symlink(self.root, rel)
        path = self.root / rel
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError as exc:
            raise UserError(f"{path}: cannot read ({exc.strerror})") from exc
        with os.fdopen(fd, "rb") as handle:
            data = handle.read()
        _check_size(path, entry, len(data))
        _check_sha256(path, entry, hashlib.sha256(data).hexdigest())
        return data

    def artifact(self, kind: str) -> bytes:
        """The verified bytes of the artifact ``kind`` (see :meth:`read`; :meth:`path`'s error
        when the bundle lacks it)."""
        self.path(kind)
        return self.read(self.artifacts[kind])

    @property
    def spec(self) -> RegionSpec:
        """Region-layer decoding parameters (class count and anchors)."""
        from edge_image.contract.decode import RegionSpec

        return RegionSpec(classes=len(self.classes), anchors=self.anchors)


def parse_manifest(data: bytes, *, where: str) -> dict[str, Any]:
    """The validated manifest in ``data`` (the bytes of a manifest.json); :class:`UserError` if bad."""
    manifest = parse_json(data, where=where)
    validate_manifest(manifest, where=where)
    return manifest


def _read_regular(path: Path, what: str) -> bytes:
    if path.is_symlink():
        raise UserError(f"{path}: a symlink (a bundle holds regular files only)")
    if not path.is_file():
        raise UserError(f"{path}: missing ({what})")
    return path.read_bytes()


def read_manifest(bundle_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse and validate ``bundle_dir/manifest.json`` (no file checks); :class:`UserError` if bad."""
    if not Path(bundle_dir).is_dir():
        raise UserError(f"{bundle_dir}: bundle directory not found")
    path = Path(bundle_dir) / MANIFEST_NAME
    return parse_manifest(_read_regular(path, "not a model bundle?"), where=str(path))


def load_bundle(
    bundle_dir: str | os.PathLike[str],
    *,
    verify: bool = True,
    trust: BundleTrust | None = None,
    warn: Callable[[str], None] = _log.warning,
) -> Bundle:
    """Read ``bundle_dir/manifest.json`` and (``verify=True``) check every file's size and SHA-256.

    With ``trust`` (what a device does) ``manifest.sig`` is verified over the manifest's bytes
    first, and the manifest is parsed from those same bytes. Raises :class:`UserError` naming the
    manifest field or the file that is wrong: an unsigned or wrongly signed bundle, a bad field, a
    missing or unexpected file, a size or checksum mismatch. ``verify=False`` only validates the
    manifest itself (for quick listings).
    """
    repaired = repair_dir(Path(bundle_dir).absolute())  # a crash inside atomic_dir's replace
    if repaired:
        warn(repaired)
    root = Path(bundle_dir).resolve()
    if not root.is_dir():
        raise UserError(f"{bundle_dir}: bundle directory not found")
    data = _read_regular(root / MANIFEST_NAME, "not a model bundle?")
    signer = ""
    if trust is not None:
        sig_path = root / SIGNATURE_NAME
        signature = _read_regular(sig_path, "") if sig_path.exists() or sig_path.is_symlink() else None
        signer = trust.check(data, signature, where=str(root), warn=warn)
    manifest = parse_manifest(data, where=str(root / MANIFEST_NAME))
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
        signer=signer,
    )
