"""Camera frame → network input: resize, BGR→RGB, scale to 0..1, NHWC or NCHW batch of one.

Tiny-YOLOv2 (darknet and darkflow alike) wants RGB scaled by 1/255; forgetting either
gives "no boxes". The resize is a plain stretch to the network size (darkflow's and the
NCS examples' behaviour), not a letterbox.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

InputLayout = Literal["nhwc", "nchw"]


def preprocess(
    image: np.ndarray, height: int, width: int, layout: InputLayout = "nhwc", dtype: type = np.float32
) -> np.ndarray:
    """BGR ``uint8`` (H, W, 3) → ``(1, height, width, 3)`` or ``(1, 3, height, width)`` RGB / 255.

    >>> img = np.zeros((4, 6, 3), np.uint8); img[..., 2] = 255  # pure red in BGR
    >>> x = preprocess(img, 2, 2)
    >>> x.shape, x.dtype.name, x[0, 0, 0].tolist()
    ((1, 2, 2, 3), 'float32', [1.0, 0.0, 0.0])
    >>> preprocess(img, 2, 2, "nchw", np.float16).shape
    (1, 3, 2, 2)
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a BGR image (H, W, 3), got shape {image.shape}")
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    rgb = cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)
    blob = rgb.astype(np.float32) * np.float32(1.0 / 255.0)
    if layout == "nchw":
        blob = np.transpose(blob, (2, 0, 1))
    elif layout != "nhwc":
        raise ValueError(f"unknown input layout {layout!r}")
    return np.ascontiguousarray(blob[None], dtype=dtype)
