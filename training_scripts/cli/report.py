"""``python -m training_scripts report``: write ``report.html``, a self-contained model card.

Shows data set statistics (``report.json`` of the data set), anchors, the cfg's layer
table and GFLOPs, the loss curve, mAP by checkpoint, per-class AP bars, PR curves and
sample test images with the selected model's detections drawn (pictures embedded).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` command."""
    parser = subparsers.add_parser("report", help="write report.html (model card)", description=__doc__)
    parser.add_argument("--data", required=True, type=Path, help="prepared dataset dir or its obj.data")
    parser.add_argument("--selection", required=True, type=Path, help="selection.json from `select`")
    parser.add_argument("--out", required=True, type=Path, help="HTML file to write")
    parser.add_argument("--samples", type=int, default=8, help="test images to draw (default 8)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Render and write the report."""
    from edge_image.contract.errors import UserError
    from training_scripts.report.render import write_report

    if args.samples < 0:
        raise UserError(f"--samples must be >= 0, got {args.samples}")
    path = write_report(args.data, args.selection, args.out, samples=args.samples)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0
