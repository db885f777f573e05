"""Sign a bundle's ``manifest.json`` (the other half of :mod:`edge_image.contract.signing`).

Signers, one row each in :data:`SIGNERS`, chosen by the scheme of a ``--sign`` value:

- ``file:PATH`` — an Ed25519 private key (PEM, PKCS#8) made by ``training_scripts signing-key``;
  for the demo and for hosts that keep a key themselves.
- ``kms:KEY`` — an AWS KMS asymmetric key (``ECC_NIST_P256``, ``SIGN_VERIFY``; a key id, ARN or
  alias), signing with ``ECDSA_SHA_256``: the private key never leaves KMS, and IAM decides who may
  call ``kms:Sign`` (the Artifacts stack's ``SigningKey``: the training host only).

:func:`sign_bundle` writes ``manifest.sig`` beside ``manifest.json`` atomically; the signature is
over the manifest's exact bytes. :func:`generate_key` writes a new Ed25519 pair
(``signing-key.pem``, mode 0600, and ``signing-key.pub.pem``, the file devices trust).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from edge_image.contract import atomic
from edge_image.contract.errors import UserError
from edge_image.contract.manifest import MANIFEST_NAME
from edge_image.contract.signing import SIGNATURE_NAME, key_id, signature_document


class Signer(Protocol):
    """Signs bytes; names its algorithm (a key of ``edge_image.contract.signing.ALGORITHMS``) and key id."""

    algorithm: str

    def public_key(self) -> Any: ...

    def sign(self, data: bytes) -> bytes: ...


@dataclass
class FileSigner:
    """Ed25519 private key from a PEM file."""

    path: Path
    algorithm: str = "ed25519"

    def __post_init__(self) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519

        try:
            key = serialization.load_pem_private_key(self.path.read_bytes(), password=None)
        except OSError as exc:
            raise UserError(f"{self.path}: cannot read the signing key ({exc.strerror})") from exc
        except (ValueError, TypeError) as exc:
            raise UserError(f"{self.path}: not an unencrypted PEM private key") from exc
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise UserError(f"{self.path}: not an Ed25519 key (file: signers use Ed25519)")
        self._key = key

    def public_key(self) -> Any:
        return self._key.public_key()

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)


@dataclass
class KmsSigner:
    """AWS KMS asymmetric ECC_NIST_P256 key; ``client`` is a boto3 KMS client (made when omitted)."""

    key: str
    client: Any = None
    algorithm: str = "ecdsa-p256-sha256"

    def __post_init__(self) -> None:
        if self.client is None:
            import boto3

            self.client = boto3.client("kms")
        self._public: Any = None

    def public_key(self) -> Any:
        if self._public is None:
            from cryptography.hazmat.primitives import serialization

            answer = self.client.get_public_key(KeyId=self.key)
            spec = answer.get("KeySpec") or answer.get("CustomerMasterKeySpec")  # the older name of the field
            if spec != "ECC_NIST_P256" or answer.get("KeyUsage") != "SIGN_VERIFY":
                raise UserError(
                    f"kms:{self.key}: key spec {spec} / usage {answer.get('KeyUsage')}; "
                    "bundles are signed with ECC_NIST_P256 SIGN_VERIFY keys"
                )
            self._public = serialization.load_der_public_key(answer["PublicKey"])
        return self._public

    def sign(self, data: bytes) -> bytes:
        answer = self.client.sign(
            KeyId=self.key, Message=data, MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256"
        )
        return bytes(answer["Signature"])


#: ``--sign`` scheme -> signer factory.
SIGNERS: dict[str, Callable[[str], Signer]] = {
    "file": lambda rest: FileSigner(Path(rest)),
    "kms": lambda rest: KmsSigner(rest),
}


def signer_from_spec(spec: str) -> Signer:
    """``file:PATH`` or ``kms:KEY`` -> a signer; :class:`UserError` for anything else."""
    scheme, _, rest = spec.partition(":")
    if scheme not in SIGNERS or not rest:
        raise UserError(f"--sign {spec!r}: use {' or '.join(f'{s}:...' for s in SIGNERS)}")
    return SIGNERS[scheme](rest)


def sign_bundle(bundle_dir: str | os.PathLike[str], signer: Signer) -> Path:
    """Write ``bundle_dir/manifest.sig`` for the manifest as it is on disk; return its path."""
    root = Path(bundle_dir)
    manifest = (root / MANIFEST_NAME).read_bytes()
    document = signature_document(signer.algorithm, key_id(signer.public_key()), signer.sign(manifest))
    return atomic.write_bytes(root / SIGNATURE_NAME, document)


def generate_key(out_dir: str | os.PathLike[str], name: str = "signing-key") -> tuple[Path, Path]:
    """A new Ed25519 pair: ``(private PEM 0600, public PEM)`` in ``out_dir``; never overwrites a key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    private, public = out / f"{name}.pem", out / f"{name}.pub.pem"
    if private.exists():
        raise UserError(f"{private}: exists; remove it first to make a new key (devices trust the old one)")
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public
