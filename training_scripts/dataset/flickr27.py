"""Reader for the Flickr Logos 27 dataset layout.

Source directory::

    SRC/flickr_logos_27_dataset_training_set_annotation.txt   (required)
    SRC/flickr_logos_27_dataset_query_set_annotation.txt      (optional)
    SRC/flickr_logos_27_dataset_images/*.jpg   (or SRC/images/*.jpg, or beside the files)

Training lines are ``filename class subset x1 y1 x2 y2`` (pixels, corners), CRLF with a
trailing space before the CR in the real files; subsets 1..6 are cumulative, so the same box
repeats under several subsets (deduplicated later and counted as ``duplicate``). Query lines
are ``filename<TAB>class`` with ``none`` for images without a brand.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from edge_image.contract.errors import UserError
from training_scripts.dataset.model import QueryItem, RawBox, RawImage, Source

TRAINING_FILE = "flickr_logos_27_dataset_training_set_annotation.txt"
QUERY_FILE = "flickr_logos_27_dataset_query_set_annotation.txt"
IMAGE_DIRS = ("flickr_logos_27_dataset_images", "images", ".")
SUBSETS = range(1, 7)


def _lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank lines with their 1-based numbers; CRLF and trailing blanks removed."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def image_dir(src: Path) -> Path:
    """The folder holding the images (first of :data:`IMAGE_DIRS` that exists)."""
    for name in IMAGE_DIRS:
        candidate = src / name
        if candidate.is_dir() and (name == "." or any(candidate.iterdir())):
            return candidate
    return src


def parse_training_line(line: str, where: str) -> tuple[str, RawBox]:
    """Parse one training line into ``(filename, RawBox)``; malformed → :class:`UserError`.

    >>> parse_training_line("a.jpg Adidas 1 10 20 30 40", "f:1")
    ('a.jpg', RawBox(cls='Adidas', x1=10.0, y1=20.0, x2=30.0, y2=40.0, where='f:1', subset=1))
    """
    parts = line.split()
    if len(parts) != 7:
        raise UserError(f"{where}: expected 7 columns 'filename class subset x1 y1 x2 y2', got {len(parts)}")
    filename, cls, subset_text = parts[:3]
    try:
        subset = int(subset_text)
    except ValueError:
        raise UserError(f"{where}: subset must be an integer 1..6, got {subset_text!r}") from None
    if subset not in SUBSETS:
        raise UserError(f"{where}: subset must be 1..6, got {subset}")
    try:
        x1, y1, x2, y2 = (float(v) for v in parts[3:])
    except ValueError:
        raise UserError(f"{where}: box corners must be numbers, got {' '.join(parts[3:])!r}") from None
    return filename, RawBox(cls, x1, y1, x2, y2, where, subset)


def parse_query_line(line: str, where: str) -> tuple[str, str | None]:
    """Parse ``filename<TAB>class`` (``none`` → None); malformed → :class:`UserError`.

    >>> parse_query_line("q.jpg\\tnone", "f:1")
    ('q.jpg', None)
    """
    parts = line.split("\t") if "\t" in line else line.split()
    parts = [p.strip() for p in parts if p.strip()]
    if len(parts) != 2:
        raise UserError(f"{where}: expected 'filename<TAB>class', got {line!r}")
    filename, cls = parts
    return filename, (None if cls.lower() == "none" else cls)


def read_flickr27(src: Path) -> Source:
    """Read a Flickr27 source directory into a :class:`Source` (boxes not yet validated)."""
    training = src / TRAINING_FILE
    if not training.is_file():
        raise UserError(f"{src}: no {TRAINING_FILE} (is this a Flickr Logos 27 folder?)")
    archive = src / f"{IMAGE_DIRS[0]}.tar.gz"
    if archive.is_file() and not (src / IMAGE_DIRS[0]).is_dir():
        raise UserError(f"{archive}: images still archived; run `tar xzf {archive.name}` in {src} first")
    images_dir = image_dir(src)
    by_file: dict[str, RawImage] = {}
    subset_lines: Counter[int] = Counter()
    lines = _lines(training)
    for number, line in lines:
        filename, box = parse_training_line(line, f"{training}:{number}")
        subset_lines[box.subset or 0] += 1
        image = by_file.get(filename)
        if image is None:
            image = by_file[filename] = RawImage(key=filename, path=images_dir / filename)
        image.boxes.append(box)

    query: list[QueryItem] | None = None
    query_file = src / QUERY_FILE
    if query_file.is_file():
        query = []
        seen: set[str] = set()
        for number, line in _lines(query_file):
            where = f"{query_file}:{number}"
            filename, cls = parse_query_line(line, where)
            if filename in seen:
                raise UserError(f"{where}: {filename} listed twice in the query set")
            seen.add(filename)
            query.append(QueryItem(filename, images_dir / filename, cls, where))

    info: dict[str, object] = {
        "annotation_lines": len(lines),
        "lines_per_subset": {str(s): subset_lines.get(s, 0) for s in SUBSETS},
    }
    return Source("flickr27", list(by_file.values()), classes=None, query=query, info=info)
