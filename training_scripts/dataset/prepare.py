"""Source dataset (Flickr27, VOC, COCO, YOLO) → darknet layout, atomically, with a report.

``prepare_dataset("flickr27", src, out)`` reads the source, validates images and boxes,
splits, and writes ``out`` (see :mod:`training_scripts.dataset.darknet_layout`) through a
temporary sibling directory renamed into place at the end, so an interrupted run leaves
no ``out`` (and an existing ``out`` untouched).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from edge_image.contract.atomic import atomic_dir
from edge_image.contract.errors import UserError
from training_scripts.dataset.formats import FORMATS
from training_scripts.dataset.model import Sample, Source
from training_scripts.dataset.report import build_report, content_digest, plot_report, report_json
from training_scripts.dataset.split import make_split, normalize_split
from training_scripts.dataset.validate import Tally, assign_names, validate_images, validate_query
from training_scripts.dataset.write import (
    check_final_location,
    write_layout,
    write_query_images,
    write_samples,
)


def read_source(fmt: str, src: Path) -> Source:
    """Run the reader for ``fmt`` on ``src``."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if not src.is_dir():
        raise UserError(f"--src {src}: not a directory")
    module_name, function = FORMATS[fmt]
    reader: Callable[[Path], Source] = getattr(importlib.import_module(module_name), function)
    return reader(src)


def restrict_classes(source: Source, allowed: Sequence[str], names_file: str) -> None:
    """Raise on the first box (or query entry) whose class is not in ``allowed``."""
    known = set(allowed)
    for image in sorted(source.images, key=lambda im: im.key):
        for box in image.boxes:
            if box.cls not in known:
                raise UserError(f"{box.where}: unknown class {box.cls!r} (not in {names_file})")
    source.classes = sorted(known)


def check_out(out: Path) -> None:
    """Refuse to replace a directory that is not a prepared dataset or that holds trained weights."""
    if not out.exists():
        return
    if not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a directory")
    entries = list(out.iterdir())
    if entries and not (out / "report.json").is_file():
        raise UserError(
            f"--out {out}: exists, is not empty and is not a prepared dataset; choose another --out"
        )
    backup = out / "backup"
    if backup.is_dir() and any(backup.iterdir()):
        raise UserError(
            f"--out {out}: backup/ holds files (trained weights?); move them or choose another --out"
        )


def prepare_dataset(
    fmt: str,
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    split: Sequence[float] = (80, 10, 10),
    seed: int = 0,
    rule: str = "stratified",
    names: str | os.PathLike[str] | None = None,
) -> dict[str, object]:
    """Prepare ``src`` (format ``fmt``) into darknet layout at ``out``; return the report dict.

    ``split`` is TRAIN,VALID,TEST weights; ``rule`` is ``stratified`` or ``seed-subset6``;
    ``names`` optionally restricts classes to a names file (one per line): any other class is
    an error (VOC/COCO "unknown class").
    """
    src_path, out_path = Path(src), Path(out).resolve()
    fractions = normalize_split(split)
    check_final_location(out_path)
    check_out(out_path)
    source = read_source(fmt, src_path)
    if names is not None:
        names_path = Path(names)
        try:
            allowed = [n.strip() for n in names_path.read_text(encoding="utf-8").splitlines() if n.strip()]
        except OSError as exc:
            raise UserError(f"--names {names_path}: cannot read ({exc.strerror})") from exc
        restrict_classes(source, allowed, str(names_path))

    tally = Tally()
    for reason, count in source.dropped.items():
        tally.dropped[reason] += count
    train_keys = sorted(im.key for im in source.images)
    in_training = set(train_keys)
    query_items = [q for q in source.query or () if q.key not in in_training]
    for item in source.query or ():
        if item.key in in_training:
            tally.drop("query_in_training", item.where)
    output_names = assign_names(train_keys + sorted(q.key for q in query_items))

    samples = validate_images(source.images, tally, output_names)
    if not samples:
        dropped = ", ".join(f"{k}={v}" for k, v in sorted(tally.dropped.items())) or "nothing dropped"
        raise UserError(f"--src {src_path}: empty dataset: no usable images ({dropped})")
    present = {b.cls for s in samples for b in s.boxes}
    classes = sorted(set(source.classes) | present if source.classes is not None else present)
    if not classes:
        raise UserError(f"--src {src_path}: empty dataset: no boxes")
    class_ids = {name: i for i, name in enumerate(classes)}

    query: list[tuple[Sample, str | None]] | None = None
    if source.query is not None:
        for item in query_items:
            if item.cls is not None and item.cls not in class_ids:
                raise UserError(f"{item.where}: unknown class {item.cls!r} (not among the training classes)")
        query = validate_query(query_items, tally, output_names)

    warn(tally)
    lists = make_split(samples, fractions, seed, rule)
    report = build_report(fmt, classes, lists, tally, rule, fractions, seed, query, source.info)
    with atomic_dir(out_path) as tmp:
        write_samples(tmp, samples, class_ids)
        if query is not None:
            write_query_images(tmp, [s for s, _ in query])
        write_layout(tmp, out_path, classes, lists, [s for s, _ in query] if query is not None else None)
        report["content_sha256"] = content_digest(tmp)
        (tmp / "report.json").write_text(report_json(report), encoding="utf-8")
        plot_report(report, lists, tmp / "report.png")
    return report


def warn(tally: Tally) -> None:
    """Print one ``warning:`` line per drop reason (with up to 3 examples) and for clipped boxes."""
    for reason, count in sorted(tally.dropped.items()):
        examples = "; ".join(tally.examples.get(reason, []))
        where = f" (e.g. {examples})" if examples else ""
        print(f"warning: dropped {count} x {reason}{where}", file=sys.stderr)
    if tally.clipped:
        print(f"warning: clipped {tally.clipped} boxes partly outside their image", file=sys.stderr)
    if tally.size_mismatch:
        print(
            f"warning: {tally.size_mismatch} images differ in size from their annotation; "
            "boxes were checked against the real size",
            file=sys.stderr,
        )


def summary(report: dict[str, object], out: Path) -> str:
    """A few human-readable lines about a prepared dataset."""
    dropped = report["dropped"] or {}
    lines = [
        f"prepared {out}: {report['images']} images, {report['boxes']} boxes, "
        f"{len(report['classes'])} classes",  # type: ignore[arg-type]
        "split: " + ", ".join(f"{k}={v}" for k, v in report["split"].items()),  # type: ignore[attr-defined]
        "dropped: " + (", ".join(f"{k}={v}" for k, v in dropped.items()) or "none"),  # type: ignore[attr-defined]
        f"clipped boxes: {report['clipped']}",
    ]
    if "query" in report:
        lines.append(f"query images: {report['query']}")
    if report.get("leaky_split"):
        lines.append(f"WARNING: lists overlap (leaky split): {report['overlap']}")
    return "\n".join(lines)
