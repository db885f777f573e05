"""Atomic outputs: write to a temporary sibling, fsync, then rename (and fsync the parent
directory), so an interrupted run or a power cut never leaves a half-written file or directory
behind.

Replacing a directory takes two renames (``OUT`` to ``.OUT.old``, the new one to ``OUT``); a
crash between them leaves only ``.OUT.old``. :func:`repair_dir` puts it back, and
:func:`atomic_dir` and the edge service's bundle loader call it first, so the next start
repairs the debris instead of reporting a missing directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """fsync the directory ``path`` so renames and new entries in it survive a power cut."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: str | os.PathLike[str]) -> None:
    """fsync the file ``path`` (its data reaches the disk before it is renamed into place)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _old(target: Path) -> Path:
    return target.with_name(f".{target.name}.old")


def repair_dir(path: str | os.PathLike[str]) -> str | None:
    """Repair what a crash inside :func:`atomic_dir`'s replace left at ``path``.

    - ``.OUT.old`` without ``OUT`` (the crash came between the two renames): ``.OUT.old`` is
      renamed back to ``OUT``;
    - ``.OUT.old`` next to ``OUT`` (the crash came before the clean-up): ``.OUT.old`` is removed.

    Returns a one-line description of the repair, or None when there was nothing to repair.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / ".out.old").mkdir()
    >>> repair_dir(d / "out").startswith("restored")
    True
    >>> (d / "out").is_dir(), repair_dir(d / "out")
    (True, None)
    """
    target = Path(path)
    old = _old(target)
    if not old.is_dir() or old.is_symlink():
        return None
    if target.exists() or target.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
        return f"removed {old}, left by an interrupted replace of {target}"
    os.replace(old, target)
    fsync_dir(target.parent)
    return f"restored {target} from {old.name} (an interrupted replace had left only the old copy)"


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> write_bytes(d / "a.bin", b"x").read_bytes()
    b'x'
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return target


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` atomically (``\\n`` line endings kept as given)."""
    return write_bytes(path, text.encode("utf-8"))


def replace_dir(staging: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Move the finished directory ``staging`` to ``target`` (a sibling), replacing it.

    Every file and directory of ``staging`` is fsynced first. The old ``target`` becomes
    ``.TARGET.old`` until the new one is in place, so at every moment one of them exists
    (:func:`repair_dir` repairs a crash in between). Returns ``target``.
    """
    staging, target = Path(staging), Path(target)
    for base, _dirs, names in os.walk(staging):
        for name in names:
            if not os.path.islink(os.path.join(base, name)):
                fsync_file(os.path.join(base, name))
        fsync_dir(base)
    old = None
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        target.unlink()  # a file or link where the directory goes: nothing to keep
    elif target.exists():
        old = _old(target)
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    os.replace(staging, target)
    fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` only if the block succeeds.

    On error the temporary directory is removed and an existing ``path`` is untouched. Debris
    of an earlier interrupted replace is repaired first (:func:`repair_dir`); every file of the
    new directory is fsynced before the rename.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    repair_dir(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_dir(tmp, target)
