"""Pack a verified model bundle into one reproducible ``.tar.gz`` for devices.

The edge playbook deploys a bundle archive (one object in S3 or one file on the controller);
the publish role makes it with :func:`pack_bundle` beside the bundle's loose files.

Input: a bundle directory (``manifest.json``, ``manifest.sig`` when signed, and the files it lists).
Output: a gzip'd tar holding ``<version>/manifest.json``, ``<version>/manifest.sig`` (signed bundles:
:func:`pack_bundle` with a signer signs first) and ``<version>/<file>`` for every listed file, in sorted
order, with zero timestamps and root ownership, so the same bundle always gives the same bytes
(and the same SHA-256, which the edge role can pin). Files beside the bundle that the manifest
does not list (reports, plots) are left out: the device can neither use nor verify them.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

from edge_image.contract import atomic
from edge_image.contract.manifest import MANIFEST_NAME, load_bundle, verify_files
from edge_image.contract.signing import SIGNATURE_NAME
from training_scripts.export.signing import Signer, sign_bundle


def _tarinfo(name: str, size: int, *, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 0 if directory else size
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def bundle_archive_bytes(bundle_dir: str | os.PathLike[str]) -> tuple[bytes, str]:
    """``(archive bytes, top directory name)`` for the verified bundle in ``bundle_dir``.

    Raises :class:`~edge_image.contract.errors.UserError` when the bundle does not verify (a flipped
    byte is never packed and shipped).
    """
    bundle = load_bundle(bundle_dir, verify=False)
    verify_files(bundle.root, bundle.manifest, allow_unlisted=True)
    top = str(bundle.manifest["version"])
    signed = [SIGNATURE_NAME] if (bundle.root / SIGNATURE_NAME).is_file() else []
    names = sorted({MANIFEST_NAME, *signed, *(entry["path"] for entry in bundle.manifest["files"])})
    dirs = sorted({str(Path(n).parent) for n in names if str(Path(n).parent) != "."})
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_tarinfo(top, 0, directory=True))
        for d in dirs:
            tar.addfile(_tarinfo(f"{top}/{d}", 0, directory=True))
        for name in names:
            data = (bundle.root / name).read_bytes()
            tar.addfile(_tarinfo(f"{top}/{name}", len(data)), io.BytesIO(data))
    packed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=packed, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return packed.getvalue(), top


def pack_bundle(
    bundle_dir: str | os.PathLike[str], out: str | os.PathLike[str], *, signer: Signer | None = None
) -> str:
    """Write the archive of ``bundle_dir`` to ``out`` atomically (with ``signer``: sign the manifest
    first, ``bundle_dir/manifest.sig``); return the archive's SHA-256 (hex).

    >>> # pack_bundle("bundle", "bundle.tar.gz") -> "3f1c..."  (same bundle, same digest)
    """
    if signer is not None:
        load_bundle(bundle_dir, verify=False)  # a valid manifest, before anything signs it
        sign_bundle(bundle_dir, signer)
    data, _ = bundle_archive_bytes(bundle_dir)
    atomic.write_bytes(out, data)
    return hashlib.sha256(data).hexdigest()
