"""Synthetic logo-detection data in the Flickr Logos 27 file format, plus an optional video.

:func:`make_synthetic` writes, atomically, a source folder that ``prepare flickr27`` reads::

    OUT/flickr_logos_27_dataset_images/*.jpg
    OUT/flickr_logos_27_dataset_training_set_annotation.txt   (CRLF, trailing space, cumulative subsets,
                                                                5 zero-width lines like the real file)
    OUT/flickr_logos_27_dataset_query_set_annotation.txt      (filename<TAB>class|none)
    OUT/synth.json                                             (class names and parameters)

Each image has 1-3 non-overlapping logos (20-60 % of the image side) of K very distinct
classes (:mod:`training_scripts.dataset.logos`) on a low-saturation cluttered background, with
varied scale, aspect, rotation, brightness, blur and JPEG quality. Everything is drawn from
``numpy.random.default_rng(seed)``: the same arguments give the same bytes.

:func:`make_video` writes a short video of logos moving over a background (mp4v for ``.mp4``,
MJPG for ``.avi``) and a ground-truth JSON beside it (``<stem>.truth.json``).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_image.contract.atomic import atomic_dir, write_text
from edge_image.contract.errors import UserError
from edge_image.contract.progress import Progress
from training_scripts.dataset.flickr27 import QUERY_FILE, TRAINING_FILE
from training_scripts.dataset.logos import (
    MAX_CLASSES,
    LogoClass,
    background,
    logo_class,
    paste,
    render_template,
    tight_box,
    warp_logo,
)

IMAGE_DIR = "flickr_logos_27_dataset_images"
MAX_SIDE_FRACTION = {1: 0.6, 2: 0.45, 3: 0.38}
MIN_SIDE_FRACTION = 0.2
DEGENERATE_LINES = 5


@dataclass(frozen=True)
class Placed:
    """A logo drawn on an image: class and tight pixel box (x2/y2 exclusive)."""

    cls: LogoClass
    box: tuple[int, int, int, int]


def _box_overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over the smaller box's area."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / smaller


def draw_logos(
    rng: np.random.Generator,
    image: np.ndarray,
    classes: list[LogoClass],
    templates: dict[int, tuple[np.ndarray, np.ndarray]],
    count: int,
) -> list[Placed]:
    """Paste ``count`` logos of random ``classes`` onto ``image`` (in place), fully inside and
    overlapping each other by at most 10 % of the smaller box; returns what was placed."""
    height, width = image.shape[:2]
    short = min(width, height)
    placed: list[Placed] = []
    for _ in range(count):
        cls = classes[int(rng.integers(len(classes)))]
        side = rng.uniform(MIN_SIDE_FRACTION, MAX_SIDE_FRACTION[min(count, 3)]) * short
        aspect = math.exp(rng.uniform(-0.2, 0.2))
        w, h = side * aspect, side / aspect
        angle = float(rng.uniform(-20, 20))
        canvas = int(math.hypot(w, h)) + 4
        bgr, alpha = warp_logo(templates[cls.index], w, h, angle, (canvas, canvas))
        gain = rng.uniform(0.85, 1.1)
        bgr = np.clip(bgr.astype(np.float32) * gain, 0, 255).astype(np.uint8)
        bx1, by1, bx2, by2 = tight_box(alpha)
        if bx2 - bx1 > width or by2 - by1 > height:
            continue
        for _try in range(20):
            x = int(rng.integers(-bx1, width - bx2 + 1))
            y = int(rng.integers(-by1, height - by2 + 1))
            box = (x + bx1, y + by1, x + bx2, y + by2)
            if all(_box_overlap(box, p.box) <= 0.1 for p in placed):
                drawn = paste(image, bgr, alpha, x, y)
                if drawn is not None:
                    placed.append(Placed(cls, drawn))
                break
    return placed


def _finish(rng: np.random.Generator, image: np.ndarray) -> bytes:
    """Optional blur, then JPEG bytes at a random quality 80..95."""
    if rng.random() < 0.4:
        image = cv2.GaussianBlur(image, (0, 0), float(rng.uniform(0.4, 1.0)))
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(80, 96))])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return data.tobytes()


def _check(classes: int, images: int, size: tuple[int, int]) -> None:
    if not 1 <= classes <= MAX_CLASSES:
        raise UserError(f"--classes must be 1..{MAX_CLASSES}, got {classes}")
    if images < 1:
        raise UserError(f"--images must be >= 1, got {images}")
    if min(size) < 32 or max(size) > 4096:
        raise UserError(f"--size must be between 32 and 4096 pixels per side, got {size[0]}x{size[1]}")


def make_synthetic(
    out_dir: str | os.PathLike[str],
    classes: int,
    images: int,
    seed: int,
    size: tuple[int, int] = (160, 160),
    video: str | os.PathLike[str] | None = None,
    frames: int = 60,
    video_size: tuple[int, int] = (320, 240),
) -> Path:
    """Write a synthetic Flickr27-format source into ``out_dir`` (atomically) and return it.

    ``size`` is ``(width, height)`` of the images; ``video`` (optional) also writes
    :func:`make_video` output of ``frames`` frames at ``video_size`` with the same classes.
    """
    _check(classes, images, size)
    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    looks = [logo_class(i) for i in range(classes)]
    templates = {c.index: render_template(c) for c in looks}
    width, height = size
    lines: list[tuple[str, int, str]] = []  # (class, subset, line) for sorting
    boxes_by_file: dict[str, list[Placed]] = {}
    with atomic_dir(out) as tmp:
        image_dir = tmp / IMAGE_DIR
        image_dir.mkdir()
        progress = Progress("synth", images, unit="img", interval=2.0, quiet_s=2.0)
        for i in range(images):
            image = background(rng, width, height, int(rng.integers(2, 7)))
            count = int(rng.choice([1, 2, 3], p=[0.45, 0.35, 0.2]))
            placed = draw_logos(rng, image, looks, templates, count)
            filename = f"synth{i + 1:06d}.jpg"
            (image_dir / filename).write_bytes(_finish(rng, image))
            boxes_by_file[filename] = placed
            for p in placed:
                first = int(rng.integers(1, 7))
                x1, y1, x2, y2 = p.box
                for subset in range(first, 7):
                    lines.append(
                        (p.cls.name, subset, f"{filename} {p.cls.name} {subset} {x1} {y1} {x2} {y2}")
                    )
            progress.advance()
        progress.close()
        files = sorted(f for f, placed in boxes_by_file.items() if placed)
        for _ in range(min(DEGENERATE_LINES, len(files))):
            filename = files[int(rng.integers(len(files)))]
            p = boxes_by_file[filename][0]
            x1, y1, _, y2 = p.box
            lines.append((p.cls.name, 6, f"{filename} {p.cls.name} 6 {x1} {y1} {x1} {y2}"))
        lines.sort()
        (tmp / TRAINING_FILE).write_bytes("".join(f"{line} \r\n" for _, _, line in lines).encode())

        query_lines = []
        n_query = max(2, 2 * round(images / 20))
        for q in range(n_query):
            image = background(rng, width, height, int(rng.integers(2, 7)))
            label = "none"
            if q % 2 == 0:
                look = looks[(q // 2) % classes]
                placed = draw_logos(rng, image, [look], templates, 1)
                label = look.name if placed else "none"
            filename = f"query{q + 1:06d}.jpg"
            (image_dir / filename).write_bytes(_finish(rng, image))
            query_lines.append(f"{filename}\t{label}\r\n")
        (tmp / QUERY_FILE).write_bytes("".join(query_lines).encode())
        meta = {
            "classes": [c.name for c in looks],
            "images": images,
            "query": n_query,
            "seed": seed,
            "size": [width, height],
        }
        (tmp / "synth.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    if video is not None:
        make_video(video, classes, frames, seed, video_size)
    return out


def make_video(
    path: str | os.PathLike[str],
    classes: int,
    frames: int,
    seed: int,
    size: tuple[int, int] = (320, 240),
    fps: float = 10.0,
) -> Path:
    """Write a video of up to 3 logos (distinct classes) drifting and bouncing over a background.

    Codec: MJPG for ``.avi``, mp4v otherwise. Beside it, ``<stem>.truth.json`` holds the class
    names and, per frame, ``[class_name, x1, y1, x2, y2]`` boxes normalized to the frame size.
    """
    _check(classes, 1, size)
    if frames < 1:
        raise UserError(f"--frames must be >= 1, got {frames}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 1])
    width, height = size
    looks = [logo_class(i) for i in range(classes)]
    chosen = [looks[i] for i in rng.permutation(classes)[: min(3, classes)]]
    templates = {c.index: render_template(c) for c in chosen}
    backdrop = background(rng, width, height, 6)
    short = min(width, height)
    movers = []
    for look in chosen:
        side = rng.uniform(0.25, 0.4) * short
        movers.append(
            {
                "look": look,
                "side": side,
                "pos": np.array([rng.uniform(0, width - side), rng.uniform(0, height - side)]),
                "vel": rng.uniform(2, 6, size=2) * rng.choice([-1, 1], size=2),
                "angle": float(rng.uniform(-15, 15)),
                "spin": float(rng.uniform(-1.5, 1.5)),
            }
        )
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if target.suffix.lower() == ".avi" else "mp4v"))
    tmp = target.with_name(f".{target.stem}.tmp{target.suffix}")
    writer = cv2.VideoWriter(str(tmp), fourcc, fps, (width, height))
    if not writer.isOpened():
        raise UserError(f"--video {target}: OpenCV cannot write this container (use .mp4 or .avi)")
    truth: list[list[list[object]]] = []
    try:
        for _ in range(frames):
            frame = backdrop.copy()
            boxes: list[list[object]] = []
            for m in movers:
                side = m["side"]
                canvas = int(side * 1.5) + 4
                bgr, alpha = warp_logo(templates[m["look"].index], side, side, m["angle"], (canvas, canvas))
                x = int(m["pos"][0] + side / 2 - canvas / 2)
                y = int(m["pos"][1] + side / 2 - canvas / 2)
                drawn = paste(frame, bgr, alpha, x, y)
                if drawn is not None:
                    x1, y1, x2, y2 = drawn
                    boxes.append([m["look"].name, x1 / width, y1 / height, x2 / width, y2 / height])
                m["pos"] = m["pos"] + m["vel"]
                for axis, limit in ((0, width), (1, height)):
                    if m["pos"][axis] < 0 or m["pos"][axis] + side > limit:
                        m["vel"][axis] *= -1
                        m["pos"][axis] = float(np.clip(m["pos"][axis], 0, limit - side))
                m["angle"] += m["spin"]
            noise = rng.normal(0, 2.0, size=frame.shape)
            writer.write(np.clip(frame + noise, 0, 255).astype(np.uint8))
            truth.append([[b[0], *(round(float(v), 6) for v in b[1:])] for b in boxes])
    except BaseException:
        writer.release()
        tmp.unlink(missing_ok=True)
        raise
    writer.release()
    os.replace(tmp, target)
    meta = {"classes": [c.name for c in looks], "fps": fps, "size": [width, height], "frames": truth}
    write_text(target.with_name(f"{target.stem}.truth.json"), json.dumps(meta) + "\n")
    return target
