"""Reader for Pascal VOC XML annotations.

Source directory: ``SRC/Annotations/*.xml`` with images in ``SRC/JPEGImages/`` (the VOC
layout), or ``*.xml`` anywhere under ``SRC`` with each image beside its XML file or in
``SRC/images/``. Per object: ``<name>``, ``<difficult>`` and ``<bndbox>`` with 1-based
``xmin ymin xmax ymax``. Objects marked difficult are skipped and counted, as darknet's
``scripts/voc_label.py`` does. VOC has no class list of its own: pass ``names`` to
``prepare_dataset`` (``--names``) to make any other class an error.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from edge_image.contract.errors import UserError
from training_scripts.dataset.model import RawBox, RawImage, Source, voc_to_corners


def _xml_files(src: Path) -> list[Path]:
    annotations = src / "Annotations"
    root = annotations if annotations.is_dir() else src
    return sorted(p for p in root.rglob("*.xml") if p.is_file())


def _number(element: ET.Element, tag: str, where: str) -> float:
    text = element.findtext(tag)
    if text is None or not text.strip():
        raise UserError(f"{where}: missing <{tag}>")
    try:
        return float(text.strip())
    except ValueError:
        raise UserError(f"{where}: <{tag}> is not a number: {text.strip()!r}") from None


def _image_path(src: Path, xml_file: Path, filename: str) -> Path:
    candidates = [
        src / "JPEGImages" / filename,
        xml_file.parent / filename,
        xml_file.parent.parent / "JPEGImages" / filename,
        src / "images" / filename,
        src / filename,
    ]
    return next((c for c in candidates if c.is_file()), candidates[0])


def parse_voc_xml(xml_file: Path) -> tuple[str, tuple[int, int] | None, list[RawBox], int]:
    """Parse one VOC XML file → ``(filename, (width, height) or None, boxes, difficult_skipped)``."""
    try:
        root = ET.parse(xml_file).getroot()
    except ET.ParseError as exc:
        line = exc.position[0]
        raise UserError(
            f"{xml_file}:{line}: malformed XML ({exc.msg if hasattr(exc, 'msg') else exc})"
        ) from None
    except OSError as exc:
        raise UserError(f"{xml_file}: cannot read ({exc.strerror})") from None
    filename = (root.findtext("filename") or "").strip()
    if not filename:
        raise UserError(f"{xml_file}: missing <filename>")
    size = None
    size_element = root.find("size")
    if size_element is not None and size_element.findtext("width") and size_element.findtext("height"):
        width = _number(size_element, "width", f"{xml_file}: <size>")
        height = _number(size_element, "height", f"{xml_file}: <size>")
        if width > 0 and height > 0:
            size = (int(width), int(height))
    boxes: list[RawBox] = []
    difficult = 0
    for index, obj in enumerate(root.findall("object"), 1):
        where = f"{xml_file}: object {index}"
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise UserError(f"{where}: missing <name>")
        if (obj.findtext("difficult") or "0").strip() == "1":
            difficult += 1
            continue
        bndbox = obj.find("bndbox")
        if bndbox is None:
            raise UserError(f"{where}: missing <bndbox>")
        xmin, ymin, xmax, ymax = (_number(bndbox, tag, where) for tag in ("xmin", "ymin", "xmax", "ymax"))
        boxes.append(RawBox(name, *voc_to_corners(xmin, ymin, xmax, ymax), where=where))
    return filename, size, boxes, difficult


def read_voc(src: Path) -> Source:
    """Read every VOC XML file under ``src`` into a :class:`Source`."""
    files = _xml_files(src)
    if not files:
        raise UserError(f"{src}: no VOC .xml annotation files (expected SRC/Annotations/*.xml)")
    parsed = [(xml_file, *parse_voc_xml(xml_file)) for xml_file in files]
    name_count = Counter(filename for _, filename, _, _, _ in parsed)
    images: list[RawImage] = []
    difficult = 0
    for xml_file, filename, size, boxes, skipped in parsed:
        difficult += skipped
        key = filename
        if name_count[filename] > 1:  # same file name in several folders: keep them apart
            key = xml_file.relative_to(src).with_suffix(Path(filename).suffix or ".jpg").as_posix()
        images.append(RawImage(key, _image_path(src, xml_file, filename), boxes, size))
    dropped = {"difficult": difficult} if difficult else {}
    return Source("voc", images, classes=None, dropped=dropped, info={"xml_files": len(files)})
