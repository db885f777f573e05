"""Training pictures (matplotlib, Agg backend): the loss curve."""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

from edge_image.contract.atomic import write_bytes
from training_scripts.training.logparse import IterationRecord


def figure_png(fig: object) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    return buffer.getvalue()


def plot_loss(
    records: Sequence[IterationRecord], out: str | os.PathLike[str], *, max_batches: int | None = None
) -> Path:
    """Write :func:`loss_png` to ``out`` atomically."""
    return write_bytes(out, loss_png(records, max_batches=max_batches))


def loss_png(records: Sequence[IterationRecord], *, max_batches: int | None = None) -> bytes:
    """Loss and running-average loss per iteration (log scale when it spans > 20x), as PNG.

    A second axis shows the region layer's average IoU and recall when darknet printed them.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    iterations = [r.iteration for r in records]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(iterations, [r.loss for r in records], color="#9bbbe0", linewidth=0.8, label="loss")
    ax.plot(iterations, [r.avg_loss for r in records], color="#1f4e99", linewidth=1.8, label="avg loss")
    positive = [r.loss for r in records if r.loss > 0]
    if positive and max(positive) / min(positive) > 20:
        from matplotlib.ticker import FuncFormatter

        ax.set_yscale("log")
        plain = FuncFormatter(lambda value, _pos: f"{value:g}")  # 40, not 4x10^1
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    if max_batches:
        ax.set_xlim(0, max(max_batches, max(iterations, default=0)))
    ax.grid(True, alpha=0.3)
    region = [(r.iteration, r.region_iou, r.region_recall) for r in records if not math.isnan(r.region_iou)]
    handles, labels = ax.get_legend_handles_labels()
    if region:
        ax2 = ax.twinx()
        xs = [x for x, _, _ in region]
        (iou_line,) = ax2.plot(xs, [v for _, v, _ in region], color="#e69138", linewidth=0.8, alpha=0.7)
        (recall_line,) = ax2.plot(xs, [v for _, _, v in region], color="#6aa84f", linewidth=0.8, alpha=0.7)
        ax2.set_ylim(0, 1)
        ax2.set_ylabel("region avg IoU / recall (train batches)")
        handles += [iou_line, recall_line]
        labels += ["avg IoU", "recall"]
    ax.legend(handles, labels, loc="upper right", fontsize=8)
    last = records[-1] if records else None
    title = "Training loss"
    if last is not None:
        title += f" — iteration {last.iteration}, avg loss {last.avg_loss:.3f}"
    ax.set_title(title)
    fig.tight_layout()
    return figure_png(fig)
