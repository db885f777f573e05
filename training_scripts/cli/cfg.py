"""``python -m training_scripts cfg``: write a Tiny-YOLOv2 cfg for a prepared dataset.

Reads ``DATA_DIR/obj.names`` (classes) and ``DATA_DIR/train.txt`` (one image path per
line, counted for ``max_batches``), prints the layer table, and writes ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edge_image.contract.errors import UserError


def _parse_anchors(text: str) -> tuple[float, ...]:
    """Numbers from ``--anchors``, also as the ``anchors`` command prints them (``anchors = ...``).

    >>> _parse_anchors("anchors = 1.08,1.19, 3.42,4.41")
    (1.08, 1.19, 3.42, 4.41)
    """
    text = text.strip()
    if text.startswith("anchors"):
        text = text[len("anchors") :].lstrip(" \t=")
    try:
        return tuple(float(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise UserError(f"--anchors: expected comma-separated numbers, got {text!r}") from None


def _count_lines(path: Path) -> int:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(
            f"{path}: training list not found (run `python -m training_scripts prepare` first)"
        ) from None
    return sum(1 for line in text.splitlines() if line.strip())


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``cfg`` command."""
    parser = subparsers.add_parser("cfg", help="generate a Tiny-YOLOv2 darknet cfg", description=__doc__)
    parser.add_argument(
        "--data", required=True, type=Path, help="prepared dataset dir (obj.names, train.txt)"
    )
    parser.add_argument("--profile", required=True, choices=("gpu", "cpu-smoke"), help="gpu or cpu-smoke")
    parser.add_argument("--size", type=int, default=None, help="input width=height (multiple of 32)")
    parser.add_argument("--anchors", default=None, help="10 comma-separated numbers, grid units")
    parser.add_argument(
        "--max-batches", type=int, default=None, help="override max_batches (smoke runs, demos)"
    )
    parser.add_argument("--out", required=True, type=Path, help="cfg file to write")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Generate, self-check (parse + shape inference) and write the cfg."""
    from edge_image.contract.atomic import write_text
    from training_scripts.darknet.cfg import check_classes, describe, parse_cfg, total_gflops
    from training_scripts.darknet.profiles import generate_cfg
    from training_scripts.dataset.darknet_layout import read_names

    names_path = args.data / "obj.names"
    if not names_path.is_file():
        raise UserError(
            f"{names_path}: class names not found (run `python -m training_scripts prepare` first)"
        )
    names = read_names(names_path)
    train_images = _count_lines(args.data / "train.txt")
    anchors = _parse_anchors(args.anchors) if args.anchors else None
    text = generate_cfg(
        names, args.profile, args.size, anchors, train_images=train_images, max_batches=args.max_batches
    )
    sections = parse_cfg(text, source=str(args.out))
    check_classes(sections, names, names_source=str(names_path))
    infos = describe(sections)
    for info in infos:
        print(info.summary())
    write_text(args.out, text)
    net = sections[0].options
    print(
        f"wrote {args.out}: {len(names)} classes, {net['width']}x{net['height']}, batch {net['batch']}/"
        f"{net['subdivisions']}, max_batches {net['max_batches']} (steps {net['steps']}), "
        f"{total_gflops(infos):.3f} GFLOPs per image, {train_images} training images"
    )
    return 0
