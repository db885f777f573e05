"""roles/publish with publish_target=s3 against a local moto server.

The host uploads the version (bundle files and ``<version>.tar.gz``); the release (``latest.tar.gz``,
``latest.json``) runs on the controller as a copy inside S3, because the training host's role is
denied those keys (tests/cdk: ``TRAINING_HOST_RIGHTS``). With ``publish_release: false`` devices
keep deploying the previous release.
"""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml
from moto.server import ThreadedMotoServer

from tests.ansible.runner import REPO, VENV_BIN, run_playbook
from tests.fixtures.bundle import logo_bundle
from training_scripts.emulation.edge_node import free_port
from training_scripts.published import LatestPointer, PublishedLayout

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
    # moto's backends are process-wide: start each test with an empty account
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10)
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
    # the role writes exactly what training_scripts.published says, layout and text
    text = s3.get_object(Bucket=BUCKET, Key="models/m/latest.json")["Body"].read().decode()
    assert text == LatestPointer.from_dict(pointer, where="latest.json").to_json()
    assert pointer["path"] == PublishedLayout(f"s3://{BUCKET}/models", "m", "v1").version_dir

    # a version published without the release: uploaded, but latest still names v1
    second = logo_bundle(tmp_path / "v2", "v2")
    run = _publish(tmp_path, second, publish_release=False)
    assert run.returncode == 0, run.output[-4000:]
    assert s3.head_object(Bucket=BUCKET, Key="models/m/v2.tar.gz")["ContentLength"] > 0
    pointer = json.loads(s3.get_object(Bucket=BUCKET, Key="models/m/latest.json")["Body"].read())
    assert pointer["version"] == "v1"
    assert s3.get_object(Bucket=BUCKET, Key="models/m/latest.tar.gz")["Body"].read() == archive


def _pointer_reader(client, stop: threading.Event, seen: list[tuple[str, bool]]) -> None:  # type: ignore[no-untyped-def]
    """Follow latest.json the way a device would, as often as it can, while a publish runs:
    record each version seen and whether the archive it names has the sha256 it promises."""
    while not stop.is_set():
        try:
            pointer = json.loads(client.get_object(Bucket=BUCKET, Key="models/m/latest.json")["Body"].read())
        except client.exceptions.NoSuchKey:
            continue
        key = pointer["archive"].removeprefix(f"s3://{BUCKET}/")
        try:
            body = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        except client.exceptions.NoSuchKey:
            seen.append((pointer["version"], False))
            continue
        seen.append((pointer["version"], hashlib.sha256(body).hexdigest() == pointer["archive_sha256"]))


def test_pointer_comes_last_and_versions_are_immutable(s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = _publish(tmp_path, logo_bundle(tmp_path / "v1", "v1"))
    assert run.returncode == 0, run.output[-4000:]
    v1 = s3.get_object(Bucket=BUCKET, Key="models/m/v1.tar.gz")["Body"].read()
    assert s3.head_object(Bucket=BUCKET, Key="models/m/v1.tar.gz")["Metadata"]["sha256"] == (
        hashlib.sha256(v1).hexdigest()
    )

    # a reader polls the pointer through the whole release of v2: it sees v1, then v2, and never
    # a pointer whose archive is missing or differs from the sha256 it names
    seen: list[tuple[str, bool]] = []
    stop = threading.Event()
    reader = threading.Thread(target=_pointer_reader, args=(s3, stop, seen), daemon=True)
    reader.start()
    run = _publish(tmp_path, logo_bundle(tmp_path / "v2", "v2"))
    stop.set()
    reader.join(timeout=30)
    assert run.returncode == 0, run.output[-4000:]
    versions = [version for version, _ in seen]
    assert versions[0] == "v1" and versions[-1] == "v2" and len(seen) > 20, versions[:3]
    assert all(ok for _, ok in seen), [s for s in seen if not s[1]][:3]

    # the same version again with other content is refused before anything is uploaded
    other = logo_bundle(tmp_path / "other" / "v1", "v1", onnx=True)
    run = _publish(tmp_path, other)
    assert run.returncode != 0
    assert "models/m/v1.tar.gz is already published with other content" in run.output
    assert "versions are immutable" in run.output
    assert s3.get_object(Bucket=BUCKET, Key="models/m/v1.tar.gz")["Body"].read() == v1
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert "models/m/v1/model.onnx" not in keys
    pointer = json.loads(s3.get_object(Bucket=BUCKET, Key="models/m/latest.json")["Body"].read())
    assert pointer["version"] == "v2"
    # the same content again is a no-op that succeeds
    run = _publish(tmp_path, tmp_path / "v1", publish_release=False)
    assert run.returncode == 0, run.output[-4000:]


def test_local_target_uses_the_same_layout(tmp_path: Path) -> None:
    """publish_target=local: the same layout (training_scripts.published) under a directory."""
    root = tmp_path / "published"
    local = {"publish_target": "local", "publish_local_dir": str(root)}
    run = _publish(tmp_path, logo_bundle(tmp_path / "v1", "v1"), **local)
    assert run.returncode == 0, run.output[-4000:]
    layout = PublishedLayout(str(root), "m", "v1")
    pointer = LatestPointer.read(layout.latest_json)
    assert pointer.path == layout.version_dir and pointer.archive == layout.archive
    assert Path(layout.archive).read_bytes() == Path(layout.latest_archive).read_bytes()
    assert hashlib.sha256(Path(layout.archive).read_bytes()).hexdigest() == pointer.archive_sha256
    assert (Path(layout.version_dir) / "manifest.json").is_file() and Path(layout.extra_dir).is_dir()
    again = _publish(tmp_path, tmp_path / "v1", **local)
    assert again.returncode == 0 and again.counts("localhost")["changed"] == 0, again.changed_tasks()
