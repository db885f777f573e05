"""Procedural "logos" and backgrounds for synthetic detection data (OpenCV drawing only).

Class ``i`` has a fixed look that does not depend on any seed: shape ``SHAPES[i % 10]``,
colour ``COLOURS[(i % 10 + 3 * (i // 10)) % 10]`` (so the first 10 classes differ in both shape
and colour and up to 100 classes stay distinct pairs) and a letter glyph. Its name is
``<colour>-<shape>``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

SHAPES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "star",
    "hexagon",
    "diamond",
    "cross",
    "ring",
    "arrow",
    "crescent",
)
# BGR, saturated, far apart in hue/lightness.
COLOURS: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("red", (30, 30, 225)),
    ("green", (40, 190, 30)),
    ("blue", (220, 80, 10)),
    ("yellow", (20, 225, 245)),
    ("magenta", (210, 20, 210)),
    ("cyan", (230, 210, 20)),
    ("orange", (0, 135, 255)),
    ("purple", (140, 20, 100)),
    ("black", (25, 25, 25)),
    ("white", (250, 250, 250)),
)
MAX_CLASSES = len(SHAPES) * len(COLOURS)
TEMPLATE = 128


@dataclass(frozen=True)
class LogoClass:
    """The fixed look of one class."""

    index: int
    name: str
    shape: str
    colour: tuple[int, int, int]
    glyph: str


def logo_class(index: int) -> LogoClass:
    """The look of class ``index`` (0-based).

    >>> logo_class(0).name, logo_class(1).name, logo_class(10).name
    ('red-circle', 'green-square', 'yellow-circle')
    """
    if not 0 <= index < MAX_CLASSES:
        raise ValueError(f"class index must be 0..{MAX_CLASSES - 1}, got {index}")
    shape = SHAPES[index % len(SHAPES)]
    colour_name, colour = COLOURS[(index % len(SHAPES) + 3 * (index // len(SHAPES))) % len(COLOURS)]
    glyph = chr(ord("A") + index % 26)
    return LogoClass(index, f"{colour_name}-{shape}", shape, colour, glyph)


def _polygon(sides: int, radius: float, rotation: float, centre: float) -> np.ndarray:
    angles = rotation + np.arange(sides) * 2 * math.pi / sides
    return np.stack([centre + radius * np.cos(angles), centre + radius * np.sin(angles)], 1)


def _shape_mask(shape: str, size: int) -> np.ndarray:
    """A uint8 alpha mask (0/255, anti-aliased) of ``shape`` filling a ``size`` square."""
    mask = np.zeros((size, size), np.uint8)
    c, r = size / 2, size * 0.47
    shift = 4
    scale = 1 << shift

    def fill(points: np.ndarray, value: int = 255) -> None:
        cv2.fillPoly(mask, [np.round(points * scale).astype(np.int32)], value, cv2.LINE_AA, shift)

    if shape == "circle":
        cv2.circle(mask, (int(c * scale), int(c * scale)), int(r * scale), 255, -1, cv2.LINE_AA, shift)
    elif shape == "square":
        fill(
            np.array(
                [
                    [c - r * 0.9, c - r * 0.9],
                    [c + r * 0.9, c - r * 0.9],
                    [c + r * 0.9, c + r * 0.9],
                    [c - r * 0.9, c + r * 0.9],
                ]
            )
        )
    elif shape == "triangle":
        fill(_polygon(3, r, -math.pi / 2, c) + np.array([0, r * 0.2]))
    elif shape == "star":
        outer = _polygon(5, r, -math.pi / 2, c)
        inner = _polygon(5, r * 0.45, -math.pi / 2 + math.pi / 5, c)
        fill(np.stack([outer, inner], 1).reshape(-1, 2))
    elif shape == "hexagon":
        fill(_polygon(6, r, 0, c))
    elif shape == "diamond":
        fill(np.array([[c, c - r], [c + r * 0.7, c], [c, c + r], [c - r * 0.7, c]]))
    elif shape == "cross":
        a, b = r * 0.35, r
        fill(np.array([[c - a, c - b], [c + a, c - b], [c + a, c - a], [c + b, c - a], [c + b, c + a],
                       [c + a, c + a], [c + a, c + b], [c - a, c + b], [c - a, c + a], [c - b, c + a],
                       [c - b, c - a], [c - a, c - a]]))  # fmt: skip
    elif shape == "ring":
        cv2.circle(mask, (int(c * scale), int(c * scale)), int(r * scale), 255, -1, cv2.LINE_AA, shift)
        cv2.circle(mask, (int(c * scale), int(c * scale)), int(r * 0.55 * scale), 0, -1, cv2.LINE_AA, shift)
    elif shape == "arrow":
        a, b = r * 0.3, r * 0.15
        fill(np.array([[c - r, c - a], [c + b, c - a], [c + b, c - r * 0.8], [c + r, c],
                       [c + b, c + r * 0.8], [c + b, c + a], [c - r, c + a]]))  # fmt: skip
    elif shape == "crescent":
        cv2.circle(mask, (int(c * scale), int(c * scale)), int(r * scale), 255, -1, cv2.LINE_AA, shift)
        off = int((c + r * 0.45) * scale)
        cv2.circle(mask, (off, int((c - r * 0.2) * scale)), int(r * 0.8 * scale), 0, -1, cv2.LINE_AA, shift)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return mask


def render_template(cls: LogoClass, size: int = TEMPLATE) -> tuple[np.ndarray, np.ndarray]:
    """The class logo as ``(bgr uint8 (size, size, 3), alpha float32 (size, size) in 0..1)``."""
    mask = _shape_mask(cls.shape, size)
    bgr = np.empty((size, size, 3), np.uint8)
    bgr[:] = cls.colour
    luminance = 0.114 * cls.colour[0] + 0.587 * cls.colour[1] + 0.299 * cls.colour[2]
    ink = (20, 20, 20) if luminance > 140 else (245, 245, 245)
    font, thickness = cv2.FONT_HERSHEY_DUPLEX, max(2, size // 28)
    font_scale = size / 90
    (tw, th), _ = cv2.getTextSize(cls.glyph, font, font_scale, thickness)
    origin = ((size - tw) // 2, (size + th) // 2)
    glyph = np.zeros((size, size), np.uint8)
    cv2.putText(glyph, cls.glyph, origin, font, font_scale, 255, thickness, cv2.LINE_AA)
    glyph_alpha = (glyph.astype(np.float32) / 255) * (mask.astype(np.float32) / 255)
    bgr = (bgr * (1 - glyph_alpha[..., None]) + np.array(ink, np.float32) * glyph_alpha[..., None]).astype(
        np.uint8
    )
    return bgr, mask.astype(np.float32) / 255


def background(rng: np.random.Generator, width: int, height: int, clutter: int) -> np.ndarray:
    """A low-saturation gradient with ``clutter`` grey-ish lines/outlines/blobs and mild noise."""
    base = rng.uniform(60, 200, size=(2, 3))
    grey = base.mean(axis=1, keepdims=True)
    base = grey + (base - grey) * 0.35  # desaturate so logos stand out by colour
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (np.cos(angle) * xx / max(width, 1) + np.sin(angle) * yy / max(height, 1)).astype(np.float32)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    image = base[0] * (1 - t[..., None]) + base[1] * t[..., None]
    image = image.astype(np.uint8)
    for _ in range(clutter):
        level = float(rng.uniform(40, 220))
        tint = rng.uniform(-15, 15, size=3)
        colour = tuple(float(np.clip(level + d, 0, 255)) for d in tint)
        kind = int(rng.integers(3))
        p1 = (int(rng.integers(width)), int(rng.integers(height)))
        p2 = (int(rng.integers(width)), int(rng.integers(height)))
        thick = int(rng.integers(1, 3))
        if kind == 0:
            cv2.line(image, p1, p2, colour, thick, cv2.LINE_AA)
        elif kind == 1:
            cv2.rectangle(image, p1, p2, colour, thick, cv2.LINE_AA)
        else:
            axes = (int(rng.integers(2, max(3, width // 10))), int(rng.integers(2, max(3, height // 10))))
            cv2.ellipse(image, p1, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1, cv2.LINE_AA)
    noise = rng.normal(0, rng.uniform(1, 5), size=image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def warp_logo(
    template: tuple[np.ndarray, np.ndarray],
    width: float,
    height: float,
    angle: float,
    canvas: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Scale the template to ``width`` x ``height`` px, rotate by ``angle`` degrees, centred on a
    canvas of ``(w, h)`` px; returns ``(bgr, alpha)`` at canvas size."""
    bgr, alpha = template
    size = bgr.shape[0]
    cw, ch = canvas
    rotation = cv2.getRotationMatrix2D((0.0, 0.0), angle, 1.0)
    scale = np.diag([width / size, height / size])
    linear = rotation[:, :2] @ scale
    centre_src = np.array([size / 2, size / 2])
    offset = np.array([cw / 2, ch / 2]) - linear @ centre_src
    matrix = np.hstack([linear, offset[:, None]]).astype(np.float64)
    bgr_w = cv2.warpAffine(bgr, matrix, (cw, ch), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    alpha_w = cv2.warpAffine(alpha, matrix, (cw, ch), flags=cv2.INTER_LINEAR, borderValue=0.0)
    return bgr_w, alpha_w


def paste(
    image: np.ndarray, bgr: np.ndarray, alpha: np.ndarray, x: int, y: int
) -> tuple[int, int, int, int] | None:
    """Alpha-blend ``bgr``/``alpha`` onto ``image`` with its top-left at ``(x, y)`` (clipped).

    Returns the tight box ``(x1, y1, x2, y2)`` of alpha > 0.5 in image pixels, or None if invisible.
    """
    ih, iw = image.shape[:2]
    h, w = alpha.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, iw), min(y + h, ih)
    if x1 <= x0 or y1 <= y0:
        return None
    a = alpha[y0 - y : y1 - y, x0 - x : x1 - x, None]
    region = image[y0:y1, x0:x1].astype(np.float32)
    blended = region * (1 - a) + bgr[y0 - y : y1 - y, x0 - x : x1 - x].astype(np.float32) * a
    image[y0:y1, x0:x1] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    ys, xs = np.nonzero(a[..., 0] > 0.5)
    if xs.size == 0:
        return None
    return (x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()) + 1, y0 + int(ys.max()) + 1)


def tight_box(alpha: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box ``(x1, y1, x2, y2)`` of ``alpha > 0.5`` (exclusive x2/y2)."""
    ys, xs = np.nonzero(alpha > 0.5)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
