"""``python -m training_scripts prepare FORMAT --src DIR --out DIR``: import a dataset for darknet.

FORMAT is ``flickr27``, ``voc``, ``coco`` or ``yolo``. Writes ``OUT/images``, ``OUT/labels``,
``obj.names``, ``train.txt``/``valid.txt``/``test.txt`` (+ ``query.txt``), ``obj.data``,
``report.json`` and ``report.png``, atomically. Dropped and clipped items are counted and
printed as warnings; malformed input stops with one ``error:`` line.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``prepare`` command."""
    from training_scripts.dataset.formats import FORMATS, SPLIT_RULES

    parser = subparsers.add_parser(
        "prepare", help="import a dataset into darknet layout", description=__doc__
    )
    parser.add_argument("format", choices=tuple(FORMATS), metavar="FORMAT", help=", ".join(FORMATS))
    parser.add_argument("--src", required=True, type=Path, help="source dataset folder")
    parser.add_argument("--out", required=True, type=Path, help="output folder (replaced atomically)")
    parser.add_argument("--split", default="80,10,10", help="TRAIN,VALID,TEST weights (default 80,10,10)")
    parser.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    parser.add_argument(
        "--split-rule",
        default="stratified",
        choices=SPLIT_RULES,
        help="stratified (default) or seed-subset6 (the seed's leaky Flickr27 rule, for comparison)",
    )
    parser.add_argument(
        "--names", type=Path, default=None, help="allowed class names, one per line (others are an error)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Prepare the dataset and print a summary."""
    from training_scripts.dataset.prepare import prepare_dataset, summary
    from training_scripts.dataset.split import parse_split

    report = prepare_dataset(
        args.format,
        args.src,
        args.out,
        split=parse_split(args.split),
        seed=args.seed,
        rule=args.split_rule,
        names=args.names,
    )
    print(summary(report, args.out.resolve()))
    return 0
