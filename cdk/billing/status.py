"""``make status``: what the project has in a region, since when, and what it costs per hour.

    python -m cdk.billing.status [--stage dev] [--region us-east-1] [--all-stages]

Lists the two stacks, then every tagged billable resource (instances, volumes, snapshots, Elastic
IPs, spot requests, network interfaces) with its state, start time, age and $/h from
``cdk.billing.prices`` (date and source printed underneath). A stopped instance costs $0/h; its disk
still bills.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone

from cdk.billing.prices import price_note
from cdk.billing.session import connect, run_cli
from cdk.billing.stacks import describe_stack, outputs
from cdk.billing.sweep import Leftover, find_leftovers
from cdk.billing.table import render_table
from cdk.billing.target import add_target_arguments, target_config
from cdk.edgeyolo_cdk.config import OUTPUT_BUCKET_NAME, TAG_PROJECT


def age(since: datetime | None, now: datetime) -> str:
    """Human age like "2 d 03:15" or "00:42" (hours:minutes).

    >>> age(datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 1, 3, 3, 15, tzinfo=timezone.utc))
    '2 d 03:15'
    """
    if since is None:
        return ""
    minutes = max(0, int((now - since).total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    text = f"{rest // 60:02d}:{rest % 60:02d}"
    return f"{days} d {text}" if days else text


def status_rows(items: list[Leftover], now: datetime) -> list[list[str]]:
    """Table rows: kind, id, state, since, age, detail, $/h."""
    rows = []
    for item in items:
        since = item.since.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if item.since else ""
        cost = "n/a" if item.usd_per_hour is None else f"{item.usd_per_hour:.4f}"
        rows.append([item.kind, item.id, item.state, since, age(item.since, now), item.detail, cost])
    return rows


def status(args: argparse.Namespace) -> int:
    config = target_config(args)
    aws = connect(config.region)
    tags = {TAG_PROJECT: config.project} if args.all_stages else config.tags
    print(f"{config.stack_prefix} in {config.region}")
    for name in (config.artifacts_stack_name, config.training_stack_name):
        stack = describe_stack(aws.cfn, name)
        state = "absent" if stack is None else stack["StackStatus"]
        extra = (
            f" (bucket {outputs(stack).get(OUTPUT_BUCKET_NAME, '?')})"
            if stack and name.endswith("Artifacts")
            else ""
        )
        print(f"  stack {name}: {state}{extra}")
    items = find_leftovers(aws.ec2, tags)
    now = datetime.now(timezone.utc)
    if items:
        print(render_table(["kind", "id", "state", "since", "age", "detail", "$/h"], status_rows(items, now)))
    else:
        print("nothing billable is tagged " + ", ".join(f"{k}={v}" for k, v in tags.items()))
    total = sum(x.usd_per_hour or 0.0 for x in items)
    unknown = [x.id for x in items if x.usd_per_hour is None]
    print(f"estimated total: ${total:.2f}/h" + (f" (+ unpriced: {', '.join(unknown)})" if unknown else ""))
    print(f"{price_note()}; S3 storage not included")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cdk.billing.status", description="What runs, since when, and its hourly cost."
    )
    add_target_arguments(parser)
    parser.add_argument("--all-stages", action="store_true", help="every stage of the project")
    args = parser.parse_args(argv)
    return run_cli(lambda: status(args))


if __name__ == "__main__":
    sys.exit(main())
