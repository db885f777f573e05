"""Checkpoints in a backup directory: ``<name>_<iteration>.weights`` files.

``name`` is the cfg's file name without ``.cfg`` (darknet's ``basecfg``), so the files look
like darknet's own ``<cfg>_<N>.weights``. ``_final.weights`` and ``.backup`` files are not
checkpoints here: the training driver renames every segment's final weights to an
iteration-numbered file.

The driver records every checkpoint's SHA-256 in ``checkpoints.sha256`` (``sha256sum``'s
format, appended and fsynced *before* the checkpoint is renamed into place), so a checkpoint
the driver wrote and a crash damaged afterwards (a power cut can leave a file short or
zero-filled) is told apart from a checkpoint of another cfg that the user put there:
:func:`damage` says what is wrong with the first, :func:`move_aside` puts it in ``damaged/``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from edge_image.contract.errors import UserError
from edge_image.contract.manifest import file_digest

LEDGER_NAME = "checkpoints.sha256"
DAMAGED_DIR = "damaged"
_LEDGER_LINE = re.compile(r"^(?P<sha>[0-9a-f]{64})  (?P<name>[^/\0\n]+)$")
CHECKPOINT_RE = re.compile(r"^(?P<name>.+)_(?P<iteration>\d+)\.weights$")


def checkpoint_name(cfg: str | os.PathLike[str]) -> str:
    """darknet's ``basecfg``: file name without directory and extension.

    >>> checkpoint_name("/x/yolov2-tiny-obj.cfg")
    'yolov2-tiny-obj'
    """
    return Path(cfg).name.rsplit(".", 1)[0] if "." in Path(cfg).name else Path(cfg).name


def checkpoint_path(backup: str | os.PathLike[str], name: str, iteration: int) -> Path:
    """``backup/<name>_<iteration>.weights``."""
    return Path(backup) / f"{name}_{iteration}.weights"


def list_checkpoints(backup: str | os.PathLike[str], name: str | None = None) -> list[tuple[int, Path]]:
    """``[(iteration, path), ...]`` sorted by iteration; only files of ``name`` when given.

    A missing directory gives an empty list. Two files with the same iteration (two cfg
    names in one directory, ``name=None``) are an error: pass ``name``.
    """
    folder = Path(backup)
    if not folder.is_dir():
        return []
    found: dict[int, Path] = {}
    for path in folder.iterdir():
        match = CHECKPOINT_RE.match(path.name)
        if not match or not path.is_file() or (name is not None and match["name"] != name):
            continue
        iteration = int(match["iteration"])
        if iteration in found:
            raise UserError(
                f"{folder}: two checkpoints for iteration {iteration} "
                f"({found[iteration].name}, {path.name}); "
                "keep one cfg's checkpoints per backup directory"
            )
        found[iteration] = path
    return sorted(found.items())


def newest_checkpoint(backup: str | os.PathLike[str], name: str | None = None) -> tuple[int, Path] | None:
    """The checkpoint with the highest iteration, or ``None``."""
    checkpoints = list_checkpoints(backup, name)
    return checkpoints[-1] if checkpoints else None


def read_ledger(backup: str | os.PathLike[str]) -> dict[str, str]:
    """``{file name: sha256}`` from ``backup/checkpoints.sha256`` (the last line for a name wins).

    Lines that are not ``<64 hex>  <name>`` are skipped: the last one may be torn by a crash.
    """
    path = Path(backup) / LEDGER_NAME
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return {}
    found: dict[str, str] = {}
    for line in text.split("\n"):
        match = _LEDGER_LINE.match(line)
        if match:
            found[match["name"]] = match["sha"]
    return found


def record_checkpoint(backup: str | os.PathLike[str], path: str | os.PathLike[str], name: str) -> None:
    """Append ``path``'s SHA-256 under the file name ``name`` to the ledger, and fsync it.

    ``path`` is the finished file before it is renamed to ``backup/name``.
    """
    sha, _size = file_digest(path)
    ledger = Path(backup) / LEDGER_NAME
    with ledger.open("a+b") as handle:
        if handle.seek(0, os.SEEK_END):
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                handle.write(b"\n")  # a line torn by an earlier crash stays on its own line
        handle.write(f"{sha}  {name}\n".encode())
        handle.flush()
        os.fsync(handle.fileno())


def damage(path: Path, recorded_sha256: str | None, expected_size: int) -> str | None:
    """Why the checkpoint ``path`` is crash debris, or None when it is intact or not ours.

    Debris is a file whose ledger entry (``recorded_sha256``) no longer matches its bytes.
    A file without an entry is judged by the caller (by its size against the cfg), since the
    driver did not write it.
    """
    if recorded_sha256 is None:
        return None
    sha, size = file_digest(path)
    if sha == recorded_sha256:
        return None
    with path.open("rb") as handle:
        handle.seek(max(size - 4096, 0))
        nul_tail = size >= 4096 and handle.read() == bytes(4096)
    sized = f"{size} bytes" + (f" (the cfg needs {expected_size})" if size != expected_size else "")
    return (
        f"{sized}, SHA-256 {sha[:12]}... instead of the "
        f"{recorded_sha256[:12]}... recorded when it was saved"
        + (", ending in zeros" if nul_tail else "")
        + ": damaged after it was written (a power cut?)"
    )


def move_aside(backup: str | os.PathLike[str], path: Path) -> Path:
    """Move the damaged checkpoint ``path`` to ``backup/damaged/`` (never over another file)."""
    folder = Path(backup) / DAMAGED_DIR
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    n = 1
    while target.exists():
        target = folder / f"{path.name}.{n}"
        n += 1
    os.replace(path, target)
    return target
