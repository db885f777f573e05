"""``python -m edge_image COMMAND``: ``serve``, ``check-config``, ``devices``, ``bench``.

- ``serve --config FILE``: run the detection service (see ``edge_image/README.md``).
- ``check-config --config FILE``: validate the config and the model bundle (checksums), exit.
- ``devices [--config FILE]``: one line per backend saying what it finds on this node (mvnc: the
  NCSDK API generation, the libmvnc it loaded and the sticks; OpenVINO: its devices; OpenCV), and
  with a config, which backend ``auto`` picks for its bundle.
- ``bench --model BUNDLE --source VIDEO``: per-stage latency and FPS per backend, darknet CPU
  on the same frames, and the sgemm roofline; prints a Markdown table.

Errors in input print one line ``error: ...`` and exit 2; no tracebacks.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from edge_image import __version__
from edge_image.contract.errors import run_command


def _serve(args: argparse.Namespace) -> int:
    from edge_image.config import load_config
    from edge_image.service import serve

    config = load_config(args.config)
    logging.getLogger().setLevel(config.log_level)
    return asyncio.run(serve(config))


def _check_config(args: argparse.Namespace) -> int:
    from edge_image.config import load_config
    from edge_image.contract.manifest import load_bundle

    config = load_config(args.config)
    bundle = load_bundle(config.model.bundle, trust=config.model.trust())
    print(
        f"{args.config}: ok — model {bundle.manifest['name']} {bundle.manifest['version']} "
        f"({len(bundle.classes)} classes, {len(bundle.manifest['files'])} files verified, "
        f"signed by {bundle.signer}), "
        f"source {config.source.describe()}, backend {config.backend.kind}, "
        f"http://{config.server.host}:{config.server.port}/"
    )
    return 0


def _devices(args: argparse.Namespace) -> int:
    from edge_image.backends import PROBES, resolve_kind

    for name, probe in PROBES.items():
        print(f"{name}: {probe()}")
    if args.config:
        from edge_image.config import load_config
        from edge_image.contract.manifest import load_bundle

        config = load_config(args.config)
        bundle = load_bundle(config.model.bundle)
        picked = resolve_kind(config.backend, bundle)
        print(f"{config.backend.kind} -> {picked} for {bundle.manifest['version']}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from edge_image.bench import run_bench

    return run_bench(
        bundle_dir=Path(args.model),
        source=Path(args.source),
        backends=args.backends,
        frames=args.frames,
        darknet=args.darknet,
        plot=Path(args.plot) if args.plot else None,
        output=Path(args.output) if args.output else None,
    )


def build_parser() -> argparse.ArgumentParser:
    """Top-level parser with the commands."""
    parser = argparse.ArgumentParser(
        prog="python -m edge_image",
        description="Edge detection service: serve, check-config, devices, bench.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser("serve", help="run the detection service")
    serve.add_argument("--config", required=True, help="YAML config (see edge_image/config.example.yml)")
    serve.set_defaults(func=_serve)
    check = sub.add_parser("check-config", help="validate a config and its model bundle, then exit")
    check.add_argument("--config", required=True)
    check.set_defaults(func=_check_config)
    devices = sub.add_parser("devices", help="what each backend finds on this node (sticks, devices)")
    devices.add_argument("--config", default=None, help="also say which backend the config's auto picks")
    devices.set_defaults(func=_devices)
    bench = sub.add_parser("bench", help="per-stage latency and FPS per backend vs darknet and the roofline")
    bench.add_argument("--model", required=True, help="model bundle directory")
    bench.add_argument("--source", required=True, help="video file (or image folder) to read frames from")
    bench.add_argument(
        "--backends",
        nargs="+",
        default=None,
        choices=("openvino", "opencv", "mvnc"),
        help="backends to time (default: every available one)",
    )
    bench.add_argument("--frames", type=int, default=60, help="frames to time per backend (default 60)")
    bench.add_argument(
        "--darknet",
        default=None,
        help="darknet binary for the CPU comparison "
        "(default: $DARKNET_BIN, then darknet on PATH; 'none' skips)",
    )
    bench.add_argument("--plot", default=None, help="also write a PNG bar chart of per-stage latency here")
    bench.add_argument("--output", default=None, help="also write the Markdown table here")
    bench.set_defaults(func=_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the command; :class:`UserError` becomes ``error: ...`` on stderr."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_command(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
