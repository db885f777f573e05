"""``s3-pull``: bring a training run's S3 prefix into its run directory, never older over newer and
never ``run.json`` (:mod:`training_scripts.training.s3pull`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``s3-pull`` to the command parsers."""
    p = sub.add_parser(
        "s3-pull",
        help="pull a run's checkpoints from S3 before training starts (missing or older local files only)",
        description="Download the objects under S3_URI into RUN where the local file is missing or older "
        "than the object; run.json (the command the training unit executes) is never pulled, and keys "
        "that would leave RUN or follow a symlink are refused. Prints one line per download and a summary.",
    )
    p.add_argument("--run", type=Path, required=True, help="the training run (= backup) directory")
    p.add_argument("--s3-uri", required=True, help="s3://bucket/prefix of this run (the sync units' target)")
    p.add_argument("--region", default=None, help="S3 region (default: boto3's, e.g. AWS_DEFAULT_REGION)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Pull; exit 0 (refused keys are reported, not fatal: the run resumes from what is safe)."""
    import boto3

    from training_scripts.training.s3pull import pull

    result = pull(boto3.client("s3", region_name=args.region), args.s3_uri, args.run)
    print(f"s3-pull: {result.line()}")
    return 0
