"""The bundle archive the edge playbook deploys: reproducible, manifest-only, verified first."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from edge_image.contract.errors import UserError
from edge_image.contract.manifest import load_bundle
from tests.edge.helpers import REPO_ROOT
from tests.export.test_manifest import make_bundle
from training_scripts.export.archive import pack_bundle


def test_archive_is_reproducible_and_unpacks_to_a_verified_bundle(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "bundle")
    (bundle / "extra").mkdir()
    (bundle / "extra" / "report.html").write_text("<html/>")  # not in the manifest: stays behind
    first = pack_bundle(bundle, tmp_path / "a.tar.gz")
    time.sleep(1.1)
    (bundle / "model.onnx").touch()  # newer mtime, same bytes
    second = pack_bundle(bundle, tmp_path / "b.tar.gz")
    assert first == second == hashlib.sha256((tmp_path / "a.tar.gz").read_bytes()).hexdigest()
    with tarfile.open(tmp_path / "a.tar.gz") as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == [
            "7", "7/manifest.json", "7/model.bin", "7/model.onnx", "7/model.xml", "7/obj.names",
        ]  # fmt: skip
        assert {m.mtime for m in members} == {0} and {m.uid for m in members} == {0}
        tar.extractall(tmp_path / "out", filter="data")
    unpacked = load_bundle(tmp_path / "out" / "7")
    assert unpacked.classes == ("cat", "dog")


def test_a_bundle_that_does_not_verify_is_not_packed(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "bundle")
    data = bytearray((bundle / "model.bin").read_bytes())
    data[3] ^= 0xFF
    (bundle / "model.bin").write_bytes(bytes(data))
    with pytest.raises(UserError, match=r"model\.bin: sha256 mismatch"):
        pack_bundle(bundle, tmp_path / "x.tar.gz")
    assert not (tmp_path / "x.tar.gz").exists()


def test_pack_cli_prints_the_digest(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "bundle")
    out = tmp_path / "published" / "bundle.tar.gz"
    proc = subprocess.run(
        [sys.executable, "-m", "training_scripts", "pack", "--bundle", str(bundle), "--out", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    digest, path = proc.stdout.split()
    assert path == str(out) and digest == hashlib.sha256(out.read_bytes()).hexdigest()
    shutil.rmtree(bundle)
    proc = subprocess.run(
        [sys.executable, "-m", "training_scripts", "pack", "--bundle", str(bundle), "--out", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert (
        proc.returncode == 2
        and proc.stderr.startswith("error: ")
        and "bundle directory not found" in proc.stderr
    )
