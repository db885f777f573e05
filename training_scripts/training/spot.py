"""Spot interruptions: watch IMDSv2 for the 2-minute notice and push the run's newest state to S3.

EC2 publishes ``latest/meta-data/spot/instance-action`` (HTTP 404 until a notice exists, then JSON
``{"action": "stop"|"terminate"|"hibernate", "time": "..."}``) about two minutes before it stops or
terminates a spot instance. :func:`watch` polls it with an IMDSv2 session token; on a notice it uploads,
newest first, what a replacement host needs to resume (the newest checkpoint, then ``metrics.csv``,
``darknet.log``, ``loss.png`` and ``run.json``) plus a ``spot-notice.json`` record, to the run's S3
prefix, and returns. The training unit's ``ExecStartPre`` pulls that prefix on the replacement host,
and ``train`` resumes from the newest checkpoint there.

Inputs: the run (= backup) directory, ``s3://bucket/prefix``, an IMDS base URL. Output: the list of
uploaded keys (and one line per upload on stdout, with the time left before the deadline).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_image.contract.errors import UserError
from training_scripts.training.checkpoints import newest_checkpoint

IMDS_URL = "http://169.254.169.254"
TOKEN_TTL_SECONDS = 21600
NOTICE_PATH = "/latest/meta-data/spot/instance-action"
# After the checkpoint: what the status page, selection and resume read, smallest first.
METRICS_FILES = ("run.json", "metrics.csv", "loss.png", "darknet.log")
NOTICE_FILE = "spot-notice.json"
NOTICE_WINDOW_SECONDS = 120


@dataclass
class Imds:
    """A minimal IMDSv2 client: a session token (PUT), then GETs with it; a 401 renews the token."""

    base_url: str = IMDS_URL
    timeout: float = 2.0
    _token: str | None = None

    def _request(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        req = urllib.request.Request(self.base_url.rstrip("/") + path, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, b""

    def token(self) -> str:
        if self._token is None:
            status, body = self._request(
                "PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)}
            )
            if status != 200:
                raise UserError(f"{self.base_url}: IMDSv2 token request answered HTTP {status}")
            self._token = body.decode()
        return self._token

    def instance_action(self) -> dict[str, Any] | None:
        """The spot notice, or None while there is none (404)."""
        for _ in range(2):
            status, body = self._request("GET", NOTICE_PATH, {"X-aws-ec2-metadata-token": self.token()})
            if status == 401:  # token expired
                self._token = None
                continue
            if status == 404:
                return None
            if status != 200:
                raise UserError(f"{self.base_url}{NOTICE_PATH}: HTTP {status}")
            try:
                return json.loads(body)
            except json.JSONDecodeError:
                raise UserError(f"{self.base_url}{NOTICE_PATH}: not JSON: {body[:80]!r}") from None
        raise UserError(f"{self.base_url}{NOTICE_PATH}: HTTP 401 with a fresh token")


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> ("bucket", "a/b").

    >>> split_s3_uri("s3://b/checkpoints/run1/")
    ('b', 'checkpoints/run1')
    """
    if not uri.startswith("s3://") or len(uri) <= 5:
        raise UserError(f"{uri!r}: expected s3://bucket/prefix")
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix.strip("/")


def files_to_push(run_dir: Path) -> list[Path]:
    """Newest checkpoint first, then the metrics files that exist (what a replacement resumes from)."""
    files = []
    newest = newest_checkpoint(run_dir)
    if newest is not None:
        files.append(newest[1])
    files += [run_dir / name for name in METRICS_FILES if (run_dir / name).is_file()]
    return files


def push(
    run_dir: Path, s3_uri: str, s3: Any, notice: dict[str, Any], *, clock: Callable[[], float]
) -> list[str]:
    """Upload :func:`files_to_push` and the notice record under the run's S3 prefix; returns the keys."""
    bucket, prefix = split_s3_uri(s3_uri)
    started = clock()
    record = run_dir / NOTICE_FILE
    record.write_text(
        json.dumps({"notice": notice, "pushed_at": time.strftime("%FT%TZ", time.gmtime())}) + "\n"
    )
    keys = []
    for path in [*files_to_push(run_dir), record]:
        key = f"{prefix}/{path.name}" if prefix else path.name
        s3.upload_file(str(path), bucket, key)
        keys.append(key)
        left = NOTICE_WINDOW_SECONDS - (clock() - started)
        print(
            f"spot-watch: uploaded s3://{bucket}/{key} ({path.stat().st_size} bytes, {left:.0f} s left)",
            flush=True,
        )
    return keys


def watch(
    run_dir: Path,
    s3_uri: str,
    *,
    imds: Imds,
    s3: Any,
    interval: float = 5.0,
    max_polls: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[str]:
    """Poll until a notice appears (or ``max_polls`` polls), then :func:`push`; returns the keys
    (empty when no notice came). IMDS errors while polling are retried at the next poll."""
    polls = 0
    while max_polls is None or polls < max_polls:
        polls += 1
        try:
            notice = imds.instance_action()
        except (UserError, OSError) as exc:
            print(f"spot-watch: {exc}; retrying", flush=True)
            notice = None
        if notice is not None:
            print(f"spot-watch: notice {json.dumps(notice)}: pushing {run_dir} to {s3_uri}", flush=True)
            return push(run_dir, s3_uri, s3, notice, clock=clock)
        sleep(interval)
    return []
