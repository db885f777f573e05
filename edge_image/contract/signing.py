"""Bundle provenance: ``manifest.sig``, a signature over the exact bytes of ``manifest.json``.

The manifest lists every file's size and SHA-256, so one signature over its bytes covers the whole
bundle. ``training_scripts pack --sign`` writes it (training_scripts/export/signing.py: a local
Ed25519 key or an AWS KMS key); devices, the edge role's controller-side check and the service
verify it with public keys they were given beforehand, before anything else of the bundle is used.

``manifest.sig``::

    {"schema": 1, "algorithm": "ed25519", "key_id": "3f1c0a9b2e7d4c65", "signature": "<base64>"}

``key_id`` is the first 16 hex digits of the SHA-256 of the public key's DER SubjectPublicKeyInfo
(:func:`key_id`), so a device with several trusted keys (during a rotation) knows which one to use.

Algorithms (:data:`ALGORITHMS`): ``ed25519`` (a key file made by ``training_scripts signing-key``)
and ``ecdsa-p256-sha256`` (AWS KMS ``ECC_NIST_P256`` keys, ``ECDSA_SHA_256``, DER signatures).
Verification uses ``cryptography``.

Trusted keys are PEM public keys, one per ``*.pem`` file in a directory (the service's
``model.trusted_keys``, ``/etc/edge-image/trusted-keys`` on a Pi); rotation: add the new key's file
on the devices, sign new bundles with the new key, remove the old file once nothing signed with it
is deployed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_image.contract.errors import UserError
from edge_image.contract.fields import Fields

SIGNATURE_NAME = "manifest.sig"
SIGNATURE_SCHEMA = 1
#: Largest ``manifest.sig`` accepted (a signature document is about 200 bytes).
MAX_SIGNATURE_BYTES = 4096


def _verify_ed25519(key: Any, signature: bytes, data: bytes) -> None:
    key.verify(signature, data)


def _verify_ecdsa_p256(key: Any, signature: bytes, data: bytes) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key.verify(signature, data, ec.ECDSA(hashes.SHA256()))


@dataclass(frozen=True)
class Algorithm:
    """A signature algorithm: the public key type it needs and how to check a signature."""

    name: str
    key_type: str
    verify: Callable[[Any, bytes, bytes], None]


def _key_type(key: Any) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1":
        return "ec-p256"
    return type(key).__name__


#: name -> algorithm; the only signatures a device accepts.
ALGORITHMS: dict[str, Algorithm] = {
    "ed25519": Algorithm("ed25519", "ed25519", _verify_ed25519),
    "ecdsa-p256-sha256": Algorithm("ecdsa-p256-sha256", "ec-p256", _verify_ecdsa_p256),
}


def key_id(public_key: Any) -> str:
    """First 16 hex digits of the SHA-256 of ``public_key``'s DER SubjectPublicKeyInfo."""
    from cryptography.hazmat.primitives import serialization

    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:16]


def load_public_key(path: str | os.PathLike[str]) -> Any:
    """A PEM public key file -> key object; :class:`UserError` naming the file when it is not one."""
    from cryptography.hazmat.primitives import serialization

    file = Path(path)
    try:
        key = serialization.load_pem_public_key(file.read_bytes())
    except OSError as exc:
        raise UserError(f"{file}: cannot read the public key ({exc.strerror})") from exc
    except ValueError as exc:
        raise UserError(f"{file}: not a PEM public key") from exc
    if _key_type(key) not in {a.key_type for a in ALGORITHMS.values()}:
        raise UserError(f"{file}: {_key_type(key)} keys are not accepted (Ed25519 or EC P-256 only)")
    return key


def load_trusted_keys(
    paths: list[str | os.PathLike[str]] | tuple[str | os.PathLike[str], ...],
) -> dict[str, Any]:
    """``key_id -> key`` from PEM files and directories of ``*.pem`` files (sorted by name)."""
    keys: dict[str, Any] = {}
    for entry in paths:
        entry = Path(entry)
        files = sorted(entry.glob("*.pem")) if entry.is_dir() else [entry]
        for file in files:
            key = load_public_key(file)
            keys[key_id(key)] = key
    return keys


def signature_document(algorithm: str, signer_key_id: str, signature: bytes) -> bytes:
    """The bytes of a ``manifest.sig``."""
    doc = {
        "schema": SIGNATURE_SCHEMA,
        "algorithm": algorithm,
        "key_id": signer_key_id,
        "signature": base64.b64encode(signature).decode("ascii"),
    }
    return (json.dumps(doc, indent=2) + "\n").encode("utf-8")


def parse_signature(data: bytes, *, where: str) -> dict[str, Any]:
    """Validate a ``manifest.sig`` document; :class:`UserError` naming the field that is wrong."""
    if len(data) > MAX_SIGNATURE_BYTES:
        raise UserError(f"{where}: {len(data)} bytes, more than {MAX_SIGNATURE_BYTES} (not a signature)")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{where}: not a JSON signature document ({exc})") from exc
    if not isinstance(doc, dict) or set(doc) != {"schema", "algorithm", "key_id", "signature"}:
        raise UserError(f"{where}: must be an object with exactly schema, algorithm, key_id, signature")
    fields = Fields(where, "", doc)
    if doc["schema"] != SIGNATURE_SCHEMA:
        raise fields.error("schema", f"unsupported version {doc['schema']!r}")
    fields.choice("algorithm", ALGORITHMS)
    key_id = fields.text("key_id")
    if len(key_id) != 16 or any(ch not in "0123456789abcdef" for ch in key_id.lower()):
        raise fields.error("key_id", "must be 16 hex digits")
    try:
        doc["signature"] = base64.b64decode(fields.text("signature"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise fields.error("signature", "not base64") from exc
    return doc


def verify_manifest_bytes(
    manifest: bytes, signature: bytes | None, trusted: Mapping[str, Any], *, where: str
) -> str:
    """Check ``signature`` (the bytes of ``manifest.sig``, None when absent) over ``manifest``.

    Returns the signer's key id; raises :class:`UserError` with one line for an unsigned bundle, an
    untrusted key, a key/algorithm mismatch or a signature that does not verify.
    """
    from cryptography.exceptions import InvalidSignature

    if signature is None:
        raise UserError(f"{where}: unsigned bundle (no {SIGNATURE_NAME}); devices load signed bundles only")
    doc = parse_signature(signature, where=f"{where}/{SIGNATURE_NAME}")
    if not trusted:
        raise UserError(f"{where}: no trusted public keys configured to verify {SIGNATURE_NAME} with")
    key = trusted.get(doc["key_id"])
    if key is None:
        raise UserError(
            f"{where}/{SIGNATURE_NAME}: signed by key {doc['key_id']}, which is not trusted "
            f"(trusted: {', '.join(sorted(trusted))})"
        )
    algorithm = ALGORITHMS[doc["algorithm"]]
    if _key_type(key) != algorithm.key_type:
        raise UserError(
            f"{where}/{SIGNATURE_NAME}: algorithm {algorithm.name} does not match key {doc['key_id']}"
        )
    try:
        algorithm.verify(key, doc["signature"], manifest)
    except InvalidSignature as exc:
        raise UserError(
            f"{where}/{SIGNATURE_NAME}: signature does not verify with key {doc['key_id']} "
            "(manifest.json changed after signing, or a forged signature)"
        ) from exc
    return str(doc["key_id"])


@dataclass(frozen=True)
class BundleTrust:
    """What a device accepts: bundles signed by one of ``keys`` or, only with ``allow_unsigned``
    (local development), any bundle, with a warning each time."""

    keys: Mapping[str, Any]
    allow_unsigned: bool = False

    def check(
        self, manifest: bytes, signature: bytes | None, *, where: str, warn: Callable[[str], None]
    ) -> str:
        """The signer's key id, ``"unsigned"`` when allowed; :class:`UserError` when refused."""
        if self.allow_unsigned:
            try:
                return verify_manifest_bytes(manifest, signature, self.keys, where=where)
            except UserError as exc:
                warn(f"UNVERIFIED bundle accepted (signature checks are off, development only): {exc}")
                return "unsigned"
        return verify_manifest_bytes(manifest, signature, self.keys, where=where)
