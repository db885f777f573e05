"""Reader for COCO object-detection JSON.

Source directory: one or more ``*.json`` files in ``SRC/`` or ``SRC/annotations/`` (each with
``images``, ``annotations``, ``categories``); images found at ``file_name`` relative to
``SRC/``, ``SRC/images/``, ``SRC/<split>/`` (``instances_val2017.json`` → ``val2017/``) or the
JSON's folder. Boxes are ``[x, y, w, h]`` in pixels. ``iscrowd`` boxes are skipped and counted
(``crowd``). An annotation whose ``category_id`` is not among ``categories`` is an error, as is a
category name declared under two ids.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge_image.contract.errors import UserError, read_json
from training_scripts.dataset.model import RawBox, RawImage, Source, xywh_to_corners


def _json_files(src: Path) -> list[Path]:
    files = sorted(src.glob("*.json"))
    if (src / "annotations").is_dir():
        files += sorted((src / "annotations").glob("*.json"))
    return [f for f in files if f.is_file()]


def _load(path: Path) -> dict[str, Any]:
    data = read_json(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object with images/annotations/categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise UserError(f"{path}: missing list '{key}' (not a COCO detection file?)")
    return data


def _field(item: Any, key: str, where: str) -> Any:
    if not isinstance(item, dict) or key not in item:
        raise UserError(f"{where}: missing '{key}'")
    return item[key]


def _image_path(src: Path, json_file: Path, file_name: str) -> Path:
    split_dir = json_file.stem.removeprefix("instances_")
    candidates = [
        src / file_name,
        src / "images" / file_name,
        src / split_dir / file_name,
        src / "images" / split_dir / file_name,
        json_file.parent / file_name,
    ]
    return next((c for c in candidates if c.is_file()), candidates[0])


def read_coco_file(src: Path, path: Path, categories: dict[str, str]) -> tuple[list[RawImage], int]:
    """Read one COCO JSON file; ``categories`` (name → first file seen) collects class names.

    Returns the images and the number of crowd boxes skipped.
    """
    data = _load(path)
    names: dict[int, str] = {}
    for index, category in enumerate(data["categories"]):
        where = f"{path}: categories[{index}]"
        cid, name = _field(category, "id", where), str(_field(category, "name", where)).strip()
        if not name:
            raise UserError(f"{where}: empty 'name'")
        if name in names.values():
            raise UserError(f"{where}: category name {name!r} declared twice")
        names[cid] = name
        categories.setdefault(name, str(path))
    images: dict[Any, RawImage] = {}
    for index, image in enumerate(data["images"]):
        where = f"{path}: images[{index}]"
        image_id, file_name = _field(image, "id", where), str(_field(image, "file_name", where))
        width, height = image.get("width"), image.get("height")
        size = (int(width), int(height)) if isinstance(width, int) and isinstance(height, int) else None
        images[image_id] = RawImage(file_name, _image_path(src, path, file_name), [], size)
    crowd = 0
    for index, ann in enumerate(data["annotations"]):
        where = f"{path}: annotations[{index}]"
        image_id, cid = _field(ann, "image_id", where), _field(ann, "category_id", where)
        if image_id not in images:
            raise UserError(f"{where}: unknown image_id {image_id!r}")
        if cid not in names:
            raise UserError(f"{where}: unknown category_id {cid!r} (not in 'categories')")
        bbox = _field(ann, "bbox", where)
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, int | float) for v in bbox)):
            raise UserError(f"{where}: 'bbox' must be [x, y, width, height] numbers, got {bbox!r}")
        if ann.get("iscrowd", 0):
            crowd += 1
            continue
        images[image_id].boxes.append(RawBox(names[cid], *xywh_to_corners(*map(float, bbox)), where=where))
    return list(images.values()), crowd


def read_coco(src: Path) -> Source:
    """Read every COCO JSON file of ``src`` into a :class:`Source` (declared classes = categories)."""
    files = _json_files(src)
    if not files:
        raise UserError(f"{src}: no COCO .json file (expected SRC/*.json or SRC/annotations/*.json)")
    categories: dict[str, str] = {}
    images: dict[str, RawImage] = {}
    crowd = 0
    for path in files:
        file_images, file_crowd = read_coco_file(src, path, categories)
        crowd += file_crowd
        for image in file_images:
            existing = images.get(image.key)
            if existing is None:
                images[image.key] = image
            elif existing.path == image.path:  # the same image in two files: merge its boxes
                existing.boxes.extend(image.boxes)
            else:  # same file_name, different image (e.g. train2017/ and val2017/): keep apart
                key = f"{path.stem}/{image.key}"
                images[key] = RawImage(key, image.path, image.boxes, image.size)
    dropped = {"crowd": crowd} if crowd else {}
    return Source(
        "coco",
        list(images.values()),
        classes=sorted(categories),
        dropped=dropped,
        info={"json_files": len(files)},
    )
