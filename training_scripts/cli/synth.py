"""``python -m training_scripts synth``: draw a synthetic logo dataset in the Flickr27 format.

Writes ``--out`` (images + Flickr27 training/query annotation files, see
:mod:`training_scripts.dataset.synth`) for ``prepare flickr27``, and optionally a short
video of the same logos (``--video FILE``, ``.mp4`` or ``.avi``) with ``<stem>.truth.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edge_image.contract.errors import UserError


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``WxH`` into ``(width, height)``.

    >>> parse_size("160x120")
    (160, 120)
    """
    width, sep, height = text.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        raise UserError(f"size must look like WIDTHxHEIGHT (e.g. 160x160), got {text!r}")
    return int(width), int(height)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``synth`` command."""
    parser = subparsers.add_parser(
        "synth", help="draw a synthetic logo dataset (Flickr27 format)", description=__doc__
    )
    parser.add_argument("--out", required=True, type=Path, help="source folder to write")
    parser.add_argument("--classes", required=True, type=int, help="number of logo classes K")
    parser.add_argument("--images", required=True, type=int, help="number of training images N")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--size", default="160x160", help="image size WxH (default 160x160)")
    parser.add_argument("--video", type=Path, default=None, help="also write a video (.mp4 or .avi)")
    parser.add_argument("--frames", type=int, default=60, help="video frames (default 60)")
    parser.add_argument("--video-size", default="320x240", help="video frame size WxH (default 320x240)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the dataset (and video) and print what was written."""
    from training_scripts.dataset.synth import make_synthetic

    out = make_synthetic(
        args.out,
        args.classes,
        args.images,
        args.seed,
        size=parse_size(args.size),
        video=args.video,
        frames=args.frames,
        video_size=parse_size(args.video_size),
    )
    print(f"wrote {out} ({args.images} images, {args.classes} classes); next: prepare flickr27 --src {out}")
    if args.video is not None:
        print(f"wrote {args.video} ({args.frames} frames)")
    return 0
