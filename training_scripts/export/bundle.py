"""Assemble a model bundle: every requested format, parity-checked, with ``manifest.json``.

``export_bundle(cfg, weights, names, out)`` writes into a temporary sibling of ``out`` and
renames it into place only when every artifact converted and passed parity, so ``out`` is
either the previous bundle or a complete new one. Layout (names fixed, see
:mod:`edge_image.manifest`)::

    model.cfg  model.weights  obj.names       darknet source checkpoint
    model.pb   model.meta                     frozen TF graph + darkflow meta
    model.onnx                                ONNX
    model.xml  model.bin                      OpenVINO IR FP32
    model-fp16.xml  model-fp16.bin            OpenVINO IR FP16
    model.graph                               NCS graph (only with the ``ncs`` format)
    manifest.json
"""

from __future__ import annotations

import json
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
from typing import Any

import numpy as np

from edge_image.manifest import build_manifest, file_digest, load_bundle, write_manifest
from training_scripts import __version__
from training_scripts.atomic import atomic_dir, write_text
from training_scripts.darknet.cfg import Section, check_classes, parse_cfg
from training_scripts.darknet.forward import DarknetModel
from training_scripts.darknet.weights import read_weights
from training_scripts.errors import UserError
from training_scripts.export import DEFAULT_FORMATS, FORMATS
from training_scripts.export.folded import FoldedNetwork, fold

#: Artifact kind → file name inside the bundle.
FILES: dict[str, str] = {
    "darknet_cfg": "model.cfg",
    "darknet_weights": "model.weights",
    "names": "obj.names",
    "pb": "model.pb",
    "meta": "model.meta",
    "onnx": "model.onnx",
    "openvino": "model.xml",
    "openvino_fp16": "model-fp16.xml",
    "ncs_graph": "model.graph",
}
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


def read_names(path: str | os.PathLike[str]) -> list[str]:
    """Class labels, one per non-empty line (surrounding whitespace stripped)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: names file not found") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text ({exc.reason})") from None
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise UserError(f"{path}: no class names")
    return names


def read_selection(path: str | os.PathLike[str] | None) -> dict[str, Any]:
    """The ``select`` command's JSON (any object), or ``{}`` without a path."""
    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: selection file not found") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: line {exc.lineno}: invalid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object")
    return data


def _scalars(data: object) -> dict[str, Any]:
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, int | float | str) and not isinstance(v, bool)}


def selection_metrics(selection: Mapping[str, Any]) -> dict[str, Any]:
    """Metrics to record from a ``select`` document: the chosen iteration and criterion, and
    the scalar metrics (mAP, F1, precision, recall, ...) of its valid and test evaluations.
    Any other JSON object contributes its ``metrics`` object, else its top-level numbers.

    >>> doc = {"criterion": "valid mAP", "selected": {"iteration": 16, "weights": "m_16.weights",
    ...        "valid": {"evaluation": {"map": 0.5, "precision": [0.1]}}, "test": {"evaluation": None}}}
    >>> selection_metrics(doc)
    {'criterion': 'valid mAP', 'iteration': 16, 'valid': {'map': 0.5}}
    >>> selection_metrics({"iteration": 300, "map50": 0.5, "weights": "x"})
    {'iteration': 300, 'map50': 0.5}
    """
    selected = selection.get("selected")
    if isinstance(selected, dict):
        metrics: dict[str, Any] = {}
        if "criterion" in selection:
            metrics["criterion"] = selection["criterion"]
        if "iteration" in selected:
            metrics["iteration"] = selected["iteration"]
        for split in ("valid", "test"):
            run = selected.get(split)
            evaluation = _scalars(run.get("evaluation")) if isinstance(run, dict) else {}
            if evaluation:
                metrics[split] = evaluation
        return metrics
    nested = selection.get("metrics")
    if isinstance(nested, dict):
        return dict(nested)
    return {k: v for k, v in selection.items() if isinstance(v, int | float) and not isinstance(v, bool)}


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
    if "ncs" in wanted:  # fail before the slow conversions when the compiler cannot run
        from training_scripts.export import ncs

        probe = Path(out) / FILES["pb"]
        ncs.check_toolkit(
            ncs.compile_command(
                probe,
                probe.with_name(FILES["ncs_graph"]),
                shaves=ncs_shaves,
                prefix=ncs.resolve_prefix(ncs_prefix),
            )
        )
    model_name = name or cfg_path.stem
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
            _build(kind, tmp, network, sections, names, model_name, cfg_path, ncs_prefix, ncs_shaves)
            seconds[kind] = time.monotonic() - t0
            artifacts[kind] = FILES[kind]
            if kind == "pb":
                artifacts["meta"] = FILES["meta"]
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
        selected = selection.get("selected")
        if isinstance(selected, dict):
            source["selected_iteration"] = selected.get("iteration")
            source["selected_weights"] = Path(str(selected.get("weights", ""))).name
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
            metrics=selection_metrics(selection),
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
        path = root / rel
        size = path.stat().st_size
        if kind in ("openvino", "openvino_fp16"):
            size += path.with_suffix(".bin").stat().st_size
        sizes[kind] = size
    return sizes


def _build(
    kind: str,
    tmp: Path,
    network: FoldedNetwork,
    sections: Sequence[Section],
    names: Sequence[str],
    model_name: str,
    cfg_path: Path,
    ncs_prefix: str | None,
    ncs_shaves: int,
) -> None:
    """Write one artifact kind into ``tmp`` (the ``.pb`` must already exist for the others)."""
    if kind == "pb":
        from training_scripts.export import tf_graph

        graph_def = tf_graph.build_graph_def(network)
        bad = tf_graph.unsupported_ncsdk_ops(tf_graph.op_types(graph_def))
        if bad:
            raise UserError(f"{cfg_path}: the graph needs ops NCSDK 2.x cannot compile: {', '.join(bad)}")
        tf_graph.write_pb(graph_def, tmp / FILES["pb"])
        meta = tf_graph.darkflow_meta(sections, names, network, name=model_name, model=FILES["darknet_cfg"])
        tf_graph.write_meta(meta, tmp / FILES["meta"])
    elif kind == "onnx":
        from training_scripts.export import onnx_export, tf_graph

        onnx_export.export_onnx(tf_graph.load_graph_def(tmp / FILES["pb"]), tmp / FILES["onnx"])
    elif kind in ("openvino", "openvino_fp16"):
        from training_scripts.export import openvino_export

        openvino_export.export_openvino(
            tmp / FILES["pb"], tmp / FILES[kind], network.input_size, fp16=kind == "openvino_fp16"
        )
    elif kind == "ncs_graph":
        from training_scripts.export import ncs

        command = ncs.compile_command(
            tmp / FILES["pb"],
            tmp / FILES["ncs_graph"],
            shaves=ncs_shaves,
            prefix=ncs.resolve_prefix(ncs_prefix),
        )
        ncs.run_compile(command)
    else:
        raise UserError(f"unknown artifact kind {kind!r}")
