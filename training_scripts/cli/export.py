"""``python -m training_scripts export``: darknet checkpoint → parity-checked model bundle.

Example::

    python -m training_scripts export --cfg yolo.cfg --weights backup/yolo_3000.weights \\
        --names obj.names --out bundle/ --formats pb,onnx,openvino,openvino-fp16 \\
        --selection selection.json --parity-images data/images/valid/*.jpg

Prints each step with progress, the parity of every format with the numpy darknet
reference, and a table of artifact sizes and export times. Exit 0 on success; a bad input
or a failed parity check prints ``error: ...`` and exits 2 with ``--out`` untouched.
"""

from __future__ import annotations

import argparse
import glob
import os
from pathlib import Path

from edge_image.contract.errors import UserError
from training_scripts.export import DEFAULT_FORMATS, FORMATS


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``export`` command."""
    parser = subparsers.add_parser(
        "export",
        help="convert a darknet checkpoint to .pb/ONNX/OpenVINO(/NCS) bundle with manifest",
        description="Convert a darknet cfg + weights into a parity-checked model bundle "
        "(frozen TensorFlow .pb + darkflow .meta, ONNX, OpenVINO IR FP32/FP16, optional NCS graph) "
        "with manifest.json.",
    )
    parser.add_argument("--cfg", required=True, type=Path, help="darknet .cfg")
    parser.add_argument("--weights", required=True, type=Path, help="darknet .weights checkpoint")
    parser.add_argument("--names", required=True, type=Path, help="class names, one per line (obj.names)")
    parser.add_argument("--out", required=True, type=Path, help="bundle directory to create or replace")
    parser.add_argument(
        "--formats",
        default=",".join(DEFAULT_FORMATS),
        help=f"comma-separated, from {', '.join(FORMATS)} (pb is always built; default %(default)s)",
    )
    parser.add_argument(
        "--selection", type=Path, help="selection.json from `select` (metrics for the manifest)"
    )
    parser.add_argument("--name", help="model name in the manifest (default: the cfg's file name)")
    parser.add_argument("--version", dest="model_version", help="model version (default: UTC timestamp)")
    parser.add_argument(
        "--parity-images",
        nargs="+",
        metavar="IMAGE",
        help="images (or glob patterns) for the parity check; default: 5 smooth random images",
    )
    parser.add_argument(
        "--parity-count", type=int, default=5, help="use at most this many images (default 5)"
    )
    parser.add_argument(
        "--parity-thresh", type=float, default=0.25, help="detection threshold for box parity (default 0.25)"
    )
    parser.add_argument(
        "--ncs-prefix",
        help="command prefix that runs mvNCCompile, {workdir} = bundle dir (default $NCSDK_COMPILE_PREFIX)",
    )
    parser.add_argument(
        "--ncs-shaves", type=int, default=12, help="SHAVE cores for mvNCCompile -s (default 12)"
    )
    parser.set_defaults(func=run)


def _expand(patterns: list[str], count: int) -> list[Path]:
    paths: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern))
        if not matches:
            raise UserError(f"--parity-images: {pattern}: no such file")
        paths.extend(Path(m) for m in matches)
    return paths[:count]


def run(args: argparse.Namespace) -> int:
    """Export and print the summary; returns the exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    from training_scripts.darknet.cfg import net_size, parse_cfg
    from training_scripts.export import bundle, parity

    if args.parity_count < 1:
        raise UserError(f"--parity-count {args.parity_count}: must be >= 1")
    if not 0.0 < args.parity_thresh < 1.0:
        raise UserError(f"--parity-thresh {args.parity_thresh}: must be between 0 and 1")
    formats = bundle.parse_formats(args.formats)
    batch = None
    if args.parity_images:
        size = net_size(parse_cfg(args.cfg))
        batch = parity.load_images(_expand(args.parity_images, args.parity_count), size)
    result = bundle.export_bundle(
        args.cfg,
        args.weights,
        args.names,
        args.out,
        formats=formats,
        selection_path=args.selection,
        name=args.name,
        version=args.model_version,
        parity_batch=batch,
        parity_thresh=args.parity_thresh,
        ncs_prefix=args.ncs_prefix,
        ncs_shaves=args.ncs_shaves,
    )
    print(result.table())
    manifest = result.manifest
    print(
        f"bundle {result.bundle} ({manifest['name']} {manifest['version']}, "
        f"{len(manifest['classes'])} classes, "
        f"{len(manifest['files'])} files) exported in {result.seconds['total']:.1f} s"
    )
    return 0
