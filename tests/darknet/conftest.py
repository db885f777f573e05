"""Local helpers for the darknet tests: tiny datasets and cfgs written on the fly."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from training_scripts.darknet.cfg import Section, parse_cfg
from training_scripts.darknet.profiles import generate_cfg

NAMES3 = ("circle", "square", "triangle")


def write_dataset_dir(root: Path, names: Sequence[str], n_train: int) -> Path:
    """``root/obj.names`` and ``root/train.txt`` (``n_train`` absolute image paths)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "obj.names").write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
    lines = "".join(f"{root / 'images' / f'img{i:04d}.jpg'}\n" for i in range(n_train))
    (root / "train.txt").write_text(lines, encoding="utf-8")
    return root


def write_images(root: Path, size: int, count: int, seed: int = 0) -> list[Path]:
    """``count`` PNG images ``size`` x ``size`` with blurred noise and filled shapes.

    PNG, so that darknet (stb_image) and OpenCV decode identical pixels.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        img = cv2.GaussianBlur((rng.random((size, size, 3)) * 255).astype(np.uint8), (0, 0), size / 60)
        for _ in range(3):
            r = int(rng.integers(size // 12, size // 4))
            cx, cy = (int(v) for v in rng.integers(r, size - r, 2))
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            cv2.circle(img, (cx, cy), r, colour, -1)
        path = root / f"img{i}.png"
        cv2.imwrite(str(path), img)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def smoke_cfg(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Section]]:
    """A generated cpu-smoke cfg for 3 classes, written to disk: ``(path, sections)``."""
    path = tmp_path_factory.mktemp("smoke") / "smoke.cfg"
    path.write_text(generate_cfg(NAMES3, "cpu-smoke", train_images=10, max_batches=50), encoding="utf-8")
    return path, parse_cfg(path)


@pytest.fixture(scope="session")
def voc_cfg(darknet_cfg_dir: Path) -> tuple[Path, list[Section]]:
    """darknet's own yolov2-tiny-voc.cfg: ``(path, sections)``."""
    path = darknet_cfg_dir / "yolov2-tiny-voc.cfg"
    return path, parse_cfg(path)
