"""Reader for an existing darknet/YOLO folder, re-validated like any other source.

Source directory: class names in ``SRC/obj.names`` (or ``classes.txt``, or the only
``*.names`` file); images (``.jpg .jpeg .png .bmp``) under ``SRC/images/`` if it exists, else
anywhere under ``SRC``; each image's label file found by darknet's rule
(:func:`~training_scripts.dataset.darknet_layout.label_path_for`, ``images``→``labels``,
``.jpg``→``.txt``), falling back to the same stem with ``.txt``. Label lines are
``class cx cy w h`` normalized. An image without a label file is kept as a negative (darknet
reads it so) and counted in the report's ``source.images_without_label_file``.
"""

from __future__ import annotations

from pathlib import Path

from edge_image.contract.errors import UserError
from training_scripts.dataset.darknet_layout import label_path_for
from training_scripts.dataset.model import RawBox, RawImage, Source, yolo_to_corners

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
NAMES_FILES = ("obj.names", "classes.txt")


def find_names(src: Path) -> Path:
    """The class-names file of ``src``."""
    for name in NAMES_FILES:
        if (src / name).is_file():
            return src / name
    candidates = sorted(src.glob("*.names"))
    if len(candidates) == 1:
        return candidates[0]
    raise UserError(f"{src}: no obj.names or classes.txt (one class name per line)")


def yolo_label_path(image: Path) -> Path:
    """darknet's label path for ``image``, or ``<stem>.txt`` beside the darknet-rule folder
    when the rule leaves the suffix alone (``.jpeg``, ``.bmp``).

    >>> str(yolo_label_path(Path("/d/images/a.jpeg")))
    '/d/labels/a.txt'
    """
    label = label_path_for(image)
    return label if label.suffix == ".txt" else label.with_suffix(".txt")


def parse_label_file(label: Path, classes: list[str]) -> list[RawBox]:
    """Parse a YOLO label file into normalized corner boxes; malformed → :class:`UserError`."""
    try:
        text = label.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{label}: cannot read ({exc})") from None
    boxes: list[RawBox] = []
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        where = f"{label}:{number}"
        if len(parts) != 5:
            raise UserError(f"{where}: expected 'class cx cy w h', got {len(parts)} columns")
        try:
            class_id = int(parts[0])
            cx, cy, w, h = (float(p) for p in parts[1:])
        except ValueError:
            raise UserError(
                f"{where}: expected an integer class and 4 numbers, got {line.strip()!r}"
            ) from None
        if not 0 <= class_id < len(classes):
            raise UserError(
                f"{where}: class id {class_id} outside 0..{len(classes) - 1} ({len(classes)} names)"
            )
        boxes.append(RawBox(classes[class_id], *yolo_to_corners(cx, cy, w, h, 1.0, 1.0), where=where))
    return boxes


def read_yolo(src: Path) -> Source:
    """Read a darknet/YOLO folder into a :class:`Source` (declared classes = the names file)."""
    names_file = find_names(src)
    classes = [line.strip() for line in names_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not classes:
        raise UserError(f"{names_file}: no class names")
    if len(set(classes)) != len(classes):
        raise UserError(f"{names_file}: duplicate class names")
    root = src / "images" if (src / "images").is_dir() else src
    image_files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not image_files:
        raise UserError(f"{src}: no images ({', '.join(IMAGE_SUFFIXES)}) found")
    images: list[RawImage] = []
    without_label = 0
    for image in image_files:
        label = yolo_label_path(image)
        if label.is_file():
            boxes = parse_label_file(label, classes)
        else:
            without_label += 1
            boxes = []
        key = image.relative_to(root).as_posix()
        images.append(RawImage(key, image, boxes, normalized=True))
    info = {"names_file": names_file.name, "images_without_label_file": without_label}
    return Source("yolo", images, classes=classes, info=info)
