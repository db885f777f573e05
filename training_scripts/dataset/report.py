"""``report.json`` and ``report.png`` for a prepared dataset.

The JSON holds no absolute paths, timestamps or versions, so the same input and seed give
the same bytes wherever the output lives. Keys (at least): ``images``, ``boxes``,
``classes``, ``dropped`` (by reason), ``clipped``, ``split`` (images per list), ``query``
(when a Flickr27 query set is present).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training_scripts.dataset.model import Sample
from training_scripts.dataset.split import LISTS, overlap
from training_scripts.dataset.validate import Tally

MAX_LISTED = 20


def box_sizes(samples: Sequence[Sample]) -> np.ndarray:
    """Normalized box ``(w, h)`` rows for every box of ``samples``, shape ``(N, 2)``.

    >>> from pathlib import Path
    >>> from training_scripts.dataset.model import Box
    >>> box_sizes([Sample("a", Path("a"), 100, 50, (Box("c", 0, 0, 50, 25),))]).tolist()
    [[0.5, 0.5]]
    """
    rows = [(b.width / s.width, b.height / s.height) for s in samples for b in s.boxes]
    return np.asarray(rows, np.float64).reshape(-1, 2)


def _quantiles(values: np.ndarray) -> dict[str, float]:
    if values.size == 0:
        return {}
    qs = np.quantile(values, [0.0, 0.1, 0.5, 0.9, 1.0])
    return {k: round(float(v), 6) for k, v in zip(("min", "p10", "median", "p90", "max"), qs, strict=True)}


def content_digest(root: Path, folders: tuple[str, ...] = ("images", "labels", "query")) -> str:
    """SHA-256 over every file under ``root/<folder>`` (sorted relative path, then bytes).

    It goes into ``report.json`` as ``content_sha256``: the train role names a run after its
    inputs, and file names alone (``synth_00001.jpg``) do not change when pixels or boxes do.
    """
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted((root / folder).rglob("*")):
            if path.is_file():
                rel = path.relative_to(root).as_posix().encode()
                digest.update(len(rel).to_bytes(4, "big") + rel)
                data = path.read_bytes()
                digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def build_report(
    fmt: str,
    classes: Sequence[str],
    split: dict[str, list[Sample]],
    tally: Tally,
    rule: str,
    fractions: Sequence[float],
    seed: int,
    query: Sequence[tuple[Sample, str | None]] | None,
    source_info: dict[str, object],
) -> dict[str, object]:
    """The report dict (JSON-ready, deterministic)."""
    unique: dict[str, Sample] = {s.name: s for items in split.values() for s in items}
    samples = [unique[n] for n in sorted(unique)]
    boxes_per_class: Counter[str] = Counter(b.cls for s in samples for b in s.boxes)
    images_per_class: Counter[str] = Counter(c for s in samples for c in s.classes)
    multi = sorted(s.name for s in samples if len(s.classes) > 1)
    sizes = box_sizes(samples)
    report: dict[str, object] = {
        "format": fmt,
        "images": len(samples),
        "boxes": int(sum(boxes_per_class.values())),
        "classes": list(classes),
        "boxes_per_class": {c: boxes_per_class.get(c, 0) for c in classes},
        "images_per_class": {c: images_per_class.get(c, 0) for c in classes},
        "negative_images": sum(1 for s in samples if not s.boxes),
        "multi_class_images": {"count": len(multi), "names": multi[:MAX_LISTED]},
        "dropped": dict(sorted(tally.dropped.items())),
        "clipped": tally.clipped,
        "size_mismatch": tally.size_mismatch,
        "split_rule": rule,
        "split_fractions": [round(float(f), 6) for f in fractions],
        "seed": seed,
        "split": {name: len(split[name]) for name in LISTS},
        "split_boxes_per_class": {
            name: {c: sum(1 for s in split[name] for b in s.boxes if b.cls == c) for c in classes}
            for name in LISTS
        },
        "overlap": overlap(split),
        "leaky_split": any(overlap(split).values()),
        "box_size": {
            "width": _quantiles(sizes[:, 0]),
            "height": _quantiles(sizes[:, 1]),
            "sqrt_area": _quantiles(np.sqrt(sizes[:, 0] * sizes[:, 1])),
        },
        "source": source_info,
    }
    if query is not None:
        labels = {s.name: cls for s, cls in query}
        report["query"] = len(query)
        report["query_labels"] = labels
        report["query_with_class"] = sum(1 for cls in labels.values() if cls is not None)
        report["query_none"] = sum(1 for cls in labels.values() if cls is None)
    return report


def report_json(report: dict[str, object]) -> str:
    """Stable JSON text (2-space indent, trailing newline)."""
    return json.dumps(report, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def plot_report(report: dict[str, object], split: dict[str, list[Sample]], path: Path) -> None:
    """Draw per-class box counts (stacked by list) and the box size distribution to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    classes: list[str] = list(report["classes"])  # type: ignore[call-overload]
    per_list: dict[str, dict[str, int]] = report["split_boxes_per_class"]  # type: ignore[assignment]
    unique = {s.name: s for items in split.values() for s in items}
    sizes = box_sizes([unique[n] for n in sorted(unique)])
    width = max(8.0, 0.35 * len(classes) + 6)
    fig, axes = plt.subplots(1, 3, figsize=(width + 8, 4.5), gridspec_kw={"width_ratios": [width, 4, 4]})
    bottom = np.zeros(len(classes))
    x = np.arange(len(classes))
    for name, colour in zip(LISTS, ("tab:blue", "tab:orange", "tab:green"), strict=True):
        counts = np.array([per_list[name][c] for c in classes], np.float64)
        axes[0].bar(x, counts, bottom=bottom, color=colour, label=f"{name} ({report['split'][name]} img)")  # type: ignore[index]
        bottom += counts
    axes[0].set_xticks(x, classes, rotation=60, ha="right", fontsize=8)
    axes[0].set_ylabel("boxes")
    axes[0].set_title(f"Boxes per class ({report['boxes']} boxes, {report['images']} images)")
    axes[0].legend(fontsize=8)
    if len(sizes):
        axes[1].scatter(sizes[:, 0], sizes[:, 1], s=6, alpha=0.5)
        axes[2].hist(np.sqrt(sizes[:, 0] * sizes[:, 1]), bins=30, range=(0, 1), color="tab:purple")
    axes[1].set(
        xlim=(0, 1), ylim=(0, 1), xlabel="box width / image width", ylabel="box height / image height"
    )
    axes[1].set_title("Box sizes")
    axes[2].set(xlim=(0, 1), xlabel="sqrt(w·h), normalized", ylabel="boxes")
    axes[2].set_title("Box size distribution")
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.3, top=0.9, wspace=0.3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, metadata={"Software": None})
    plt.close(fig)
    path.write_bytes(buffer.getvalue())
