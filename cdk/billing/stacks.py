"""CloudFormation look-ups and deletion for the two stacks (names from cdk.edgeyolo_cdk.config)."""

from __future__ import annotations

import sys
import time
from typing import Any


def describe_stack(cfn: Any, name: str) -> dict[str, Any] | None:
    """The stack's description, or None when it does not exist (or is fully deleted)."""
    from botocore.exceptions import ClientError

    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in exc.response.get("Error", {}).get("Message", ""):
            return None
        raise
    live = [s for s in stacks if s["StackStatus"] != "DELETE_COMPLETE"]
    return live[0] if live else None


def outputs(stack: dict[str, Any] | None) -> dict[str, str]:
    """OutputKey -> OutputValue ({} for no stack)."""
    return {o["OutputKey"]: o["OutputValue"] for o in (stack or {}).get("Outputs", [])}


def physical_ids(cfn: Any, name: str, resource_type: str) -> list[str]:
    """Physical ids of the stack's resources of ``resource_type`` (e.g. "AWS::S3::Bucket")."""
    found = []
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=name):
        for res in page["StackResourceSummaries"]:
            if res["ResourceType"] == resource_type and res.get("PhysicalResourceId"):
                found.append(res["PhysicalResourceId"])
    return found


def delete_stack(cfn: Any, name: str, timeout: float) -> str | None:
    """Delete the stack and wait; returns None when it is gone, else a one-line reason."""
    from botocore.exceptions import ClientError

    try:
        cfn.delete_stack(StackName=name)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        return f"{name}: DeleteStack refused: {error.get('Code', '?')}: {error.get('Message', '')}"
    start = time.monotonic()
    while True:
        stack = describe_stack(cfn, name)
        elapsed = time.monotonic() - start
        if stack is None:
            print(f"  {name}: deleted ({elapsed:.0f} s)", file=sys.stderr)
            return None
        status = stack["StackStatus"]
        if status == "DELETE_FAILED":
            return f"{name}: DELETE_FAILED: {stack.get('StackStatusReason', 'no reason given')}"
        if elapsed > timeout:
            return f"{name}: still {status} after {timeout:.0f} s"
        print(f"  {name}: {status}, {elapsed:.0f} s / up to {timeout:.0f} s", file=sys.stderr)
        time.sleep(min(2 + elapsed / 10, 15))
