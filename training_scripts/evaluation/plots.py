"""Evaluation pictures (matplotlib, Agg): mAP by checkpoint, per-class AP bars, PR curves.

The AP and PR functions take the JSON form of an evaluation
(:meth:`training_scripts.evaluation.metrics.Evaluation.to_dict`), so the report can draw
them from ``selection.json`` without evaluating again. Each returns PNG bytes or writes
the file atomically.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_image.contract.atomic import write_bytes
from training_scripts.training.plots import figure_png

if TYPE_CHECKING:
    from training_scripts.evaluation.select import CheckpointScore


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_map_by_iteration(
    scores: Sequence[CheckpointScore],
    best: CheckpointScore,
    out: str | os.PathLike[str],
    *,
    test_map: float | None = None,
) -> Path:
    """Write :func:`map_by_iteration_png` to ``out`` atomically."""
    return write_bytes(out, map_by_iteration_png(scores, best, test_map=test_map))


def map_by_iteration_png(
    scores: Sequence[CheckpointScore], best: CheckpointScore, *, test_map: float | None = None
) -> bytes:
    """Validation mAP@0.5 (area and 11-point) and F1 per checkpoint; the winner marked (PNG)."""
    plt = _pyplot()
    xs = [s.iteration for s in scores]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(xs, [100 * s.map for s in scores], "o-", color="#1f4e99", label="valid mAP@0.5 (area)")
    ax.plot(
        xs,
        [100 * s.map11 for s in scores],
        "s--",
        color="#6d9eeb",
        markersize=4,
        label="valid mAP@0.5 (11-pt)",
    )
    ax.plot(xs, [100 * s.f1 for s in scores], "^:", color="#6aa84f", markersize=4, label="valid F1 × 100")
    ax.scatter(
        [best.iteration],
        [100 * best.map],
        s=180,
        facecolors="none",
        edgecolors="#cc0000",
        linewidths=2,
        label=f"selected: iteration {best.iteration}",
        zorder=5,
    )
    if test_map is not None:
        ax.scatter(
            [best.iteration],
            [100 * test_map],
            marker="*",
            s=160,
            color="#cc0000",
            label=f"test mAP@0.5 of selected: {100 * test_map:.1f} %",
            zorder=5,
        )
    ax.set_xlabel("iteration")
    ax.set_ylabel("%")
    ax.set_ylim(0, 100)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    ax.set_title("Checkpoint selection on the validation list")
    fig.tight_layout()
    return figure_png(fig)


def ap_bars_png(evaluation: Mapping[str, Any], title: str = "Per-class AP@0.5") -> bytes:
    """Horizontal bars of per-class AP (area and 11-point); classes without truth marked n/a."""
    plt = _pyplot()
    classes = list(evaluation["classes"])
    names = [str(c["name"]) for c in classes]
    ap = [100 * (c["ap"] or 0.0) for c in classes]
    ap11 = [100 * (c["ap11"] or 0.0) for c in classes]
    height = max(2.5, 0.32 * len(classes) + 1.2)
    fig, ax = plt.subplots(figsize=(8, height))
    ys = list(range(len(classes)))
    ax.barh([y - 0.2 for y in ys], ap, height=0.4, color="#1f4e99", label="AP (area)")
    ax.barh([y + 0.2 for y in ys], ap11, height=0.4, color="#6d9eeb", label="AP (11-point)")
    for y, c in zip(ys, classes, strict=True):
        text = "n/a" if c["ap"] is None else f"{100 * c['ap']:.1f}"
        ax.text(min(100 * (c["ap"] or 0.0) + 1, 92), y - 0.2, text, va="center", fontsize=7)
    ax.set_yticks(ys, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("%")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"{title} — mAP {100 * evaluation['map']:.1f} % (11-pt {100 * evaluation['map11']:.1f} %)")
    fig.tight_layout()
    return figure_png(fig)


def pr_curves_png(evaluation: Mapping[str, Any], title: str = "Precision-recall per class") -> bytes:
    """One precision-recall curve per class that has ground truth."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5.5))
    cmap = plt.get_cmap("tab20")
    drawn = 0
    for k, c in enumerate(evaluation["classes"]):
        if c["ap"] is None or not c.get("recall"):
            continue
        ax.plot(
            c["recall"],
            c["precision"],
            color=cmap(k % 20),
            linewidth=1.2,
            label=f"{c['name']} (AP {100 * c['ap']:.1f})",
        )
        drawn += 1
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.grid(True, alpha=0.3)
    if drawn:
        ax.legend(loc="lower left", fontsize=7, ncol=2 if drawn > 10 else 1)
    else:
        ax.text(0.5, 0.5, "no detections", ha="center", va="center")
    ax.set_title(title)
    fig.tight_layout()
    return figure_png(fig)
