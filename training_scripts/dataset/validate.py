"""Validation: read each image, check/clip/dedupe its boxes, name outputs, count every drop.

Counting rules (reported in ``report.json``):

- ``dropped`` counts annotation lines/objects per reason: ``degenerate`` (zero or negative
  width/height), ``outside`` (no area inside the image), ``duplicate`` (same class and box
  as an earlier one in the image, after clipping; Flickr27's cumulative subsets land here),
  plus image-level reasons ``missing_image``, ``unreadable_image`` and ``no_boxes_left``
  (every box of an annotated image was dropped).
- ``clipped`` counts kept boxes that were partly outside and were clipped to the image.
- ``size_mismatch`` counts images whose annotated size (VOC ``<size>``, COCO width/height)
  differs from the real one; boxes are checked against the real size.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from edge_image.contract.progress import Progress
from training_scripts.dataset.model import Box, BoxCheck, QueryItem, RawImage, Sample, check_box

# Substrings darknet's label rule would rewrite inside a file name (see darknet_layout).
_DARKNET_TRIGGERS: tuple[tuple[str, str], ...] = (
    ("JPEGImages", "JPEGIMAGES"),
    ("images", "IMAGES"),
    ("raw", "RAW"),
    (".jpg", "_jpg"),
    (".png", "_png"),
    (".JPG", "_JPG"),
    (".JPEG", "_JPEG"),
)
JPEG_MAGIC = b"\xff\xd8\xff"


@dataclass
class Tally:
    """Counters of dropped items per reason, clipped boxes, and a few examples per reason."""

    dropped: Counter[str] = field(default_factory=Counter)
    clipped: int = 0
    size_mismatch: int = 0
    examples: dict[str, list[str]] = field(default_factory=dict)

    def drop(self, reason: str, where: str) -> None:
        """Count one drop for ``reason``; keep the first 3 ``where`` strings as examples."""
        self.dropped[reason] += 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < 3:
            shown.append(where)


def output_name(key: str) -> str:
    """A safe output stem for a source key: path separators → ``__``, odd characters → ``_``,
    and substrings darknet's label rule would rewrite (``images``, ``raw``, ``.jpg``…) defused.

    >>> output_name("sub/dir/Draw images.PNG")
    'sub__dir__DRAW_IMAGES'
    """
    pure = PurePosixPath(key.replace("\\", "/").strip("/"))
    stem = (pure.parent / pure.stem).as_posix() if pure.name else ""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", stem.replace("/", "__"))
    for find, replace in _DARKNET_TRIGGERS:
        stem = stem.replace(find, replace)
    return stem.lstrip(".") or "image"


def assign_names(keys: Iterable[str]) -> dict[str, str]:
    """Unique output names for ``keys`` (given in a deterministic order); clashes get ``-2``, ``-3``…

    >>> assign_names(["a/x.jpg", "b/x.png", "x.gif"])
    {'a/x.jpg': 'a__x', 'b/x.png': 'b__x', 'x.gif': 'x'}
    >>> assign_names(["x.jpg", "x.png"])
    {'x.jpg': 'x', 'x.png': 'x-2'}
    """
    used: set[str] = set()
    result: dict[str, str] = {}
    for key in keys:
        base = output_name(key)
        name, n = base, 1
        while name.lower() in used:
            n += 1
            name = f"{base}-{n}"
        used.add(name.lower())
        result[key] = name
    return result


def load_image(path: Path) -> tuple[np.ndarray | None, bytes | None]:
    """Read ``path`` as BGR pixels (EXIF orientation ignored, as darknet's loader does).

    Returns ``(pixels, raw_bytes)``; ``(None, None)`` when missing, ``(None, bytes)`` when unreadable.
    """
    try:
        data = path.read_bytes()
    except OSError:
        return None, None
    buffer = np.frombuffer(data, np.uint8)
    pixels = cv2.imdecode(buffer, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION) if data else None
    return pixels, data


def clean_boxes(image: RawImage, width: int, height: int, tally: Tally) -> list[Box]:
    """Validate ``image``'s raw boxes against its size: drop/clip/dedupe with counts."""
    kept: dict[tuple[str, float, float, float, float], Box] = {}
    clipped_keys: set[tuple[str, float, float, float, float]] = set()
    sx, sy = (width, height) if image.normalized else (1, 1)
    for raw in image.boxes:
        status, (x1, y1, x2, y2) = check_box(
            raw.x1 * sx, raw.y1 * sy, raw.x2 * sx, raw.y2 * sy, width, height
        )
        if status in (BoxCheck.DEGENERATE, BoxCheck.OUTSIDE):
            tally.drop(status.value, raw.where)
            continue
        key = (raw.cls, float(x1), float(y1), float(x2), float(y2))
        if key in kept:
            tally.drop("duplicate", raw.where)
            continue
        kept[key] = Box(*key)
        if status is BoxCheck.CLIPPED:
            clipped_keys.add(key)
    tally.clipped += len(clipped_keys)
    return sorted(kept.values())


def validate_images(images: list[RawImage], tally: Tally, names: dict[str, str]) -> list[Sample]:
    """Validate every image (sorted by key): missing/unreadable images and images left
    without boxes are dropped and counted; returns the kept :class:`Sample` list."""
    samples: list[Sample] = []
    progress = Progress("validate", len(images), unit="img", interval=2.0, quiet_s=2.0)
    for image in sorted(images, key=lambda im: im.key):
        progress.advance()
        pixels, data = load_image(image.path)
        if data is None:
            tally.drop("missing_image", str(image.path))
            continue
        if pixels is None:
            tally.drop("unreadable_image", str(image.path))
            continue
        height, width = pixels.shape[:2]
        if image.size is not None and image.size != (width, height):
            tally.size_mismatch += 1
        boxes = clean_boxes(image, width, height, tally)
        if image.boxes and not boxes:
            tally.drop("no_boxes_left", str(image.path))
            continue
        subsets = frozenset(b.subset for b in image.boxes if b.subset is not None)
        samples.append(Sample(names[image.key], image.path, width, height, tuple(boxes), subsets))
    progress.close()
    return samples


def validate_query(
    query: list[QueryItem], tally: Tally, names: dict[str, str]
) -> list[tuple[Sample, str | None]]:
    """Check query images exist and decode; returns ``(sample without boxes, class or None)``."""
    result: list[tuple[Sample, str | None]] = []
    for item in sorted(query, key=lambda q: q.key):
        pixels, data = load_image(item.path)
        if data is None:
            tally.drop("query_missing_image", str(item.path))
            continue
        if pixels is None:
            tally.drop("query_unreadable_image", str(item.path))
            continue
        height, width = pixels.shape[:2]
        result.append((Sample(names[item.key], item.path, width, height, ()), item.cls))
    return result
