"""``python -m training_scripts partial``: keep the first N layers of a weights file.

Same output as ``darknet partial CFG WEIGHTS OUT N``: header 0.2.0 with ``seen`` reset to
0, then the parameters of the conv layers whose index is below N (N counts every layer,
maxpools included: 13 keeps yolov2-tiny's first seven convolutions).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``partial`` command."""
    parser = subparsers.add_parser(
        "partial", help="truncate weights to the first N layers", description=__doc__
    )
    parser.add_argument("--cfg", required=True, type=Path, help="cfg the weights belong to")
    parser.add_argument("--weights", required=True, type=Path, help="input .weights")
    parser.add_argument("--out", required=True, type=Path, help="output .weights")
    parser.add_argument("--layers", required=True, type=int, help="keep layers with index < N")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read, truncate, write atomically."""
    from training_scripts.darknet.cfg import parse_cfg
    from training_scripts.darknet.weights import partial, read_weights, write_weights

    sections = parse_cfg(args.cfg)
    weights = read_weights(args.weights, sections)
    out = partial(weights, args.layers)
    write_weights(args.out, out)
    kept = [layer.layer for layer in out.layers]
    print(
        f"wrote {args.out}: {len(kept)} of {len(weights.layers)} conv layers "
        f"(indices {kept[0] if kept else '-'}..{kept[-1] if kept else '-'}), "
        f"{len(out.to_bytes())} bytes, seen reset to 0"
    )
    return 0
