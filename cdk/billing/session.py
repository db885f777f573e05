"""AWS session set-up with one-line errors: an unknown region or missing credentials are reported
before anything is touched. Endpoint overrides (``AWS_ENDPOINT_URL``) are honoured by botocore."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edge_image.contract.errors import UserError


@dataclass(frozen=True)
class Aws:
    """Clients for one region."""

    region: str
    ec2: Any
    cfn: Any
    s3: Any
    ssm: Any


def connect(region: str) -> Aws:
    """Clients for ``region``; raises UserError for an unknown region or when no credentials exist."""
    import boto3

    session = boto3.session.Session(region_name=region)
    known = set(session.get_available_regions("ec2"))
    for partition in ("aws-us-gov", "aws-cn"):
        known |= set(session.get_available_regions("ec2", partition_name=partition))
    if region not in known:
        raise UserError(f"--region: unknown AWS region {region!r} (e.g. us-east-1, eu-west-1)")
    if session.get_credentials() is None:
        raise UserError(
            "no AWS credentials found: set AWS_PROFILE (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), "
            "or run `aws sso login`"
        )
    return Aws(
        region=region,
        ec2=session.client("ec2"),
        cfn=session.client("cloudformation"),
        s3=session.client("s3"),
        ssm=session.client("ssm"),
    )


def run_cli(main: Callable[[], int]) -> int:
    """Run a CLI body; UserError and AWS errors become one ``error: ...`` line and a non-zero exit."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return main()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except ClientError as exc:
        err = exc.response.get("Error", {})
        print(
            f"error: AWS {exc.operation_name}: {err.get('Code', '?')}: {err.get('Message', '')}",
            file=sys.stderr,
        )
        return 1
    except BotoCoreError as exc:
        print(f"error: AWS: {exc}", file=sys.stderr)
        return 1
