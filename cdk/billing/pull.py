"""Copy the newest checkpoints and bundles from the training host to S3 before it is deleted.

The host runs ``aws s3 sync`` itself (SSM Run Command, AWS-RunShellScript): its instance role can
write the artifact bucket and nothing has to be opened. The defaults mirror the train role's periodic
sync (roles/train: run dirs ``/var/lib/edgeyolo/train/runs/<id>`` -> ``s3://<bucket>/checkpoints/<id>``,
with each run's exported ``bundle/`` inside), so this is that sync's last round.

>>> build_sync_commands("b", "/var/lib/edgeyolo/train/runs", "checkpoints")[-1]
'"$AWS" s3 sync /var/lib/edgeyolo/train/runs s3://b/checkpoints --only-show-errors'
"""

from __future__ import annotations

import shlex
import sys
import time
from typing import Any

from edge_image.contract.errors import UserError

DEFAULT_HOST_DIR = "/var/lib/edgeyolo/train/runs"
DEFAULT_PREFIX = "checkpoints"
DOCUMENT = "AWS-RunShellScript"
FINAL_STATES = {"Success", "Failed", "Cancelled", "TimedOut"}


def build_sync_commands(bucket: str, host_dir: str, prefix: str) -> list[str]:
    """Shell lines for the host: strict mode, find the AWS CLI, fail if ``host_dir`` is missing, sync."""
    if not host_dir.startswith("/"):
        raise UserError(f"--pull-dir: {host_dir!r} is not an absolute path on the host")
    prefix = prefix.strip("/")
    if not prefix:
        raise UserError("--pull-prefix: must not be empty (it would sync into the bucket's root)")
    quoted = shlex.quote(host_dir)
    return [
        "set -eu",
        # The train role installs the CLI at /usr/local/bin/aws; the DLAMI may have one on PATH.
        'AWS="$(command -v aws || echo /usr/local/bin/aws)"',
        f"test -d {quoted} || {{ echo 'missing on the host: {host_dir}' >&2; exit 3; }}",
        f'"$AWS" s3 sync {quoted} {shlex.quote(f"s3://{bucket}/{prefix}")} --only-show-errors',
    ]


def pull_to_s3(ssm: Any, instance_id: str, commands: list[str], timeout: float) -> str:
    """Run ``commands`` on the host through SSM and wait; returns the command's standard output.

    Raises UserError when the command does not succeed (the caller then deletes nothing)."""
    response = ssm.send_command(
        InstanceIds=[instance_id],
        DocumentName=DOCUMENT,
        Comment="edgeyolo teardown: sync checkpoints and bundles to S3",
        Parameters={"commands": commands, "executionTimeout": [str(int(timeout))]},
        TimeoutSeconds=max(30, int(timeout)),
    )
    command_id = response["Command"]["CommandId"]
    start = time.monotonic()
    while True:
        try:
            result = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
        except ssm.exceptions.InvocationDoesNotExist:
            result = {"Status": "Pending"}
        status = result["Status"]
        elapsed = time.monotonic() - start
        if status in FINAL_STATES:
            break
        if elapsed > timeout:
            raise UserError(
                f"sync on {instance_id} still {status} after {timeout:.0f} s; nothing was deleted"
            )
        print(
            f"  syncing on {instance_id}: {status}, {elapsed:.0f} s / up to {timeout:.0f} s", file=sys.stderr
        )
        time.sleep(3)
    if status != "Success":
        last = (result.get("StandardErrorContent") or "").strip().splitlines()[-1:] or [status]
        raise UserError(f"sync on {instance_id} ended {status}: {last[0]}; nothing was deleted")
    return result.get("StandardOutputContent", "")
