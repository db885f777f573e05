"""roles/publish with publish_target=s3 against a local moto server.

The host uploads the version (bundle files and ``<version>.tar.gz``); the release (``latest.tar.gz``,
``latest.json``) runs on the controller as a copy inside S3, because the training host's role is
denied those keys (tests/cdk: ``TRAINING_HOST_RIGHTS``). With ``publish_release: false`` devices
keep deploying the previous release.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml
from moto.server import ThreadedMotoServer

from tests.ansible.runner import REPO, VENV_BIN, run_playbook
from tests.fixtures.bundle import logo_bundle
from training_scripts.emulation.edge_node import free_port

REGION = "us-east-1"
BUCKET = "edgeyolo-publish-test"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for key, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3", region_name=REGION, endpoint_url=endpoint)
    client.create_bucket(Bucket=BUCKET)
    yield client
    server.stop()


def _publish(tmp_path: Path, bundle: Path, **extra: object):  # type: ignore[no-untyped-def]
    playbook = tmp_path / "publish.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "hosts": "localhost",
                    "connection": "local",
                    "gather_facts": False,
                    "roles": [str(REPO / "roles/publish")],
                }
            ]
        )
    )
    python = str(VENV_BIN / "python")
    variables = {
        "publish_target": "s3",
        "publish_bundle_dir": str(bundle),
        "publish_name": "m",
        "publish_s3_bucket": BUCKET,
        "publish_s3_region": REGION,
        "publish_s3_python": python,
        "publish_python": python,
        "publish_project_dir": str(REPO),
        "ansible_python_interpreter": python,
        **extra,
    }
    return run_playbook(playbook, inventory="localhost,", tmp=tmp_path, extra_vars=variables, timeout=600)


def test_release_is_a_controller_side_copy_and_can_be_held_back(s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first = logo_bundle(tmp_path / "v1", "v1")
    run = _publish(tmp_path, first)
    assert run.returncode == 0, run.output[-4000:]
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert {"models/m/v1/manifest.json", "models/m/v1/obj.names", "models/m/v1.tar.gz"} <= keys
    archive = s3.get_object(Bucket=BUCKET, Key="models/m/v1.tar.gz")["Body"].read()
    latest = s3.get_object(Bucket=BUCKET, Key="models/m/latest.tar.gz")["Body"].read()
    assert latest == archive
    pointer = json.loads(s3.get_object(Bucket=BUCKET, Key="models/m/latest.json")["Body"].read())
    assert pointer["version"] == "v1" and pointer["archive"] == f"s3://{BUCKET}/models/m/v1.tar.gz"
    assert pointer["archive_sha256"] == hashlib.sha256(archive).hexdigest()

    # a version published without the release: uploaded, but latest still names v1
    second = logo_bundle(tmp_path / "v2", "v2")
    run = _publish(tmp_path, second, publish_release=False)
    assert run.returncode == 0, run.output[-4000:]
    assert s3.head_object(Bucket=BUCKET, Key="models/m/v2.tar.gz")["ContentLength"] > 0
    pointer = json.loads(s3.get_object(Bucket=BUCKET, Key="models/m/latest.json")["Body"].read())
    assert pointer["version"] == "v1"
    assert s3.get_object(Bucket=BUCKET, Key="models/m/latest.tar.gz")["Body"].read() == archive
