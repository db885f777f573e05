"""edge_image.bundle_check: crafted bundles refused before anything of them is copied or written.

Each test is named after the attack it stops. A refused archive leaves nothing in the unpack
directory's parent and nothing outside it. The structure checks hold with signature checks off
(``allow_unsigned``, development mode: :data:`OPEN`); signatures are tests/edge/test_signing.py.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from edge_image.bundle_check import check_archive, check_directory
from edge_image.contract.errors import UserError
from edge_image.contract.signing import BundleTrust
from tests.fixtures.bundle import logo_bundle
from training_scripts.export.archive import pack_bundle

#: signature checks off: what is left is the structure check
OPEN = BundleTrust({}, allow_unsigned=True)


def _manifest(bundle: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((bundle / "manifest.json").read_text())


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def _crafted(
    tmp_path: Path, extra: list[tuple[tarfile.TarInfo, bytes | None]], manifest: dict | None = None
) -> Path:  # type: ignore[type-arg]
    """A packed good bundle's members plus ``extra`` (and optionally another manifest)."""
    bundle = logo_bundle(tmp_path / "crafted-src", onnx=True)
    members: list[tuple[tarfile.TarInfo, bytes | None]] = []
    for rel in ("obj.names", "model.onnx"):
        members.append((_file(f"v1/{rel}"), (bundle / rel).read_bytes()))
    members.append((_file("v1/manifest.json"), json.dumps(manifest or _manifest(bundle)).encode()))
    return _tar(tmp_path / "crafted.tar.gz", members + extra)


def _nothing_written(tmp_path: Path) -> None:
    unpack = tmp_path / "cache"
    assert not unpack.exists() or list(unpack.iterdir()) == []
    assert not (tmp_path / "evil").exists() and not (tmp_path.parent / "evil").exists()


def _refused(tmp_path: Path, archive: Path, match: str) -> None:
    with pytest.raises(UserError, match=match):
        check_archive(archive, tmp_path / "cache" / "unpacked", OPEN)
    _nothing_written(tmp_path)


def test_member_traversing_out_of_the_bundle_is_refused(tmp_path: Path) -> None:
    archive = _crafted(tmp_path, [(_file("v1/../../evil"), b"owned")])
    _refused(tmp_path, archive, r"member 'v1/\.\./\.\./evil': not a relative path inside the bundle")


def test_absolute_member_is_refused(tmp_path: Path) -> None:
    archive = _crafted(tmp_path, [(_file("/etc/cron.d/evil"), b"* * * * * root sh")])
    _refused(tmp_path, archive, r"member '/etc/cron\.d/evil': not a relative path")


def test_symlink_member_is_refused(tmp_path: Path) -> None:
    link = _file("v1/shadow")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
    _refused(tmp_path, _crafted(tmp_path, [(link, None)]), r"member 'v1/shadow': a symlink")


def test_hard_link_member_is_refused(tmp_path: Path) -> None:
    link = _file("v1/passwd")
    link.type, link.linkname = tarfile.LNKTYPE, "/etc/passwd"
    _refused(tmp_path, _crafted(tmp_path, [(link, None)]), r"member 'v1/passwd': a hard link")


def test_device_member_is_refused(tmp_path: Path) -> None:
    device = _file("v1/sda")
    device.type = tarfile.BLKTYPE
    _refused(tmp_path, _crafted(tmp_path, [(device, None)]), r"member 'v1/sda': not a regular file")


def test_manifest_path_traversing_out_is_refused(tmp_path: Path) -> None:
    """What the role used to create and copy as root on the Pi before any check."""
    manifest = _manifest(logo_bundle(tmp_path / "m", onnx=True))
    manifest["files"].append({"path": "../../../../etc/cron.d/evil", "sha256": "0" * 64, "bytes": 1})
    _refused(
        tmp_path,
        _crafted(tmp_path, [], manifest),
        r"files\[2\]\.path: not a relative path inside the bundle: '(\.\./){4}etc/cron\.d/evil'",
    )


def test_manifest_absolute_path_to_a_controller_file_is_refused(tmp_path: Path) -> None:
    """The role's copy would have read /root/.ssh/id_rsa on the controller and sent it to every Pi."""
    manifest = _manifest(logo_bundle(tmp_path / "m", onnx=True))
    manifest["files"].append({"path": "/root/.ssh/id_rsa", "sha256": "0" * 64, "bytes": 1})
    _refused(tmp_path, _crafted(tmp_path, [], manifest), r"files\[2\]\.path: not a relative path")


def test_version_that_is_not_a_directory_name_is_refused(tmp_path: Path) -> None:
    manifest = _manifest(logo_bundle(tmp_path / "m", onnx=True))
    manifest["version"] = "../../../etc"
    _refused(tmp_path, _crafted(tmp_path, [], manifest), r"version: '\.\./\.\./\.\./etc' must be")


def test_unlisted_member_is_refused(tmp_path: Path) -> None:
    archive = _crafted(tmp_path, [(_file("v1/extra.sh"), b"#!/bin/sh\n")])
    _refused(tmp_path, archive, r"member v1/extra\.sh: not listed in manifest\.json")


def test_tampered_file_leaves_no_unpacked_directory(tmp_path: Path) -> None:
    bundle = logo_bundle(tmp_path / "src", onnx=True)
    members = [
        (_file("v1/obj.names"), b"evil\n"),  # same size as "logo\n", other bytes
        (_file("v1/model.onnx"), (bundle / "model.onnx").read_bytes()),
        (_file("v1/manifest.json"), (bundle / "manifest.json").read_bytes()),
    ]
    archive = _tar(tmp_path / "tampered.tar.gz", members)
    _refused(tmp_path, archive, r"v1/obj\.names: sha256 mismatch")


def test_oversized_member_is_refused_while_streaming(tmp_path: Path) -> None:
    bundle = logo_bundle(tmp_path / "src", onnx=True)
    members = [
        (_file("v1/obj.names"), b"logo\n" * 1000),
        (_file("v1/model.onnx"), (bundle / "model.onnx").read_bytes()),
        (_file("v1/manifest.json"), (bundle / "manifest.json").read_bytes()),
    ]
    _refused(tmp_path, _tar(tmp_path / "big.tar.gz", members), r"v1/obj\.names: size mismatch")


def test_packed_archive_unpacks_once_then_is_reused(tmp_path: Path) -> None:
    archive = tmp_path / "v1.tar.gz"
    pack_bundle(logo_bundle(tmp_path / "src", onnx=True), archive)
    dest = tmp_path / "cache" / "unpacked"
    first = check_archive(archive, dest, OPEN)
    assert (first.version, first.files, first.unpacked) == ("v1", ["model.onnx", "obj.names"], True)
    assert sorted(p.name for p in dest.iterdir()) == ["manifest.json", "model.onnx", "obj.names"]
    second = check_archive(archive, dest, OPEN)
    assert second.unpacked is False
    # a changed file in the unpack directory is not trusted: it is unpacked again
    (dest / "obj.names").write_text("evil\n")
    assert check_archive(archive, dest, OPEN).unpacked is True
    assert (dest / "obj.names").read_text() == "logo\n"
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["unpacked"]  # no staging left


def test_directory_bundle_with_a_symlink_to_a_controller_file_is_refused(tmp_path: Path) -> None:
    bundle = logo_bundle(tmp_path / "src", onnx=True)
    secret = tmp_path / "id_rsa"
    secret.write_text("PRIVATE KEY")
    (bundle / "obj.names").unlink()
    (bundle / "obj.names").symlink_to(secret)
    with pytest.raises(UserError, match=r"obj\.names: a symlink in the bundle"):
        check_directory(bundle, OPEN)


def test_directory_bundle_checks_in_place(tmp_path: Path) -> None:
    bundle = logo_bundle(tmp_path / "src", onnx=True)
    (bundle / "report.html").write_text("<html></html>")  # a published extra beside the bundle
    checked = check_directory(bundle, OPEN)
    assert (checked.dir, checked.files, checked.unpacked, checked.signer) == (
        str(bundle),
        ["model.onnx", "obj.names"],
        False,
        "unsigned",
    )


def test_cli_prints_json_or_one_error_line(tmp_path: Path) -> None:
    archive = tmp_path / "v1.tar.gz"
    pack_bundle(logo_bundle(tmp_path / "src", onnx=True), archive)
    command = [
        sys.executable,
        "-m",
        "edge_image.bundle_check",
        "--allow-unsigned",
        "--archive",
        str(archive),
        "--unpack-to",
    ]
    good = subprocess.run([*command, str(tmp_path / "u")], capture_output=True, text=True, check=False)
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["unpacked"] is True
    crafted = _crafted(tmp_path, [(_file("v1/../../evil"), b"x")])
    bad = subprocess.run(
        [*command[:5], str(crafted), "--unpack-to", str(tmp_path / "b")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and bad.stderr.startswith(f"error: {crafted}: member 'v1/../../evil'")
    # the controller's Python needs no numpy (standard library and cryptography only)
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, edge_image.bundle_check; print('numpy' in sys.modules)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert probe.stdout.strip() == "False"
