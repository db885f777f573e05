"""``edge-emulated``: ``ansible/edge.yml`` into an emulated Raspberry Pi root (arm64 or armhf under
qemu-user), the service run on a video, one summary line (:mod:`training_scripts.emulation.edge_node`)."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``edge-emulated`` to the command parsers."""
    p = sub.add_parser(
        "edge-emulated",
        help="provision an emulated Raspberry Pi root with ansible/edge.yml, serve a video, print a summary",
        description="Debian bookworm root of ARCH (cached in CACHE), ansible/edge.yml with the real roles "
        "over a chroot connection (libmvnc built from the vendored NCSDK sources, the bundle archive "
        "pinned by its sha256), the service started on VIDEO, one line: 'edge-ARCH: <uname -m> "
        'backend=… frames=… detections=… mvnc="…" healthz=ok\', and the service stopped. Needs root '
        "and qemu-user-static for a foreign ARCH.",
    )
    p.add_argument(
        "--arch", default="arm64", help="arm64 (Pi OS 64-bit) or armhf (Pi OS 32-bit); default arm64"
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument("--published", type=Path, help="the publish role's latest.json (archive + sha256)")
    source.add_argument("--bundle", type=Path, help="a bundle archive (.tar.gz, from `pack`); needs --sha256")
    p.add_argument("--sha256", default="", help="sha256 of --bundle (what `pack` printed)")
    p.add_argument("--video", type=Path, help="video the service loops over")
    p.add_argument(
        "--trusted-key",
        type=Path,
        action="append",
        default=[],
        help="PEM public key the bundle is signed with (repeatable; make demo's: demo_out/signing/*.pub.pem)",
    )
    p.add_argument("--cache", type=Path, required=True, help="cache directory (root, apt and pip downloads)")
    p.add_argument("--port", type=int, default=0, help="service port on loopback (default: a free one)")
    p.add_argument(
        "--ncsdk-api", type=int, choices=(1, 2), default=2, help="NCSDK API generation (default 2)"
    )
    p.add_argument(
        "--prepare-only",
        choices=("layer", "minbase"),
        default=None,
        help="only build the cached root tarball (with the roles' packages, or plain minbase) and exit",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the emulated node and print its summary line."""
    from edge_image.contract.errors import UserError
    from training_scripts.emulation.edge_node import free_port, published_archive, run_emulated_edge
    from training_scripts.emulation.rootfs import arch

    target = arch(args.arch)
    if os.geteuid() != 0:
        raise UserError("edge-emulated: run as root (it unpacks a root filesystem, mounts /proc and chroots)")
    if args.prepare_only:
        from training_scripts.emulation.edge_node import pi_packages
        from training_scripts.emulation.rootfs import layered_tarball, rootfs_tarball

        cache = args.cache.resolve()
        started = time.monotonic()
        if args.prepare_only == "layer":
            tarball = layered_tarball(cache, target, pi_packages())
        else:
            tarball = rootfs_tarball(cache, target)
        print(f"edge-{target.debian}: root {tarball} ready after {time.monotonic() - started:.0f} s")
        return 0
    if args.published is None and args.bundle is None:
        raise UserError("edge-emulated: give --published LATEST_JSON or --bundle ARCHIVE --sha256 HEX")
    if args.video is None:
        raise UserError("--video: required (the video the service loops over)")
    if args.published is not None:
        bundle, digest = published_archive(args.published)
    else:
        bundle, digest = args.bundle, args.sha256.lower().removeprefix("sha256:")
        if len(digest) != 64:
            raise UserError("--sha256: the bundle archive's 64-hex-digit sha256 is required with --bundle")
    if not bundle.is_file():
        raise UserError(f"{bundle}: no such bundle archive")
    if not args.trusted_key:
        raise UserError(
            "--trusted-key: required (the bundle's signing public key): nodes refuse unsigned bundles"
        )
    if not args.video.is_file():
        raise UserError(f"--video: {args.video}: no such file")
    summary = run_emulated_edge(
        target,
        bundle=bundle.resolve(),
        bundle_sha256=digest,
        video=args.video.resolve(),
        cache=args.cache.resolve(),
        port=args.port or free_port(),
        trusted_keys=tuple(k.resolve() for k in args.trusted_key),
        ncsdk_api_version=args.ncsdk_api,
    )
    print(summary.line())
    return 0 if summary.healthz == "ok" and summary.frames > 0 else 1
