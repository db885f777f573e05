"""Draw detections, labels, FPS and latency onto a frame (OpenCV), and encode JPEG."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from edge_image.contract.decode import Detections

#: Box colour (BGR). Pure, saturated, so the browser test can find drawn boxes by colour.
BOX_BGR = (0, 255, 0)


def class_colour(class_id: int) -> tuple[int, int, int]:
    """BGR colour for a class: class 0 is :data:`BOX_BGR`, the others spread over the hue circle.

    >>> class_colour(0)
    (0, 255, 0)
    """
    if class_id == 0:
        return BOX_BGR
    hue = (60 + class_id * 47) % 180
    hsv = np.uint8([[[hue, 255, 255]]])
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def annotate(
    image: np.ndarray, detections: Detections, names: Sequence[str], fps: float, latency_ms: float
) -> np.ndarray:
    """A copy of ``image`` with boxes, ``label score`` tags and an ``FPS / latency`` banner."""
    out = image.copy()
    h, w = out.shape[:2]
    thickness = max(2, round(min(h, w) / 200))
    for box, score, cls in zip(
        detections.to_pixels(w, h), detections.scores, detections.class_ids, strict=True
    ):
        x1, y1, x2, y2 = (round(float(v)) for v in box)
        colour = class_colour(int(cls))
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thickness)
        label = f"{names[int(cls)] if int(cls) < len(names) else int(cls)} {float(score):.2f}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        top = max(0, y1 - th - base - 2)
        cv2.rectangle(out, (x1, top), (x1 + tw + 4, top + th + base + 2), colour, -1)
        cv2.putText(
            out, label, (x1 + 2, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA
        )
    banner = f"{fps:5.1f} FPS  {latency_ms:6.1f} ms"  # bottom-left, where box labels rarely are
    cv2.rectangle(out, (0, h - 22), (190, h), (0, 0, 0), -1)
    cv2.putText(out, banner, (4, h - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def encode_jpeg(image: np.ndarray, quality: int = 80) -> bytes:
    """JPEG bytes of a BGR image."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()
