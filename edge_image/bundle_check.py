"""Check a model bundle before any of it is copied: the controller side of the edge role.

roles/edge_service runs ``python -m edge_image.bundle_check`` on the controller, before a single
file of the bundle is read for copying or written on a device, and copies only what it reports.

First, provenance: ``manifest.sig`` must verify over the manifest's exact bytes with one of the
``--trusted-key`` public keys (:mod:`edge_image.contract.signing`) before the manifest's content is believed;
``--allow-unsigned`` (development only) turns that into a warning on stderr.

- ``--archive A --unpack-to D``: a bundle archive (``training_scripts pack``). Every tar member must
  be a regular file or directory under one top directory, named without ``..``, a leading ``/`` or
  a backslash; links, devices and FIFOs are refused. ``manifest.json`` is read from the archive and
  validated (:func:`edge_image.contract.manifest.validate_manifest`: relative paths only, ``version`` in the
  directory-name alphabet); the archive must hold exactly the files it lists. Those files are then
  streamed into a fresh temporary directory beside ``D`` (``O_EXCL | O_NOFOLLOW``), hashed as they
  are written, and the directory is renamed to ``D`` only when every size and SHA-256 matches: the
  bytes checked are the bytes copied later, and a refused archive leaves nothing behind. An existing
  ``D`` that still verifies is reused (``"unpacked": false``).
- ``--dir B``: a bundle directory on the controller (a published one may carry extras beside the
  listed files). No symlink anywhere in it (``lstat``), the manifest validated, every listed file
  present. Its sizes and SHA-256 sums are checked on the node, where the files land, before the
  model is switched (the role's "refused on the node").

Output: one JSON line ``{"dir", "version", "files", "unpacked", "signer", "copy_files"}``
(``files``: the manifest's paths; ``copy_files``: what the role copies, manifest and signature
first); bad input prints ``error: <file>: <problem>`` and exits 2. Only the standard library,
:mod:`edge_image.contract.manifest` and ``cryptography`` (an Ansible dependency) are imported, so any
Ansible controller's Python runs it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from edge_image.contract.atomic import repair_dir, replace_dir
from edge_image.contract.errors import UserError
from edge_image.contract.manifest import (
    MANIFEST_NAME,
    parse_manifest,
    read_manifest,
    safe_relpath,
    verify_files,
)
from edge_image.contract.signing import MAX_SIGNATURE_BYTES, SIGNATURE_NAME, BundleTrust, load_trusted_keys

#: manifest.json larger than this is not a manifest (a bundle of thousands of files is ~1 MiB).
MAX_MANIFEST_BYTES = 4 << 20
_CHUNK = 1 << 20


@dataclass(frozen=True)
class CheckedBundle:
    """A bundle that passed: its directory, version, listed files, and whether it was just unpacked."""

    dir: str
    version: str
    files: list[str]
    unpacked: bool
    #: key id that signed the manifest ("unsigned" when allowed without a valid signature)
    signer: str
    #: what the role copies: manifest.json, manifest.sig when there is one, then ``files``
    copy_files: list[str]


def _member_problem(member: tarfile.TarInfo) -> str | None:
    if not (member.isreg() or member.isdir()):
        kind = "a symlink" if member.issym() else "a hard link" if member.islnk() else "not a regular file"
        return f"{kind} (only files and directories are allowed)"
    name = member.name.rstrip("/") if member.isdir() else member.name
    if not safe_relpath(name):
        return "not a relative path inside the bundle"
    return None


def _archive_members(tar: tarfile.TarFile, archive: Path) -> tuple[str, dict[str, tarfile.TarInfo]]:
    """``(top directory, {path inside the bundle: member})`` after checking every member."""
    tops: set[str] = set()
    files: dict[str, tarfile.TarInfo] = {}
    for member in tar.getmembers():
        problem = _member_problem(member)
        if problem is not None:
            raise UserError(f"{archive}: member {member.name!r}: {problem}")
        parts = PurePosixPath(member.name).parts
        tops.add(parts[0])
        if member.isreg():
            if len(parts) < 2:
                raise UserError(f"{archive}: member {member.name!r}: outside the bundle's top directory")
            rel = str(PurePosixPath(*parts[1:]))
            if rel in files:
                raise UserError(f"{archive}: member {member.name!r}: appears twice")
            files[rel] = member
    if len(tops) != 1:
        raise UserError(f"{archive}: {len(tops)} top-level entries; a bundle archive holds one directory")
    return tops.pop(), files


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, limit: int) -> bytes:
    if member.size > limit:
        raise UserError(f"{member.name}: {member.size} bytes, more than {limit}")
    handle = tar.extractfile(member)
    assert handle is not None  # a regular file
    return handle.read(limit + 1)[:limit]


def _write_checked(source: IO[bytes], target: Path, entry: dict[str, Any], where: str) -> None:
    """Stream ``source`` into a new ``target`` (never through a link), checking size and SHA-256."""
    digest = hashlib.sha256()
    size = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as out:
        while chunk := source.read(_CHUNK):
            size += len(chunk)
            if size > entry["bytes"]:
                raise UserError(f"{where}: size mismatch (manifest {entry['bytes']} bytes, archive more)")
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    if size != entry["bytes"]:
        raise UserError(f"{where}: size mismatch (manifest {entry['bytes']} bytes, archive {size} bytes)")
    if digest.hexdigest() != entry["sha256"]:
        raise UserError(
            f"{where}: sha256 mismatch (manifest {entry['sha256'][:12]}..., "
            f"archive {digest.hexdigest()[:12]}...)"
        )


def _reuse(dest: Path, manifest_bytes: bytes, signature: bytes | None) -> bool:
    """Whether ``dest`` already holds this manifest and signature and still verifies (no symlinks,
    every file intact)."""
    try:
        if _has_symlink(dest) or (dest / MANIFEST_NAME).read_bytes() != manifest_bytes:
            return False
        sig = dest / SIGNATURE_NAME
        if (sig.read_bytes() if sig.exists() else None) != signature:
            return False
        verify_files(dest, read_manifest(dest))
    except (OSError, UserError):
        return False
    return True


def _copy(root: Path, files: list[str]) -> list[str]:
    signature = [SIGNATURE_NAME] if (root / SIGNATURE_NAME).is_file() else []
    return [MANIFEST_NAME, *signature, *files]


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def check_archive(
    archive: str | os.PathLike[str], dest: str | os.PathLike[str], trust: BundleTrust
) -> CheckedBundle:
    """Check ``archive`` (signature first) and unpack its listed files into ``dest`` (see the module doc)."""
    archive, dest = Path(archive), Path(dest)
    try:
        tar = tarfile.open(archive, mode="r:*")  # noqa: SIM115 - closed by the with block below
    except (OSError, tarfile.TarError) as exc:
        raise UserError(f"{archive}: not a readable tar archive ({exc})") from exc
    with tar:
        top, members = _archive_members(tar, archive)
        if MANIFEST_NAME not in members:
            raise UserError(f"{archive}: no {top}/{MANIFEST_NAME}")
        manifest_bytes = _read_member(tar, members[MANIFEST_NAME], MAX_MANIFEST_BYTES)
        signature = (
            _read_member(tar, members[SIGNATURE_NAME], MAX_SIGNATURE_BYTES)
            if SIGNATURE_NAME in members
            else None
        )
        # provenance before anything of the manifest is believed
        signer = trust.check(manifest_bytes, signature, where=f"{archive}:{top}", warn=_warn)
        manifest = parse_manifest(manifest_bytes, where=f"{archive}:{top}/{MANIFEST_NAME}")
        listed = {entry["path"]: entry for entry in manifest["files"]}
        for rel in sorted(set(members) - set(listed) - {MANIFEST_NAME, SIGNATURE_NAME}):
            raise UserError(f"{archive}: member {top}/{rel}: not listed in {MANIFEST_NAME}")
        for rel in sorted(set(listed) - set(members)):
            raise UserError(f"{archive}: {top}/{rel}: listed in {MANIFEST_NAME}, missing from the archive")
        files = sorted(listed)
        repair_dir(dest)  # debris of an interrupted replace below
        if _reuse(dest, manifest_bytes, signature):
            return CheckedBundle(str(dest), manifest["version"], files, False, signer, _copy(dest, files))
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            for rel in files:
                target = staging / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                handle = tar.extractfile(members[rel])
                assert handle is not None
                _write_checked(handle, target, listed[rel], f"{archive}:{top}/{rel}")
            (staging / MANIFEST_NAME).write_bytes(manifest_bytes)
            if signature is not None:
                (staging / SIGNATURE_NAME).write_bytes(signature)
            replace_dir(staging, dest)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return CheckedBundle(str(dest), manifest["version"], files, True, signer, _copy(dest, files))


def _has_symlink(root: Path) -> Path | None:
    """The first symlink at or under ``root`` (``lstat`` only, links never followed), or None."""
    if root.is_symlink():
        return root
    for base, dirs, names in os.walk(root, followlinks=False):
        for name in [*dirs, *names]:
            path = Path(base) / name
            if path.is_symlink():
                return path
    return None


def check_directory(bundle_dir: str | os.PathLike[str], trust: BundleTrust) -> CheckedBundle:
    """Check the bundle directory ``bundle_dir`` in place (see the module doc)."""
    root = Path(bundle_dir)
    link = _has_symlink(root)
    if link is not None:
        raise UserError(f"{link}: a symlink in the bundle (a bundle holds regular files only)")
    read_manifest(root)  # a directory that is not a bundle: say so before talking of signatures
    manifest_bytes = (root / MANIFEST_NAME).read_bytes()
    sig = root / SIGNATURE_NAME
    signer = trust.check(
        manifest_bytes, sig.read_bytes() if sig.is_file() else None, where=str(root), warn=_warn
    )
    manifest = parse_manifest(manifest_bytes, where=str(root / MANIFEST_NAME))
    files = sorted(entry["path"] for entry in manifest["files"])
    for rel in files:
        if not (root / rel).is_file():
            raise UserError(f"{root / rel}: missing (listed in {MANIFEST_NAME})")
    return CheckedBundle(str(root), manifest["version"], files, False, signer, _copy(root, files))


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``--archive A --unpack-to D`` or ``--dir B``; one JSON line, or ``error: ...`` and exit 2."""
    parser = argparse.ArgumentParser(
        prog="python -m edge_image.bundle_check", description=__doc__.splitlines()[0]
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--archive", type=Path, help="bundle archive (.tar.gz) to check and unpack")
    source.add_argument("--dir", type=Path, help="bundle directory to check in place")
    parser.add_argument("--unpack-to", type=Path, help="with --archive: the directory to unpack into")
    parser.add_argument(
        "--trusted-key",
        type=Path,
        action="append",
        default=[],
        help="PEM public key file or directory of *.pem",
    )
    parser.add_argument(
        "--allow-unsigned",
        action="store_true",
        help="accept unsigned or unverified bundles (development only)",
    )
    args = parser.parse_args(argv)
    if args.archive is not None and args.unpack_to is None:
        parser.error("--archive needs --unpack-to")
    try:
        trust = BundleTrust(load_trusted_keys(args.trusted_key), allow_unsigned=args.allow_unsigned)
        checked = (
            check_archive(args.archive, args.unpack_to, trust)
            if args.archive
            else check_directory(args.dir, trust)
        )
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(asdict(checked)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
