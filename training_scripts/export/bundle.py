"""Assemble a model bundle: every requested format, parity-checked, with ``manifest.json``.

``export_bundle(cfg, weights, names, out)`` writes into a temporary sibling of ``out`` and
renames it into place only when every artifact converted and passed parity, so ``out`` is
either the previous bundle or a complete new one. Layout (names fixed, see
:mod:`edge_image.contract.manifest`)::

    model.cfg  model.weights  obj.names       darknet source checkpoint
    model.pb   model.meta                     frozen TF graph + darkflow meta
    model.onnx                                ONNX
    model.xml  model.bin                      OpenVINO IR FP32
    model-fp16.xml  model-fp16.bin            OpenVINO IR FP16
    model.graph                               NCS graph (only with the ``ncs`` format)
    manifest.json
"""

from __future__ import annotations

import importlib
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from edge_image.contract.atomic import atomic_dir, write_text
from edge_image.contract.errors import UserError
from edge_image.contract.manifest import (
    ARTIFACT_TYPES,
    ARTIFACTS,
    build_manifest,
    companion,
    file_digest,
    load_bundle,
    write_manifest,
)
from training_scripts import __version__
from training_scripts.darknet.cfg import check_classes, parse_cfg
from training_scripts.darknet.forward import DarknetModel
from training_scripts.darknet.weights import read_weights
from training_scripts.dataset.darknet_layout import read_names
from training_scripts.evaluation.selection_file import SelectionFile
from training_scripts.export import DEFAULT_FORMATS, FORMATS
from training_scripts.export.context import BuildContext
from training_scripts.export.folded import fold

#: Artifact kind → file name inside the bundle (from :data:`edge_image.contract.manifest.ARTIFACT_TYPES`).
FILES: dict[str, str] = {t.kind: t.file for t in ARTIFACT_TYPES}
PARITY_IMAGES = 5


@dataclass
class ExportResult:
    """What :func:`export_bundle` made: the bundle path, its manifest, timings and sizes."""

    bundle: Path
    manifest: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    parity: list[dict[str, object]] = field(default_factory=list)

    def table(self) -> str:
        """Artifacts, sizes and export seconds as aligned text."""
        lines = [f"{'artifact':<16} {'file':<18} {'size MiB':>9} {'seconds':>8}"]
        for kind, rel in self.manifest["artifacts"].items():
            size = self.sizes.get(kind, 0)
            secs = self.seconds.get(kind)
            lines.append(
                f"{kind:<16} {rel:<18} {size / 2**20:9.2f} {'' if secs is None else f'{secs:8.1f}':>8}"
            )
        lines.append(
            f"{'total':<16} {'':<18} {sum(self.sizes.values()) / 2**20:9.2f} {self.seconds['total']:8.1f}"
        )
        return "\n".join(lines)


def parse_formats(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"pb,onnx"`` → ordered, de-duplicated format names; ``pb`` is always included
    (every other format is converted from it). UserError on an unknown name.

    >>> parse_formats("openvino,onnx")
    ('pb', 'onnx', 'openvino')
    """
    items = [t.strip() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
    unknown = [t for t in items if t not in FORMATS]
    if unknown:
        raise UserError(f"--formats: unknown format {unknown[0]!r} (choose from {', '.join(FORMATS)})")
    wanted = {"pb", *items}
    return tuple(f for f in FORMATS if f in wanted)


def read_selection(path: str | os.PathLike[str] | None) -> SelectionFile | None:
    """The ``select`` command's ``selection.json`` (:class:`SelectionFile`), or None without a path."""
    return None if path is None else SelectionFile.read(path)


def tool_versions() -> dict[str, str]:
    """Versions of the converters and runtimes used (those installed)."""
    versions = {"python": platform.python_version(), "training_scripts": __version__}
    for package in ("tensorflow", "tf2onnx", "onnx", "onnxruntime", "openvino", "numpy", "opencv-python"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def default_version() -> str:
    """A sortable UTC timestamp version, e.g. ``20261124T134501Z``."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def export_bundle(
    cfg_path: str | os.PathLike[str],
    weights_path: str | os.PathLike[str],
    names_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    formats: Sequence[str] = DEFAULT_FORMATS,
    selection_path: str | os.PathLike[str] | None = None,
    name: str | None = None,
    version: str | None = None,
    parity_batch: np.ndarray | None = None,
    parity_thresh: float = 0.25,
    ncs_prefix: str | None = None,
    ncs_shaves: int = 12,
    log: Log = _stderr,
) -> ExportResult:
    """Convert ``cfg_path`` + ``weights_path`` into the bundle directory ``out``.

    ``parity_batch`` is ``(N, h, w, 3)`` float32 RGB 0..1 (default: 5 smooth random
    images); every format but ``ncs`` must match the darknet reference on it
    (:mod:`.parity`), or the export fails with a :class:`UserError` and ``out`` is untouched.
    """
    started = time.monotonic()
    wanted = parse_formats(formats)
    cfg_path, weights_path, names_path = Path(cfg_path), Path(weights_path), Path(names_path)
    sections = parse_cfg(cfg_path)
    names = read_names(names_path)
    check_classes(sections, names, names_source=str(names_path))
    weights = read_weights(weights_path, sections)
    network = fold(sections, weights)
    selection = read_selection(selection_path)
    model_name = name or cfg_path.stem

    def context(kind: str, staging: Path) -> BuildContext:
        return BuildContext(
            ARTIFACTS[kind], staging, network, sections, names, model_name, cfg_path, ncs_prefix, ncs_shaves
        )

    for fmt in wanted:  # fail before the slow conversions when a format's tool cannot run
        builder = _builder(FORMATS[fmt])
        if hasattr(builder, "preflight"):
            builder.preflight(context(FORMATS[fmt], Path(out).parent))
    h, w, c = network.input_size
    log(
        f"export: {cfg_path.name} + {weights_path.name}: input {w}x{h}x{c}, output {network.output_size}, "
        f"{len(names)} classes → {', '.join(wanted)}"
    )

    from training_scripts.export import parity

    if parity_batch is None:
        parity_batch = parity.random_images(PARITY_IMAGES, network.input_size)
    if parity_batch.ndim != 4 or parity_batch.shape[1:] != network.input_size:
        raise UserError(f"parity images must be (N, {h}, {w}, {c}), got {parity_batch.shape}")
    reference = DarknetModel(sections, weights).forward(parity_batch)

    seconds: dict[str, float] = {}
    artifacts = {kind: FILES[kind] for kind in ("darknet_cfg", "darknet_weights", "names")}
    results: list[parity.FormatParity] = []
    out = Path(out)
    with atomic_dir(out) as tmp:
        shutil.copyfile(cfg_path, tmp / FILES["darknet_cfg"])
        shutil.copyfile(weights_path, tmp / FILES["darknet_weights"])
        write_text(tmp / FILES["names"], "\n".join(names) + "\n")
        total = len(wanted)
        for step, fmt in enumerate(wanted, start=1):
            kind = FORMATS[fmt]
            log(
                f"[{step}/{total}] {fmt}: converting ({100 * (step - 1) // total}% done, "
                f"{time.monotonic() - started:.0f} s elapsed)"
            )
            t0 = time.monotonic()
            _builder(kind).build(context(kind, tmp))
            seconds[kind] = time.monotonic() - t0
            for made in (kind, *ARTIFACTS[kind].extras):
                artifacts[made] = FILES[made]
            if kind in parity.TOLERANCES:
                result = parity.check_artifact(
                    kind, tmp / FILES[kind], parity_batch, reference, network.spec, thresh=parity_thresh
                )
                log(f"      {result.describe()}")
                results.append(result)
                if not result.ok:
                    raise UserError(
                        f"{FILES[kind]}: parity with the darknet reference failed: {result.describe()}"
                    )
        weights_sha, weights_bytes = file_digest(weights_path)
        source = {
            "cfg": cfg_path.name,
            "weights": weights_path.name,
            "sha256": weights_sha,
            "bytes": weights_bytes,
            "seen": weights.seen,
            "darknet_version": f"{weights.major}.{weights.minor}.{weights.revision}",
        }
        if selection is not None:
            source["selected_iteration"] = selection.selected.iteration
            source["selected_weights"] = Path(selection.selected.weights).name
            if source["selected_weights"] != weights_path.name:
                log(
                    f"export: note: {weights_path.name} is not the selected checkpoint "
                    f"{source['selected_weights']}"
                )
        manifest = build_manifest(
            tmp,
            name=model_name,
            version=version or default_version(),
            classes=names,
            anchors=network.spec.anchors,
            input_size=network.input_size,
            artifacts=artifacts,
            source_checkpoint=source,
            metrics=selection.metrics() if selection is not None else {},
            tool_versions=tool_versions(),
        )
        seconds["total"] = time.monotonic() - started
        manifest["parity"] = [r.to_dict() for r in results]
        manifest["export_seconds"] = {k: round(v, 2) for k, v in seconds.items()}
        write_manifest(tmp, manifest)
        _publishable(tmp)
        load_bundle(tmp)  # the bundle verifies as a device will verify it
    sizes = _artifact_sizes(out, artifacts)
    return ExportResult(out, manifest, seconds, sizes, [r.to_dict() for r in results])


def _publishable(root: Path) -> None:
    """World-readable modes (temporary files and directories are created 0600 / 0700)."""
    root.chmod(0o755)
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


def _artifact_sizes(root: Path, artifacts: Mapping[str, str]) -> dict[str, int]:
    sizes = {}
    for kind, rel in artifacts.items():
        size = (root / rel).stat().st_size
        beside = companion(kind, rel)
        if beside is not None:
            size += (root / beside).stat().st_size
        sizes[kind] = size
    return sizes


def _builder(kind: str) -> ModuleType:
    """The builder module of artifact ``kind`` (its row's ``builder``)."""
    module = ARTIFACTS[kind].builder
    if module is None:
        raise UserError(f"artifact kind {kind!r} has no builder")
    return importlib.import_module(module)
