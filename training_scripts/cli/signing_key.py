"""``signing-key``: make an Ed25519 bundle-signing key pair, or export a KMS signing key's public
half, as the PEM file devices trust (:mod:`training_scripts.export.signing`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``signing-key`` to the command parsers."""
    p = sub.add_parser(
        "signing-key",
        help="make a bundle-signing key pair (or export a KMS key's public key) for pack --sign",
        description="Without --kms: write OUT/signing-key.pem (Ed25519 private key, mode 0600; never "
        "overwritten) and OUT/signing-key.pub.pem. With --kms KEY: write OUT/<key id>.pub.pem, the public "
        "key of the KMS signing key. Give the .pub.pem to the devices (edge_service_trusted_keys); sign with "
        "pack --sign file:OUT/signing-key.pem or --sign kms:KEY. Prints the public key file and its key id.",
    )
    p.add_argument("--out", type=Path, required=True, help="directory for the key files")
    p.add_argument("--kms", default=None, help="export the public key of this KMS key (id, ARN or alias)")
    p.add_argument("--region", default=None, help="KMS region (default: boto3's)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the key file(s); print ``PUBLIC_PEM key_id``."""
    from cryptography.hazmat.primitives import serialization

    from edge_image.contract import atomic
    from edge_image.contract.signing import key_id
    from training_scripts.export.signing import KmsSigner, generate_key

    if args.kms:
        import boto3

        public = KmsSigner(args.kms, boto3.client("kms", region_name=args.region)).public_key()
        ident = key_id(public)
        path = atomic.write_bytes(
            args.out / f"{ident}.pub.pem",
            public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        )
    else:
        _, path = generate_key(args.out)
        ident = key_id(serialization.load_pem_public_key(path.read_bytes()))
    print(f"{path} {ident}")
    return 0
