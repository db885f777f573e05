"""Plain data types for annotations and the pure box conversions between formats.

Coordinates in :class:`Box` are pixel corners ``x1 <= x2``, ``y1 <= y2`` (x right, y down,
origin at the top-left corner of the top-left pixel). darknet labels are
``class cx cy w h`` normalized by the image size; COCO boxes are ``x y w h`` in pixels.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, order=True)
class Box:
    """One labelled box in pixel corners.

    >>> Box("red-circle", 10, 20, 50, 60).width
    40
    """

    cls: str
    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        """``x2 - x1`` in pixels."""
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        """``y2 - y1`` in pixels."""
        return self.y2 - self.y1


@dataclass(frozen=True)
class RawBox:
    """A box as read from an annotation file, before validation.

    ``where`` names its origin (``file:line`` or ``file: object 3``) for messages;
    ``subset`` is the Flickr27 subset column (None for other formats).
    """

    cls: str
    x1: float
    y1: float
    x2: float
    y2: float
    where: str
    subset: int | None = None


@dataclass
class RawImage:
    """One source image and its raw boxes, as a reader found them.

    ``key`` is the image's identity inside the source (relative path or file name) and decides
    the output name; ``size`` is ``(width, height)`` when the annotation states it;
    ``normalized`` means box coordinates are fractions of the image size (YOLO labels), to be
    scaled once the image has been read.
    """

    key: str
    path: Path
    boxes: list[RawBox] = field(default_factory=list)
    size: tuple[int, int] | None = None
    normalized: bool = False


@dataclass(frozen=True)
class QueryItem:
    """One Flickr27 query-set entry: an image and its brand, or None for ``none``."""

    key: str
    path: Path
    cls: str | None
    where: str


@dataclass
class Source:
    """What a reader returns: images with raw boxes, declared classes, optional query set.

    ``classes`` is the declared class list (COCO categories, YOLO names) or None when the
    class list is whatever names occur; ``dropped`` counts items a reader skipped itself
    (e.g. COCO crowd boxes); ``info`` is format-specific facts for the report.
    """

    fmt: str
    images: list[RawImage]
    classes: list[str] | None = None
    query: list[QueryItem] | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    info: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Sample:
    """A validated image: output ``name`` (no suffix), source path, size, clean boxes.

    ``subsets`` holds the Flickr27 subsets its boxes appear in (empty for other formats).
    """

    name: str
    src: Path
    width: int
    height: int
    boxes: tuple[Box, ...]
    subsets: frozenset[int] = frozenset()

    @property
    def classes(self) -> frozenset[str]:
        """The class names present in this image."""
        return frozenset(b.cls for b in self.boxes)


class BoxCheck(enum.Enum):
    """Outcome of :func:`check_box`."""

    OK = "ok"
    CLIPPED = "clipped"
    DEGENERATE = "degenerate"
    OUTSIDE = "outside"


# Overshoot below this many pixels (float noise from normalized labels) is clipped silently.
CLIP_TOLERANCE_PX = 0.01


def check_box(
    x1: float, y1: float, x2: float, y2: float, width: int, height: int
) -> tuple[BoxCheck, tuple[float, float, float, float]]:
    """Classify a pixel-corner box against a ``width`` x ``height`` image and clip it.

    Degenerate: ``x2 <= x1`` or ``y2 <= y1`` (zero or negative size). Outside: no area
    inside the image. Clipped: partly outside by more than :data:`CLIP_TOLERANCE_PX`; the
    returned corners are always clipped to the image.

    >>> check_box(-5, 0, 10, 10, 20, 20)
    (<BoxCheck.CLIPPED: 'clipped'>, (0, 0, 10, 10))
    >>> check_box(3, 0, 3, 10, 20, 20)[0]
    <BoxCheck.DEGENERATE: 'degenerate'>
    >>> check_box(25, 0, 30, 10, 20, 20)[0]
    <BoxCheck.OUTSIDE: 'outside'>
    """
    corners = (x1, y1, x2, y2)
    if not (x2 > x1 and y2 > y1):
        return BoxCheck.DEGENERATE, corners
    if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
        return BoxCheck.OUTSIDE, corners
    clipped = (max(x1, 0), max(y1, 0), min(x2, width), min(y2, height))
    if max(abs(a - b) for a, b in zip(clipped, corners, strict=True)) > CLIP_TOLERANCE_PX:
        return BoxCheck.CLIPPED, clipped
    return BoxCheck.OK, clipped


def corners_to_yolo(
    x1: float, y1: float, x2: float, y2: float, width: float, height: float
) -> tuple[float, float, float, float]:
    """Pixel corners → normalized ``(cx, cy, w, h)``.

    >>> corners_to_yolo(0, 0, 50, 100, 100, 200)
    (0.25, 0.25, 0.5, 0.5)
    """
    return ((x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height)


def yolo_to_corners(
    cx: float, cy: float, w: float, h: float, width: float, height: float
) -> tuple[float, float, float, float]:
    """Normalized ``(cx, cy, w, h)`` → pixel corners (inverse of :func:`corners_to_yolo`).

    >>> yolo_to_corners(0.25, 0.25, 0.5, 0.5, 100, 200)
    (0.0, 0.0, 50.0, 100.0)
    """
    return (
        (cx - w / 2) * width,
        (cy - h / 2) * height,
        (cx + w / 2) * width,
        (cy + h / 2) * height,
    )


def xywh_to_corners(x: float, y: float, w: float, h: float) -> tuple[float, float, float, float]:
    """COCO ``[x, y, w, h]`` (top-left + size, pixels) → pixel corners.

    >>> xywh_to_corners(10, 20, 30, 40)
    (10, 20, 40, 60)
    """
    return (x, y, x + w, y + h)


def corners_to_xywh(x1: float, y1: float, x2: float, y2: float) -> tuple[float, float, float, float]:
    """Pixel corners → COCO ``[x, y, w, h]`` (inverse of :func:`xywh_to_corners`).

    >>> corners_to_xywh(10, 20, 40, 60)
    (10, 20, 30, 40)
    """
    return (x1, y1, x2 - x1, y2 - y1)


def voc_to_corners(xmin: float, ymin: float, xmax: float, ymax: float) -> tuple[float, float, float, float]:
    """Pascal VOC 1-based ``bndbox`` → 0-based pixel corners.

    darknet's ``scripts/voc_label.py`` computes the centre as ``(xmin + xmax) / 2 - 1`` and
    the width as ``xmax - xmin``, i.e. both corners shift by one pixel; we do the same.

    >>> voc_to_corners(1, 1, 11, 21)
    (0, 0, 10, 20)
    """
    return (xmin - 1, ymin - 1, xmax - 1, ymax - 1)


def corners_to_voc(x1: float, y1: float, x2: float, y2: float) -> tuple[float, float, float, float]:
    """0-based pixel corners → VOC 1-based ``bndbox`` (inverse of :func:`voc_to_corners`).

    >>> corners_to_voc(0, 0, 10, 20)
    (1, 1, 11, 21)
    """
    return (x1 + 1, y1 + 1, x2 + 1, y2 + 1)
