"""The published layout and latest.json (training_scripts.published), the one place roles/publish
and summary take them from."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge_image.contract.errors import UserError
from training_scripts.published import LatestPointer, PublishedLayout

REPO = Path(__file__).resolve().parents[2]


def test_layout_local_and_s3() -> None:
    local = PublishedLayout("/srv/published/", "m", "2026.12.04-1").to_dict()
    assert local == {
        "model_dir": "/srv/published/m",
        "version_dir": "/srv/published/m/2026.12.04-1",
        "extra_dir": "/srv/published/m/2026.12.04-1/extra",
        "archive": "/srv/published/m/2026.12.04-1.tar.gz",
        "latest_archive": "/srv/published/m/latest.tar.gz",
        "latest_json": "/srv/published/m/latest.json",
    }
    s3 = PublishedLayout("s3://bucket/models", "m", "v1").to_dict()
    assert s3["archive"] == "s3://bucket/models/m/v1.tar.gz" and s3["archive_key"] == "models/m/v1.tar.gz"
    assert s3["extra_dir_key"] == "models/m/v1/extra" and s3["latest_json_key"] == "models/m/latest.json"
    with pytest.raises(UserError, match=r"version '\.\./x' must be one path segment"):
        PublishedLayout("/srv", "m", "../x")


def test_pointer_round_trip_and_errors(tmp_path: Path) -> None:
    pointer = PublishedLayout("/srv", "m", "v1").pointer(manifest_sha256="a" * 64, archive_sha256="b" * 64)
    path = tmp_path / "latest.json"
    path.write_text(pointer.to_json())
    assert LatestPointer.read(path) == pointer
    assert list(json.loads(path.read_text())) == sorted(json.loads(path.read_text()))  # sorted keys
    path.write_text(json.dumps({"path": "/srv/m/v1"}))
    with pytest.raises(
        UserError,
        match=r"latest\.json: name: is required \(not a latest\.json: was it written by publish\?\)$",
    ):
        LatestPointer.read(path)
    path.write_text(json.dumps({**json.loads(pointer.to_json()), "version": ""}))
    with pytest.raises(UserError, match=r"latest\.json: version: must be a non-empty string, got ''$"):
        LatestPointer.read(path)
    with pytest.raises(UserError, match=r"published latest\.json not found"):
        LatestPointer.read(tmp_path / "none.json")


def test_the_command_the_publish_role_calls() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "training_scripts", "publish-layout", "--root", "s3://b/models", "--name", "m",
         "--version", "v1", "--manifest-sha256", "a" * 64, "--archive-sha256", "b" * 64],
        capture_output=True, text=True, check=True, cwd=REPO,
    ).stdout  # fmt: skip
    doc = json.loads(out)
    assert doc["layout"]["version_dir_key"] == "models/m/v1"
    latest = LatestPointer.from_dict(json.loads(doc["latest"]), where="stdout")
    assert latest.archive == "s3://b/models/m/v1.tar.gz" and doc["latest"] == latest.to_json()
