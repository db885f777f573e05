"""darknet's on-disk dataset layout: ``obj.data``, image lists, label files and the path rule.

A prepared dataset directory ``OUT`` holds::

    OUT/images/<name>.jpg      OUT/labels/<name>.txt  (``class cx cy w h`` normalized)
    OUT/obj.names              OUT/train.txt, valid.txt, test.txt [, query.txt]  (absolute paths)
    OUT/obj.data               OUT/backup/   OUT/report.json   OUT/report.png
    OUT/query/<name>.jpg       (Flickr27 query-set images, listed in query.txt; no labels)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edge_image.contract.errors import UserError

# pjreddie src/data.c fill_truth_detection (what `detector train` uses): each pair replaces the
# FIRST occurrence (strstr) in the path built so far.
_DARKNET_LABEL_RULE: tuple[tuple[str, str], ...] = (
    ("images", "labels"),
    ("JPEGImages", "labels"),
    ("raw", "labels"),
    (".jpg", ".txt"),
    (".png", ".txt"),
    (".JPG", ".txt"),
    (".JPEG", ".txt"),
)


def label_path_for(image_path: str | os.PathLike[str]) -> Path:
    """The label file darknet reads for ``image_path`` (first ``images``→``labels``, ``.jpg``→``.txt``, …).

    >>> str(label_path_for("/d/images/a.jpg"))
    '/d/labels/a.txt'
    >>> str(label_path_for("/d/raw/images/a.jpg"))  # darknet's rule, first occurrence only
    '/d/labels/labels/a.txt'
    """
    text = os.fspath(image_path)
    for find, replace in _DARKNET_LABEL_RULE:
        text = text.replace(find, replace, 1)
    return Path(text)


def read_data_file(obj_data_path: str | os.PathLike[str]) -> dict[str, str]:
    """Parse a darknet ``.data`` file (``key = value`` lines, ``#`` comments) into a dict.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "obj.data"
    >>> _ = p.write_text("classes= 3\\ntrain = /d/train.txt\\n# c\\n")
    >>> read_data_file(p)
    {'classes': '3', 'train': '/d/train.txt'}
    """
    path = Path(obj_data_path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UserError(f"{path}: cannot read data file ({exc.strerror})") from exc
    result: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{path}:{number}: expected 'key = value', got {stripped!r}")
        result[key.strip()] = value.strip()
    return result


def read_list(path: str | os.PathLike[str]) -> list[Path]:
    """Read an image list (one path per line, blank lines ignored).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "train.txt"
    >>> _ = p.write_text("/d/images/a.jpg\\n\\n/d/images/b.jpg\\n")
    >>> [str(x) for x in read_list(p)]
    ['/d/images/a.jpg', '/d/images/b.jpg']
    """
    list_path = Path(path)
    try:
        text = list_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{list_path}: cannot read image list ({exc.strerror})") from exc
    return [Path(line.strip()) for line in text.splitlines() if line.strip()]


def read_labels(label_path: str | os.PathLike[str]) -> np.ndarray:
    """Read a darknet label file into a float64 array ``(N, 5)``: ``class, cx, cy, w, h``.

    A missing or empty file gives ``(0, 5)`` (darknet treats both as "no objects").

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> _ = p.write_text("1 0.5 0.5 0.25 0.125\\n")
    >>> read_labels(p).tolist()
    [[1.0, 0.5, 0.5, 0.25, 0.125]]
    """
    path = Path(label_path)
    if not path.exists():
        return np.zeros((0, 5), np.float64)
    rows: list[list[float]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 5:
            raise UserError(f"{path}:{number}: expected 'class cx cy w h', got {line.strip()!r}")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise UserError(f"{path}:{number}: not a number in {line.strip()!r}") from None
        if not values[0].is_integer() or values[0] < 0:
            raise UserError(f"{path}:{number}: class id must be a non-negative integer, got {parts[0]!r}")
        rows.append(values)
    return np.asarray(rows, np.float64).reshape(-1, 5)


def format_label_line(class_id: int, cx: float, cy: float, w: float, h: float) -> str:
    """One darknet label line with 6 decimals.

    >>> format_label_line(2, 0.5, 0.25, 0.1, 0.2)
    '2 0.500000 0.250000 0.100000 0.200000'
    """
    return f"{class_id} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}"


def data_file_text(out: Path, classes: int, extra: dict[str, Path] | None = None) -> str:
    """The ``obj.data`` text for a dataset at absolute ``out``.

    >>> print(data_file_text(Path("/d"), 3), end="")
    classes=3
    train=/d/train.txt
    valid=/d/valid.txt
    names=/d/obj.names
    backup=/d/backup
    """
    lines = [
        f"classes={classes}",
        f"train={out / 'train.txt'}",
        f"valid={out / 'valid.txt'}",
        f"names={out / 'obj.names'}",
        f"backup={out / 'backup'}",
    ]
    lines += [f"{key}={value}" for key, value in (extra or {}).items()]
    return "\n".join(lines) + "\n"


def read_names(path: str | os.PathLike[str]) -> list[str]:
    """Class labels from ``obj.names``: one per non-empty line, surrounding whitespace stripped.

    The one reader of names files (training, evaluation, export): :class:`UserError` when the
    file is missing or unreadable, not UTF-8, or names no class.
    """
    names_path = Path(path)
    try:
        text = names_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{names_path}: names file not found") from None
    except OSError as exc:
        raise UserError(f"{names_path}: cannot read class names ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise UserError(f"{names_path}: not UTF-8 text ({exc.reason})") from None
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise UserError(f"{names_path}: no class names")
    return names
