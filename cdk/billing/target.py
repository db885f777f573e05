"""Which deployment a tool acts on: cdk.json context plus --project/--stage/--region."""

from __future__ import annotations

import argparse
from pathlib import Path

from cdk.edgeyolo_cdk.config import DeployConfig, load_cdk_json, parse_context

REPO = Path(__file__).resolve().parents[2]


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """--project/--stage/--region/--cdk-json, shared with ``status``."""
    parser.add_argument("--cdk-json", type=Path, default=REPO / "cdk.json", help="defaults come from here")
    parser.add_argument("--project", help="Project tag (default: cdk.json context `project`)")
    parser.add_argument("--stage", help="Stage tag / stack infix (default: cdk.json context `stage`)")
    parser.add_argument("--region", help="AWS region (default: cdk.json context `region`)")


def target_config(args: argparse.Namespace) -> DeployConfig:
    """cdk.json context with --project/--stage/--region applied, validated like `cdk synth` does."""
    context = load_cdk_json(args.cdk_json)
    overrides = {"project": args.project, "stage": args.stage, "region": args.region}
    given = {k: v for k, v in overrides.items() if v is not None}
    context.update(given)
    source = f"{args.cdk_json.name} context + command line" if given else f"{args.cdk_json.name} context"
    return parse_context(context, source=source)
