"""Spot interruptions end to end on this machine: a stand-in IMDSv2 endpoint (token PUT, 404 until the
notice, one expired-token 401) and a moto S3 server. The watcher pushes the newest checkpoint and the
metrics within the notice window; a "replacement host" pulls the prefix into an empty directory and
real darknet resumes training from the pushed checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest

from edge_image.contract.errors import UserError
from tests.fixtures.cdk import REGION
from tests.training.test_driver import _cfg, _options
from training_scripts.training.checkpoints import newest_checkpoint
from training_scripts.training.driver import train
from training_scripts.training.history import read_history
from training_scripts.training.spot import NOTICE_FILE, Imds, split_s3_uri, watch

NOTICE = {"action": "terminate", "time": "2026-12-02T23:59:00Z"}


class FakeImds:
    """IMDSv2 on 127.0.0.1: tokens from PUT /latest/api/token; spot/instance-action answers 404 to the
    first ``quiet`` polls (GETs with a valid token), then the notice. After poll ``expire_after`` the
    server forgets every token it issued, so the next GET is a 401 (counted in ``rejected``) and the
    client must fetch a new token."""

    def __init__(self, quiet: int, expire_after: int | None = None) -> None:
        self.quiet, self.expire_after = quiet, expire_after
        self.polls = self.tokens = self.rejected = 0
        self.valid: set[str] = set()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: bytes = b"") -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self) -> None:
                if (
                    self.path != "/latest/api/token"
                    or "X-aws-ec2-metadata-token-ttl-seconds" not in self.headers
                ):
                    self._send(400)
                    return
                fake.tokens += 1
                token = f"token-{fake.tokens}"
                fake.valid.add(token)
                self._send(200, token.encode())

            def do_GET(self) -> None:
                if self.headers.get("X-aws-ec2-metadata-token") not in fake.valid:
                    fake.rejected += 1
                    self._send(401)
                    return
                if self.path != "/latest/meta-data/spot/instance-action":
                    self._send(404)
                    return
                fake.polls += 1
                if fake.polls == fake.expire_after:
                    fake.valid.clear()  # expired: the next GET with this token is a 401
                if fake.polls <= fake.quiet:
                    self._send(404)
                    return
                self._send(200, json.dumps(NOTICE).encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeImds:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def bucket(aws_env: str) -> str:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="edgeyolo-spot-test")
    return "edgeyolo-spot-test"


def _host_a(trained_run, tmp_path: Path) -> Path:
    """A run directory like the training host's: two checkpoints and the metrics."""
    run = tmp_path / "host-a" / "run"
    run.mkdir(parents=True)
    for _, path in trained_run.checkpoints[-2:]:
        shutil.copy(path, run)
    shutil.copy(trained_run.metrics_csv, run)
    (run / "darknet.log").write_text("log\n")
    (run / "run.json").write_text("{}\n")
    return run


def test_notice_pushes_newest_checkpoint_then_metrics(trained_run, bucket: str, tmp_path: Path) -> None:
    run = _host_a(trained_run, tmp_path)
    newest_iter, newest = newest_checkpoint(run)
    s3 = boto3.client("s3", region_name=REGION)
    sleeps: list[float] = []
    with FakeImds(quiet=3, expire_after=1) as imds:
        keys = watch(run, f"s3://{bucket}/checkpoints/run1", imds=Imds(imds.url), s3=s3, sleep=sleeps.append)
    # 3 quiet polls, then the notice; the expired token cost one 401 and one new token, no extra sleep
    assert (imds.polls, imds.rejected, imds.tokens) == (4, 1, 2)
    assert sleeps == [5.0, 5.0, 5.0]
    assert keys == [
        f"checkpoints/run1/{newest.name}",
        "checkpoints/run1/run.json",
        "checkpoints/run1/metrics.csv",
        "checkpoints/run1/darknet.log",
        f"checkpoints/run1/{NOTICE_FILE}",
    ]
    listed = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert listed[keys[0]] == newest.stat().st_size
    assert newest_iter == trained_run.checkpoints[-1][0]
    assert f"checkpoints/run1/{trained_run.checkpoints[-2][1].name}" not in listed  # only the newest
    record = json.loads(s3.get_object(Bucket=bucket, Key=keys[-1])["Body"].read())
    assert record["notice"] == NOTICE


def test_no_notice_pushes_nothing(tmp_path: Path) -> None:
    class NoS3:
        def upload_file(self, *args: object) -> None:
            raise AssertionError("nothing to upload without a notice")

    with FakeImds(quiet=10**6) as imds:
        keys = watch(tmp_path, "s3://b/p", imds=Imds(imds.url), s3=NoS3(), max_polls=3, sleep=lambda _: None)
    assert keys == [] and imds.polls == 3


def test_bad_s3_uri_is_refused() -> None:
    with pytest.raises(UserError, match="expected s3://bucket/prefix"):
        split_s3_uri("bucket/prefix")


def test_replacement_host_resumes_from_the_pushed_checkpoint(
    trained_run, bucket: str, darknet_bin: Path, tmp_path: Path
) -> None:
    """The CLI as the unit runs it pushes on the notice; host B starts empty, pulls the prefix (what the
    training unit's ExecStartPre `aws s3 sync` does) and `train` continues from the pushed iteration."""
    run = _host_a(trained_run, tmp_path)
    last = trained_run.checkpoints[-1][0]
    uri = f"s3://{bucket}/checkpoints/run2"
    with FakeImds(quiet=1) as imds:
        proc = subprocess.run(
            [sys.executable, "-m", "training_scripts", "spot-watch", "--run", str(run), "--s3-uri", uri,
             "--imds", imds.url, "--interval", "0.1", "--region", REGION],
            capture_output=True, text=True, timeout=120, env=os.environ.copy(), check=False,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"notice {json.dumps(NOTICE)}" in proc.stdout and "s left)" in proc.stdout

    host_b = tmp_path / "host-b" / "run"
    host_b.mkdir(parents=True)
    s3 = boto3.client("s3", region_name=REGION)
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix="checkpoints/run2/")["Contents"]:
        s3.download_file(bucket, obj["Key"], str(host_b / Path(obj["Key"]).name))
    assert newest_checkpoint(host_b)[0] == last
    cfg = _cfg(tmp_path, trained_run.data_dir, last + 4)
    result = train(_options(trained_run.data_dir, cfg, host_b, darknet_bin, segment=4))
    assert [i for i, _ in result.checkpoints] == [last, last + 4]
    assert [r.iteration for r in read_history(result.metrics_csv)] == list(range(1, last + 5))
