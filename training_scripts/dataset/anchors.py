"""Anchor boxes for YOLOv2's region layer by k-means with a ``1 - IoU`` distance.

Boxes are compared by width and height only (as if sharing a centre), the YOLOv2 paper's
dimension clustering. Widths/heights are in grid units (pixels / 32 for Tiny-YOLOv2), the
unit of the cfg's ``anchors =`` line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edge_image.contract.errors import UserError
from training_scripts.dataset.darknet_layout import label_path_for, read_data_file, read_labels, read_list

STRIDE = 32


def iou_wh(wh: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """IoU of every box with every anchor, both ``(w, h)`` sharing a centre: ``(N, K)``.

    >>> iou_wh(np.array([[2.0, 2.0]]), np.array([[2.0, 2.0], [1.0, 4.0]])).round(3).tolist()
    [[1.0, 0.333]]
    """
    wh = np.asarray(wh, np.float64).reshape(-1, 2)
    anchors = np.asarray(anchors, np.float64).reshape(-1, 2)
    inter = np.minimum(wh[:, None, 0], anchors[None, :, 0]) * np.minimum(wh[:, None, 1], anchors[None, :, 1])
    union = (wh[:, 0] * wh[:, 1])[:, None] + (anchors[:, 0] * anchors[:, 1])[None, :] - inter
    return inter / union


def avg_iou(wh: np.ndarray, anchors: np.ndarray | Sequence[float]) -> float:
    """Mean over boxes of the best IoU with any anchor (``anchors`` as ``(K, 2)`` or flat pairs).

    >>> avg_iou(np.array([[1.0, 1.0], [2.0, 2.0]]), [1.0, 1.0, 2.0, 2.0])
    1.0
    """
    boxes = np.asarray(wh, np.float64).reshape(-1, 2)
    if boxes.size == 0:
        raise ValueError("avg_iou needs at least one box")
    return float(iou_wh(boxes, np.asarray(anchors, np.float64).reshape(-1, 2)).max(axis=1).mean())


def _kmeans_pp(wh: np.ndarray, num: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding with ``1 - IoU`` distance."""
    centres = [wh[int(rng.integers(len(wh)))]]
    for _ in range(1, num):
        d = 1.0 - iou_wh(wh, np.asarray(centres)).max(axis=1)
        weights = d**2
        total = weights.sum()
        index = int(rng.choice(len(wh), p=weights / total)) if total > 0 else int(rng.integers(len(wh)))
        centres.append(wh[index])
    return np.asarray(centres, np.float64)


def _lloyd(wh: np.ndarray, centres: np.ndarray, max_iter: int) -> np.ndarray:
    """Assign to the highest-IoU centre, move centres to their members' mean, until stable."""
    assign = np.full(len(wh), -1)
    for _ in range(max_iter):
        iou = iou_wh(wh, centres)
        new = iou.argmax(axis=1)
        if np.array_equal(new, assign):
            break
        assign = new
        for k in range(len(centres)):
            members = wh[assign == k]
            if len(members):
                centres[k] = members.mean(axis=0)
            else:  # empty cluster: take the worst-fitting box
                centres[k] = wh[int(iou.max(axis=1).argmin())]
    return centres


def kmeans_anchors(
    wh: np.ndarray, num: int, seed: int, restarts: int = 5, max_iter: int = 300
) -> tuple[np.ndarray, float]:
    """Cluster box sizes ``wh`` ``(N, 2)`` into ``num`` anchors; return ``(anchors, avg_iou)``.

    Anchors are ``(num, 2)`` sorted by area. Seeded k-means++ initialisation, ``restarts``
    runs, the one with the highest average IoU wins. Deterministic for the same inputs.

    >>> wh = np.array([[1, 1]] * 5 + [[4, 2]] * 5, np.float64)
    >>> anchors, score = kmeans_anchors(wh, 2, seed=0)
    >>> anchors.tolist(), score
    ([[1.0, 1.0], [4.0, 2.0]], 1.0)
    """
    boxes = np.asarray(wh, np.float64).reshape(-1, 2)
    if num < 1:
        raise ValueError(f"num must be >= 1, got {num}")
    if not np.all(boxes > 0):
        raise ValueError("box widths and heights must be positive")
    if len(np.unique(boxes, axis=0)) < num:
        raise ValueError(f"need at least {num} distinct box sizes, got {len(np.unique(boxes, axis=0))}")
    rng = np.random.default_rng(seed)
    best: tuple[np.ndarray, float] | None = None
    for _ in range(restarts):
        centres = _lloyd(boxes, _kmeans_pp(boxes, num, rng), max_iter)
        score = avg_iou(boxes, centres)
        if best is None or score > best[1] + 1e-12:
            best = (centres, score)
    assert best is not None
    anchors = best[0][np.argsort(best[0][:, 0] * best[0][:, 1], kind="stable")]
    return anchors, best[1]


def training_box_sizes(data_file: Path, size: int) -> np.ndarray:
    """Box ``(w, h)`` in grid units (``size / 32`` cells) of every box in the training list."""
    data = read_data_file(data_file)
    if "train" not in data:
        raise UserError(f"{data_file}: no 'train=' line")
    rows = [read_labels(label_path_for(image))[:, 3:5] for image in read_list(data["train"])]
    wh = np.concatenate(rows) if rows else np.zeros((0, 2))
    wh = wh[(wh > 0).all(axis=1)]
    return wh * (size / STRIDE)


def anchors_line(anchors: np.ndarray, decimals: int = 2) -> str:
    """The cfg line ``anchors = w1,h1, w2,h2, ...``.

    >>> anchors_line(np.array([[1.08, 1.19], [3.42, 4.41]]))
    'anchors = 1.08,1.19, 3.42,4.41'
    """
    return "anchors = " + ", ".join(f"{w:.{decimals}f},{h:.{decimals}f}" for w, h in anchors)


def plot_anchors(wh: np.ndarray, anchors: np.ndarray, reference: np.ndarray, path: Path) -> None:
    """Scatter the box sizes with the new anchors and the reference anchors to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 6))
    ax.scatter(wh[:, 0], wh[:, 1], s=5, alpha=0.4, label=f"training boxes ({len(wh)})")
    ax.scatter(anchors[:, 0], anchors[:, 1], s=80, marker="x", color="tab:red", label="k-means anchors")
    ax.scatter(
        reference[:, 0], reference[:, 1], s=60, marker="+", color="tab:green", label="VOC tiny anchors"
    )
    ax.set(xlabel="width (grid cells)", ylabel="height (grid cells)", title="Anchor boxes")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80, metadata={"Software": None})
    plt.close(fig)
