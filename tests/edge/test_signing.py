"""Bundle provenance: manifest.sig made by training_scripts (a local Ed25519 key or AWS KMS through
moto) and verified by edge_image before anything of a bundle is believed. Named after the attacks."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from edge_image.bundle_check import check_archive, check_directory
from edge_image.contract.errors import UserError
from edge_image.contract.manifest import load_bundle, write_manifest
from edge_image.contract.signing import SIGNATURE_NAME, BundleTrust, key_id, load_trusted_keys
from tests.fixtures.bundle import logo_bundle
from training_scripts.export.archive import pack_bundle
from training_scripts.export.signing import KmsSigner, generate_key, sign_bundle, signer_from_spec


@pytest.fixture()
def keys(tmp_path: Path) -> dict[str, Path]:
    """Two Ed25519 pairs: ``a`` (trusted) and ``b`` (someone else's)."""
    a_private, a_public = generate_key(tmp_path / "key-a")
    b_private, b_public = generate_key(tmp_path / "key-b")
    return {"a": a_private, "a.pub": a_public, "b": b_private, "b.pub": b_public}


def _trust(*public: Path, allow_unsigned: bool = False) -> BundleTrust:
    return BundleTrust(load_trusted_keys(list(public)), allow_unsigned=allow_unsigned)


def test_signed_bundle_loads_and_names_its_signer(tmp_path: Path, keys: dict[str, Path]) -> None:
    bundle = logo_bundle(tmp_path / "b")
    signer = signer_from_spec(f"file:{keys['a']}")
    sign_bundle(bundle, signer)
    loaded = load_bundle(bundle, trust=_trust(keys["a.pub"]))
    assert loaded.signer == key_id(signer.public_key()) and len(loaded.signer) == 16
    doc = json.loads((bundle / SIGNATURE_NAME).read_text())
    assert (doc["schema"], doc["algorithm"], doc["key_id"]) == (1, "ed25519", loaded.signer)


def test_unsigned_bundle_is_refused(tmp_path: Path, keys: dict[str, Path]) -> None:
    with pytest.raises(UserError, match=r"unsigned bundle \(no manifest\.sig\)"):
        load_bundle(logo_bundle(tmp_path / "b"), trust=_trust(keys["a.pub"]))


def test_bundle_signed_by_another_key_is_refused(tmp_path: Path, keys: dict[str, Path]) -> None:
    bundle = logo_bundle(tmp_path / "b")
    sign_bundle(bundle, signer_from_spec(f"file:{keys['b']}"))
    with pytest.raises(
        UserError, match=r"signed by key [0-9a-f]{16}, which is not trusted \(trusted: [0-9a-f]{16}\)"
    ):
        load_bundle(bundle, trust=_trust(keys["a.pub"]))


def test_manifest_changed_after_signing_is_refused(tmp_path: Path, keys: dict[str, Path]) -> None:
    """The attacker swaps a model and fixes its sha256 in the manifest: the signature no longer verifies."""
    bundle = logo_bundle(tmp_path / "b")
    sign_bundle(bundle, signer_from_spec(f"file:{keys['a']}"))
    manifest = json.loads((bundle / "manifest.json").read_text())
    (bundle / "obj.names").write_text("evil\n")
    manifest["files"][0]["sha256"] = __import__("hashlib").sha256(b"evil\n").hexdigest()
    write_manifest(bundle, manifest)
    with pytest.raises(UserError, match=r"signature does not verify with key"):
        load_bundle(bundle, trust=_trust(keys["a.pub"]))


def test_forged_signature_document_is_refused(tmp_path: Path, keys: dict[str, Path]) -> None:
    bundle = logo_bundle(tmp_path / "b")
    trusted = _trust(keys["a.pub"])
    ident = next(iter(trusted.keys))
    for document, message in [
        (b"not json", r"manifest\.sig: not a JSON signature document"),
        (
            json.dumps({"schema": 1, "algorithm": "none", "key_id": ident, "signature": ""}).encode(),
            r"'none'",
        ),
        (
            json.dumps({"schema": 1, "algorithm": "ed25519", "key_id": ident, "signature": "AAAA"}).encode(),
            r"signature does not verify",
        ),
        (
            json.dumps(
                {"schema": 1, "algorithm": "ecdsa-p256-sha256", "key_id": ident, "signature": "AAAA"}
            ).encode(),
            r"algorithm ecdsa-p256-sha256 does not match key",
        ),
        (b"{" + b" " * 5000 + b"}", r"more than 4096"),
    ]:
        (bundle / SIGNATURE_NAME).write_bytes(document)
        with pytest.raises(UserError, match=message):
            load_bundle(bundle, trust=trusted)


def test_signature_file_that_is_a_symlink_is_refused(tmp_path: Path, keys: dict[str, Path]) -> None:
    bundle = logo_bundle(tmp_path / "b")
    sign_bundle(bundle, signer_from_spec(f"file:{keys['a']}"))
    elsewhere = tmp_path / "sig"
    (bundle / SIGNATURE_NAME).rename(elsewhere)
    (bundle / SIGNATURE_NAME).symlink_to(elsewhere)
    with pytest.raises(UserError, match=r"manifest\.sig: a symlink"):
        load_bundle(bundle, trust=_trust(keys["a.pub"]))


def test_key_rotation_trusts_both_keys_until_the_old_file_is_removed(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    trusted_dir = tmp_path / "trusted-keys"
    trusted_dir.mkdir()
    (trusted_dir / "old.pem").write_bytes(keys["a.pub"].read_bytes())
    (trusted_dir / "new.pem").write_bytes(keys["b.pub"].read_bytes())
    old, new = logo_bundle(tmp_path / "old"), logo_bundle(tmp_path / "new", "v2")
    sign_bundle(old, signer_from_spec(f"file:{keys['a']}"))
    sign_bundle(new, signer_from_spec(f"file:{keys['b']}"))
    assert (
        load_bundle(old, trust=_trust(trusted_dir)).signer
        != load_bundle(new, trust=_trust(trusted_dir)).signer
    )
    (trusted_dir / "old.pem").unlink()
    with pytest.raises(UserError, match="not trusted"):
        load_bundle(old, trust=_trust(trusted_dir))
    assert load_bundle(new, trust=_trust(trusted_dir)).signer


def test_allow_unsigned_accepts_with_a_warning_every_time(tmp_path: Path, keys: dict[str, Path]) -> None:
    warnings: list[str] = []
    loaded = load_bundle(logo_bundle(tmp_path / "b"), trust=_trust(allow_unsigned=True), warn=warnings.append)
    assert loaded.signer == "unsigned"
    assert len(warnings) == 1 and warnings[0].startswith("UNVERIFIED bundle accepted")


def test_untrusted_key_files_are_clear_errors(tmp_path: Path, keys: dict[str, Path]) -> None:
    with pytest.raises(UserError, match=r"missing\.pem: cannot read the public key"):
        load_trusted_keys([tmp_path / "missing.pem"])
    with pytest.raises(UserError, match=r"signing-key\.pem: not a PEM public key"):
        load_trusted_keys([keys["a"]])  # the private key is not what devices get


def test_generated_private_key_is_0600_and_never_overwritten(tmp_path: Path) -> None:
    private, public = generate_key(tmp_path / "k")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600 and public.read_text().startswith(
        "-----BEGIN PUBLIC KEY"
    )
    with pytest.raises(UserError, match="exists; remove it first"):
        generate_key(tmp_path / "k")


def test_kms_signed_bundle_verifies_on_the_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS KMS (moto) ECC_NIST_P256 / ECDSA_SHA_256: the private key never leaves KMS; the device
    verifies with the exported public key."""
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        kms = boto3.client("kms", region_name="us-east-1")
        made = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
        signer = KmsSigner(made, kms)
        bundle = logo_bundle(tmp_path / "b")
        sign_bundle(bundle, signer)
        public = tmp_path / "kms.pub.pem"
        from cryptography.hazmat.primitives import serialization

        public.write_bytes(
            signer.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        symmetric = kms.create_key()["KeyMetadata"]["KeyId"]
        with pytest.raises(UserError, match="bundles are signed with ECC_NIST_P256 SIGN_VERIFY keys"):
            KmsSigner(symmetric, kms).public_key()
    loaded = load_bundle(bundle, trust=_trust(public))
    assert json.loads((bundle / SIGNATURE_NAME).read_text())["algorithm"] == "ecdsa-p256-sha256"
    assert loaded.signer == key_id(load_trusted_keys([public])[loaded.signer])


def test_signed_archive_is_checked_on_the_controller_before_unpacking(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    bundle = logo_bundle(tmp_path / "b")
    archive = tmp_path / "v1.tar.gz"
    pack_bundle(bundle, archive, signer=signer_from_spec(f"file:{keys['a']}"))
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == ["v1", "v1/manifest.json", "v1/manifest.sig", "v1/obj.names"]
    checked = check_archive(archive, tmp_path / "cache" / "u", _trust(keys["a.pub"]))
    assert checked.unpacked and len(checked.signer) == 16
    assert (tmp_path / "cache" / "u" / SIGNATURE_NAME).read_bytes() == (bundle / SIGNATURE_NAME).read_bytes()
    # the unpacked copy loads on the device with the same key
    assert load_bundle(tmp_path / "cache" / "u", trust=_trust(keys["a.pub"])).signer == checked.signer
    # someone else's key: nothing unpacked
    with pytest.raises(UserError, match="not trusted"):
        check_archive(archive, tmp_path / "cache2" / "u", _trust(keys["b.pub"]))
    assert not (tmp_path / "cache2").exists()
    with pytest.raises(UserError, match="unsigned bundle"):
        check_directory(logo_bundle(tmp_path / "plain", "v3"), _trust(keys["a.pub"]))


def test_cli_signing_key_pack_sign_and_check(tmp_path: Path) -> None:
    env = dict(os.environ)
    made = subprocess.run(
        [sys.executable, "-m", "training_scripts", "signing-key", "--out", str(tmp_path / "k")],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    public, ident = made.stdout.split()
    bundle = logo_bundle(tmp_path / "b")
    packed = subprocess.run(
        [sys.executable, "-m", "training_scripts", "pack", "--bundle", str(bundle),
         "--out", str(tmp_path / "a.tar.gz"), "--sign", f"file:{tmp_path / 'k' / 'signing-key.pem'}"],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    assert packed.returncode == 0, packed.stderr
    checked = subprocess.run(
        [sys.executable, "-m", "edge_image.bundle_check", "--archive", str(tmp_path / "a.tar.gz"),
         "--unpack-to", str(tmp_path / "u"), "--trusted-key", public],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["signer"] == ident
    unsigned = subprocess.run(
        [sys.executable, "-m", "edge_image.bundle_check", "--dir", str(logo_bundle(tmp_path / "p", "v9")),
         "--allow-unsigned"],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    assert unsigned.returncode == 0 and json.loads(unsigned.stdout)["signer"] == "unsigned"
    assert unsigned.stderr.startswith("warning: UNVERIFIED bundle accepted")
