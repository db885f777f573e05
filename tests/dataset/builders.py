"""Small hand-made sources (Flickr27, VOC, COCO, YOLO) for the dataset tests."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np

from training_scripts.dataset.flickr27 import QUERY_FILE, TRAINING_FILE


def write_image(path: Path, width: int = 100, height: int = 80, seed: int = 0) -> Path:
    """Write a small noisy image; the format follows the suffix (.jpg, .png, ...)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), pixels)
    return path


def flickr27_source(
    root: Path,
    lines: Sequence[str],
    images: dict[str, tuple[int, int]],
    query: Sequence[str] | None = None,
    crlf_trailing_space: bool = True,
) -> Path:
    """A Flickr27 folder: annotation ``lines`` (written like the real file: ``line \\r\\n``),
    ``images`` name → (width, height) in ``flickr_logos_27_dataset_images/``, optional query lines."""
    root.mkdir(parents=True, exist_ok=True)
    ending = " \r\n" if crlf_trailing_space else "\n"
    (root / TRAINING_FILE).write_bytes("".join(line + ending for line in lines).encode())
    for i, (name, (width, height)) in enumerate(sorted(images.items())):
        write_image(root / "flickr_logos_27_dataset_images" / name, width, height, seed=i)
    if query is not None:
        (root / QUERY_FILE).write_bytes("".join(line + "\r\n" for line in query).encode())
    return root


def cumulative(filename: str, cls: str, first: int, box: Iterable[int]) -> list[str]:
    """The lines of one box appearing in subsets ``first``..6 (Flickr27's cumulative subsets)."""
    coords = " ".join(str(v) for v in box)
    return [f"{filename} {cls} {subset} {coords}" for subset in range(first, 7)]


def voc_xml(
    filename: str, width: int, height: int, objects: Sequence[tuple[str, tuple[int, ...], int]]
) -> str:
    """A VOC annotation; objects are ``(name, (xmin, ymin, xmax, ymax), difficult)``."""
    parts = [
        f"<annotation><folder>VOC</folder><filename>{filename}</filename>",
        f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>",
    ]
    for name, (xmin, ymin, xmax, ymax), difficult in objects:
        parts.append(
            f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox><xmin>{xmin}</xmin>"
            f"<ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>"
        )
    parts.append("</annotation>")
    return "\n".join(parts) + "\n"


def voc_source(
    root: Path, images: dict[str, tuple[int, int, list[tuple[str, tuple[int, ...], int]]]]
) -> Path:
    """A VOC folder: ``images`` filename → (width, height, objects)."""
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    for i, (filename, (width, height, objects)) in enumerate(sorted(images.items())):
        write_image(root / "JPEGImages" / filename, width, height, seed=i)
        stem = Path(filename).stem
        (root / "Annotations" / f"{stem}.xml").write_text(voc_xml(filename, width, height, objects))
    return root


def coco_source(root: Path, data: dict[str, object], sizes: dict[str, tuple[int, int]]) -> Path:
    """A COCO folder: ``annotations/instances_default.json`` and ``images/<file_name>``."""
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "instances_default.json").write_text(json.dumps(data, indent=1))
    for i, (name, (width, height)) in enumerate(sorted(sizes.items())):
        write_image(root / "images" / name, width, height, seed=i)
    return root


def all_files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` → its bytes (relative POSIX paths)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
