"""``spot-watch``: on a spot instance's 2-minute notice, push the run's newest state to S3
(:mod:`training_scripts.training.spot`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``spot-watch`` to the command parsers."""
    p = sub.add_parser(
        "spot-watch",
        help="watch IMDSv2 for the spot interruption notice; then upload the newest checkpoint and metrics",
        description="Poll the instance metadata service's spot/instance-action every INTERVAL seconds; on a "
        "notice upload RUN's newest checkpoint, metrics.csv, darknet.log, loss.png, run.json and "
        "spot-notice.json to S3_URI, then exit 0.",
    )
    p.add_argument("--run", type=Path, required=True, help="the training run (= backup) directory")
    p.add_argument("--s3-uri", required=True, help="s3://bucket/prefix of this run (the sync units' target)")
    p.add_argument("--imds", default=None, help="instance metadata base URL (default: EC2's link-local one)")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between polls (default 5)")
    p.add_argument("--region", default=None, help="S3 region (default: boto3's, e.g. AWS_DEFAULT_REGION)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Watch, push on a notice; exit 0 after the push."""
    import boto3

    from training_scripts.training.spot import IMDS_URL, Imds, split_s3_uri, watch

    split_s3_uri(args.s3_uri)  # a bad URI is an error now, not two minutes before the stop
    s3 = boto3.client("s3", region_name=args.region)
    watch(args.run, args.s3_uri, imds=Imds(args.imds or IMDS_URL), s3=s3, interval=args.interval)
    return 0
