"""``python -m training_scripts evaluate``: mAP of darknet weights on an image list.

Runs the numpy reference forward pass and darknet-style decoding (threshold .005, NMS .45)
on every image of ``--list`` and prints ``detector map``-style lines: per-class AP
(area under the curve and VOC2007 11-point), precision/recall/F1 and TP/FP/FN/average IoU
at ``--thresh``, and mAP@0.5. On the Flickr27 ``query`` list it prints image-level accuracy.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` command."""
    parser = subparsers.add_parser(
        "evaluate", help="mAP / accuracy of weights on a list", description=__doc__
    )
    parser.add_argument("--data", required=True, type=Path, help="prepared dataset dir or its obj.data")
    parser.add_argument("--cfg", required=True, type=Path, help="darknet cfg")
    parser.add_argument("--weights", required=True, type=Path, help="darknet .weights")
    parser.add_argument(
        "--list", default="valid", help="valid, test, query, train, or a list file (default valid)"
    )
    parser.add_argument(
        "--thresh", type=float, default=0.25, help="confidence threshold for P/R/F1 (default .25)"
    )
    parser.add_argument("--iou-thresh", type=float, default=0.5, help="IoU for a true positive (default .5)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate and print; write JSON when asked."""
    import json

    from edge_image.contract.atomic import write_text
    from edge_image.contract.errors import UserError
    from training_scripts.evaluation.evaluate import Evaluator
    from training_scripts.training.data import load_data_config

    if not 0.0 < args.thresh < 1.0:
        raise UserError(f"--thresh must be between 0 and 1, got {args.thresh}")
    if not 0.0 < args.iou_thresh < 1.0:
        raise UserError(f"--iou-thresh must be between 0 and 1, got {args.iou_thresh}")
    evaluator = Evaluator(load_data_config(args.data), args.cfg, args.list)
    result = evaluator.run(args.weights, conf_thresh=args.thresh, iou_thresh=args.iou_thresh)
    print(result.format())
    if args.json is not None:
        write_text(args.json, json.dumps(result.to_dict(), indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0
