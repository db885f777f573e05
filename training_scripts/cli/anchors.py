"""``python -m training_scripts anchors --data OUT --num 5 --size 416``: k-means anchors.

Clusters the training boxes of a prepared dataset (``OUT/obj.data`` → ``train=`` list →
label files) in grid units (``size / 32``) with a ``1 - IoU`` distance, prints the cfg's
``anchors = ...`` line and the average IoU of these anchors and of the VOC tiny anchors.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edge_image.contract.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``anchors`` command."""
    parser = subparsers.add_parser(
        "anchors", help="k-means anchors for a prepared dataset", description=__doc__
    )
    parser.add_argument("--data", required=True, type=Path, help="prepared dataset dir (or its obj.data)")
    parser.add_argument("--num", type=int, default=5, help="number of anchors (default 5)")
    parser.add_argument(
        "--size", type=int, default=416, help="network input size, multiple of 32 (default 416)"
    )
    parser.add_argument("--seed", type=int, default=0, help="k-means seed (default 0)")
    parser.add_argument("--plot", type=Path, default=None, help="also draw boxes and anchors to this PNG")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Compute and print the anchors."""
    import numpy as np

    from edge_image.contract.decode import VOC_TINY_ANCHORS
    from training_scripts.dataset.anchors import (
        anchors_line,
        avg_iou,
        kmeans_anchors,
        plot_anchors,
        training_box_sizes,
    )

    if args.size < 32 or args.size % 32:
        raise UserError(f"--size must be a positive multiple of 32, got {args.size}")
    if args.num < 1:
        raise UserError(f"--num must be >= 1, got {args.num}")
    data_file = args.data if args.data.is_file() else args.data / "obj.data"
    if not data_file.is_file():
        raise UserError(f"--data {args.data}: no obj.data (run `python -m training_scripts prepare` first)")
    wh = training_box_sizes(data_file, args.size)
    distinct = len(np.unique(wh, axis=0))
    if distinct < args.num:
        raise UserError(
            f"{data_file}: only {distinct} distinct training box sizes, fewer than --num {args.num}"
        )
    anchors, _ = kmeans_anchors(wh, args.num, args.seed)
    rounded = np.round(anchors, 2)
    reference = np.asarray(VOC_TINY_ANCHORS, np.float64).reshape(-1, 2)
    grid = args.size // 32
    print(f"# {len(wh)} training boxes, {grid}x{grid} grid (size {args.size}), {args.num} anchors")
    print(anchors_line(rounded))
    ours, voc = avg_iou(wh, rounded), avg_iou(wh, reference)
    print(f"avg IoU: {ours:.4f} (these anchors), {voc:.4f} (VOC tiny anchors)")
    if args.plot is not None:
        plot_anchors(wh, rounded, reference, args.plot)
        print(f"wrote {args.plot}")
    return 0
