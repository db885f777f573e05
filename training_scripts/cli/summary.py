"""``summary``: the end-of-demo report (see :mod:`training_scripts.summary`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``summary`` to the command parsers."""
    p = sub.add_parser(
        "summary",
        help="held-out mAP of the published model and the edge service's FPS",
        description="Read a published bundle (latest.json → manifest → selection.json) and, with "
        "--edge-url, measure the running edge service; print the demo summary.",
    )
    p.add_argument("--published", type=Path, required=True, help="latest.json written by the publish role")
    p.add_argument("--edge-url", default=None, help="edge service base URL, e.g. http://127.0.0.1:8090")
    p.add_argument("--seconds", type=float, default=10.0, help="how long to count edge frames (default 10)")
    p.add_argument("--json", type=Path, default=None, help="also write the summary as JSON here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the summary (and write JSON)."""
    from edge_image.contract import atomic
    from training_scripts.summary import summarize, to_json

    summary = summarize(args.published, args.edge_url, seconds=args.seconds)
    print(summary.format())
    if args.json is not None:
        atomic.write_text(args.json, to_json(summary))
    return 0
