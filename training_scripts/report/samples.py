"""Sample images with drawn detections (OpenCV) for the report.

Ground-truth boxes are drawn thin and white, detections in their class colour with
``label score``; small images are upscaled so the labels stay readable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_image.contract.decode import Detections
from training_scripts.evaluation.metrics import ImageTruth

MIN_SIDE = 320
JPEG_QUALITY = 85
MAX_DRAWN = 20  # detections drawn per image (best first)
MAX_LISTED = 5  # detections named in the caption


def class_colours(n: int) -> list[tuple[int, int, int]]:
    """``n`` distinct BGR colours (matplotlib's tab10/tab20 palettes).

    >>> class_colours(2)
    [(180, 119, 31), (14, 127, 255)]
    """
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    colours = []
    for k in range(n):
        r, g, b, _ = cmap(k % cmap.N)
        colours.append((round(b * 255), round(g * 255), round(r * 255)))
    return colours


@dataclass(frozen=True)
class Sample:
    """One drawn image: JPEG bytes and a caption."""

    name: str
    jpeg: bytes
    caption: str


def draw(
    image_bgr: np.ndarray,
    detections: Detections,
    truth: ImageTruth | None,
    names: Sequence[str],
    colours: Sequence[tuple[int, int, int]],
) -> np.ndarray:
    """A copy of the image (upscaled to at least :data:`MIN_SIDE`) with boxes drawn on it."""
    import cv2

    scale = max(1.0, MIN_SIDE / min(image_bgr.shape[:2]))
    canvas = (
        cv2.resize(image_bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        if scale > 1
        else (image_bgr.copy())
    )
    height, width = canvas.shape[:2]
    if truth is not None:
        for box in truth.boxes:
            x1, y1, x2, y2 = (round(v) for v in box * [width, height, width, height])
            cv2.rectangle(canvas, (x1, y1), (x2, y2), (255, 255, 255), 1, cv2.LINE_AA)
    for box, score, cls in zip(
        detections.to_pixels(width, height), detections.scores, detections.class_ids, strict=True
    ):
        colour = colours[int(cls) % len(colours)]
        x1, y1, x2, y2 = (round(v) for v in box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, 2, cv2.LINE_AA)
        text = f"{names[int(cls)]} {score:.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
        top = max(y1 - th - base - 2, 0)
        left = max(min(x1, width - tw - 4), 0)  # keep the label inside the picture
        cv2.rectangle(canvas, (left, top), (left + tw + 4, top + th + base + 2), colour, -1)
        cv2.putText(
            canvas,
            text,
            (left + 2, top + th + 1),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
    return canvas


def encode_jpeg(image_bgr: np.ndarray) -> bytes:
    """JPEG bytes of an image."""
    import cv2

    ok, data = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return data.tobytes()


def render_samples(
    model: object,
    images: Sequence[Path],
    truths: Sequence[ImageTruth] | None,
    names: Sequence[str],
    thresh: float,
) -> list[Sample]:
    """Run ``model`` (a :class:`~training_scripts.darknet.forward.DarknetModel`) on ``images``
    and draw its detections above ``thresh`` next to the ground truth."""
    from training_scripts.evaluation.evaluate import load_image

    colours = class_colours(len(names))
    samples = []
    for k, path in enumerate(images):
        image = load_image(path)
        with np.errstate(over="ignore", invalid="ignore"):
            detections = model.detect(image, thresh=thresh)  # type: ignore[attr-defined]
        truth = truths[k] if truths is not None else None
        shown = Detections(
            *(a[:MAX_DRAWN] for a in (detections.boxes, detections.scores, detections.class_ids))
        )
        canvas = draw(image, shown, truth, names, colours)
        pairs = zip(detections.scores[:MAX_LISTED], detections.class_ids[:MAX_LISTED], strict=True)
        found = ", ".join(f"{names[int(c)]} {s:.2f}" for s, c in pairs)
        if len(detections) > MAX_LISTED:
            found += f" and {len(detections) - MAX_LISTED} more"
        caption = f"{path.name}: {found or 'no detection above ' + format(thresh, 'g')}"
        samples.append(Sample(path.name, encode_jpeg(canvas), caption))
    return samples
