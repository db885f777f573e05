"""The source formats ``prepare`` reads: name → (reader module, reader function).

Kept free of heavy imports so the CLI can list the choices without loading OpenCV.
Each reader takes the source folder and returns a :class:`training_scripts.dataset.model.Source`.
"""

from __future__ import annotations

FORMATS: dict[str, tuple[str, str]] = {
    "flickr27": ("training_scripts.dataset.flickr27", "read_flickr27"),
    "voc": ("training_scripts.dataset.voc", "read_voc"),
    "coco": ("training_scripts.dataset.coco", "read_coco"),
    "yolo": ("training_scripts.dataset.yolo", "read_yolo"),
}
SPLIT_RULES: tuple[str, ...] = ("stratified", "seed-subset6")
