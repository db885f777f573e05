"""``pack``: a verified bundle → one reproducible ``.tar.gz`` (see :mod:`training_scripts.export.archive`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``pack`` to the command parsers."""
    p = sub.add_parser(
        "pack",
        help="pack a verified model bundle into a reproducible .tar.gz for the edge playbook",
        description="Verify BUNDLE against its manifest, sign it with --sign, and write OUT (.tar.gz with "
        "<version>/ at the top, manifest.json, manifest.sig when there is one and only the files the "
        "manifest lists, zero timestamps). Prints 'sha256 OUT'.",
    )
    p.add_argument("--bundle", type=Path, required=True, help="bundle directory (manifest.json inside)")
    p.add_argument("--out", type=Path, required=True, help="archive to write (.tar.gz)")
    p.add_argument(
        "--sign",
        default=None,
        metavar="file:KEY.pem|kms:KEY",
        help="sign manifest.json first (BUNDLE/manifest.sig, packed with it); devices refuse unsigned ones",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Pack and print the digest (the edge role's ``edge_service_model_sha256``)."""
    from training_scripts.export.archive import pack_bundle
    from training_scripts.export.signing import signer_from_spec

    signer = signer_from_spec(args.sign) if args.sign else None
    print(f"{pack_bundle(args.bundle, args.out, signer=signer)}  {args.out}")
    return 0
