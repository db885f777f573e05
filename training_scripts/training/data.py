"""A prepared data set as training and evaluation see it: ``obj.data`` with absolute paths.

Relative entries of a ``.data`` file (``train``, ``valid``, ``names``, ...) are taken
relative to the file's own folder, so nothing depends on the current directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from edge_image.contract.errors import UserError
from training_scripts.dataset.darknet_layout import read_data_file, read_names


@dataclass(frozen=True)
class DataConfig:
    """What training needs from a prepared data set, as absolute paths."""

    obj_data: Path
    root: Path
    train_list: Path
    valid_list: Path | None
    names_file: Path
    names: list[str]
    options: dict[str, str]

    def resolve(self, key: str) -> Path | None:
        """Absolute path of an ``obj.data`` entry (relative ones are relative to its folder)."""
        value = self.options.get(key)
        if not value:
            return None
        path = Path(value)
        return path if path.is_absolute() else (self.root / path).resolve()


def load_data_config(data: str | os.PathLike[str]) -> DataConfig:
    """Read a data set given as its directory (``DIR/obj.data``) or the ``.data`` file itself.

    Entries (``train``, ``valid``, ``names``, ...) that are relative paths are taken relative to
    the ``.data`` file's folder.
    """
    path = Path(data).resolve()
    obj_data = path / "obj.data" if path.is_dir() else path
    if not obj_data.is_file():
        raise UserError(f"{obj_data}: no darknet .data file (pass a prepared data directory or its obj.data)")
    options = read_data_file(obj_data)
    root = obj_data.parent

    def resolve(key: str, required: bool) -> Path | None:
        value = options.get(key)
        if not value:
            if required:
                raise UserError(f"{obj_data}: missing '{key} = ...'")
            return None
        p = Path(value)
        return p if p.is_absolute() else (root / p).resolve()

    train_list = resolve("train", True)
    names_file = resolve("names", True)
    assert train_list is not None and names_file is not None
    names = read_names(names_file)
    if not names:
        raise UserError(f"{names_file}: no class names")
    classes = options.get("classes")
    if classes is not None and classes.strip() != str(len(names)):
        raise UserError(f"{obj_data}: classes={classes} but {names_file} lists {len(names)} names")
    return DataConfig(
        obj_data=obj_data,
        root=root,
        train_list=train_list,
        valid_list=resolve("valid", False),
        names_file=names_file,
        names=names,
        options=options,
    )
