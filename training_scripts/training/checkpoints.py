"""Checkpoints in a backup directory: ``<name>_<iteration>.weights`` files.

``name`` is the cfg's file name without ``.cfg`` (darknet's ``basecfg``), so the files look
like darknet's own ``<cfg>_<N>.weights``. ``_final.weights`` and ``.backup`` files are not
checkpoints here: the training driver renames every segment's final weights to an
iteration-numbered file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from training_scripts.errors import UserError

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
