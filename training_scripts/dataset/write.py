"""Write validated samples in darknet's layout into a (temporary) directory.

Lists and ``obj.data`` hold absolute paths at the FINAL location ``final`` (the directory the
temporary one is renamed to), because darknet reads them as given.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from edge_image.contract.errors import UserError
from edge_image.contract.progress import Progress
from training_scripts.dataset.darknet_layout import (
    data_file_text,
    format_label_line,
    label_path_for,
)
from training_scripts.dataset.model import Sample, corners_to_yolo
from training_scripts.dataset.validate import JPEG_MAGIC

JPEG_QUALITY = 95
QUERY_DIR = "query"


def check_final_location(final: Path) -> None:
    """Refuse an output path on which darknet's label rule would look in the wrong place."""
    probe = final / "images" / "x.jpg"
    expected = final / "labels" / "x.txt"
    found = label_path_for(probe)
    if found != expected:
        raise UserError(
            f"--out {final}: darknet would look for labels of {probe} at {found} "
            "(the path contains 'images', 'raw', 'JPEGImages' or '.jpg' before OUT/images); "
            "choose another --out"
        )


def image_bytes(sample: Sample) -> bytes:
    """The JPEG bytes for ``sample``: the source file itself if it is a JPEG, else re-encoded."""
    data = sample.src.read_bytes()
    if data.startswith(JPEG_MAGIC):
        return data
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if pixels is None:
        raise UserError(f"{sample.src}: image became unreadable while writing")
    ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise UserError(f"{sample.src}: OpenCV could not encode it as JPEG")
    return encoded.tobytes()


def label_text(sample: Sample, class_ids: dict[str, int]) -> str:
    """The darknet label file content for ``sample`` (boxes sorted by class id, then position)."""
    rows = sorted(
        (class_ids[b.cls], *corners_to_yolo(b.x1, b.y1, b.x2, b.y2, sample.width, sample.height))
        for b in sample.boxes
    )
    return "".join(format_label_line(*row) + "\n" for row in rows)


def write_samples(tmp: Path, samples: Sequence[Sample], class_ids: dict[str, int]) -> None:
    """Copy images into ``tmp/images`` and write their labels into ``tmp/labels``."""
    (tmp / "images").mkdir(exist_ok=True)
    (tmp / "labels").mkdir(exist_ok=True)
    progress = Progress("write", len(samples), unit="img", interval=2.0, quiet_s=2.0)
    for sample in samples:
        (tmp / "images" / f"{sample.name}.jpg").write_bytes(image_bytes(sample))
        (tmp / "labels" / f"{sample.name}.txt").write_text(label_text(sample, class_ids), encoding="utf-8")
        progress.advance()
    progress.close()


def write_query_images(tmp: Path, samples: Sequence[Sample]) -> None:
    """Copy query-set images (no boxes, so no labels) into ``tmp/query``."""
    (tmp / QUERY_DIR).mkdir(exist_ok=True)
    for sample in samples:
        (tmp / QUERY_DIR / f"{sample.name}.jpg").write_bytes(image_bytes(sample))


def list_text(final: Path, samples: Sequence[Sample], folder: str = "images") -> str:
    """An image list: one absolute final path per line.

    >>> from pathlib import Path
    >>> s = Sample("a", Path("/src/a.jpg"), 10, 10, ())
    >>> list_text(Path("/d"), [s])
    '/d/images/a.jpg\\n'
    """
    return "".join(f"{final / folder / s.name}.jpg\n" for s in samples)


def write_layout(
    tmp: Path,
    final: Path,
    classes: Sequence[str],
    split: dict[str, list[Sample]],
    query: Sequence[Sample] | None,
) -> None:
    """Write lists, ``obj.names``, ``obj.data`` and an empty ``backup/`` into ``tmp``."""
    (tmp / "obj.names").write_text("".join(f"{c}\n" for c in classes), encoding="utf-8")
    for name, samples in split.items():
        (tmp / f"{name}.txt").write_text(list_text(final, samples), encoding="utf-8")
    extra = {"test": final / "test.txt"}
    if query is not None:
        (tmp / "query.txt").write_text(list_text(final, query, QUERY_DIR), encoding="utf-8")
        extra["query"] = final / "query.txt"
    (tmp / "obj.data").write_text(data_file_text(final, len(classes), extra), encoding="utf-8")
    (tmp / "backup").mkdir(exist_ok=True)
