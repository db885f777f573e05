"""An emulated Raspberry Pi edge node: ``ansible/edge.yml`` with the real roles into a Debian root of
the Pi's architecture (arm64 or armhf under qemu-user), the service started there on a video and
asked what it did (``make edge-arm64``, ``make edge-armhf``).

Steps (:func:`run_emulated_edge`): the cached minbase root (:mod:`.rootfs`); the video and the Pi
OS's ``/boot/firmware/config.txt`` staged inside; an inventory with the chroot connection —
``edge_base`` (udev rules, users, camera), ``ncsdk`` building libmvnc for the node's architecture
from the vendored NCSDK API sources (pinned by ``SHA256SUMS``; no stick firmware), ``edge_service``
with a packed bundle archive and its sha256 pin; then the node's ``/healthz``, ``/metrics`` and
``python -m edge_image devices`` (what the real libmvnc says) folded into one :class:`Summary` line,
and the service stopped again.

Inputs: the architecture, a bundle archive and its sha256 (or the publish role's ``latest.json``),
a video, the cache directory. Outputs: the summary (printed), the playbook log in the cache.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from edge_image.contract.errors import UserError
from training_scripts.emulation.playbook import (
    EDGE_PLAYBOOK,
    REPO,
    PlaybookRun,
    run_playbook,
    write_inventory,
)
from training_scripts.emulation.rootfs import Arch, Chroot, layered_tarball, rootfs_tarball

VIDEO_INSIDE = "/srv/edge/video.mp4"
BOOT_CONFIG = "/boot/firmware/config.txt"
PIDFILE = "/run/edge-image.pid"
VENV_PYTHON = "/opt/edge-image/.venv/bin/python"
LIBMVNC = "/usr/local/lib/libmvnc.so.0"
#: Frames per second the emulated service processes (edge_service_fps_limit).
EMULATED_FPS_LIMIT = 3
VENDOR = REPO.parent / "shared" / "vendor"
# NCSDK API generation -> the vendored source archive (SHA256SUMS beside it pins it).
NCSDK_ARCHIVES = {1: "ncsdk-1.12.01.01-api.tar.gz", 2: "ncsdk-2.10.01.01-api.tar.gz"}
# Raspberry Pi OS's firmware settings file, as a fresh image has it (edge_base edits it).
PI_BOOT_CONFIG = "# Raspberry Pi firmware settings (emulated node)\ndtparam=audio=on\n#camera_auto_detect=0\n"


# The roles' package lists, baked into the emulated root (:func:`pi_packages`).
ROLE_PACKAGES = (
    ("edge_base", "edge_base_packages"),
    ("ncsdk", "ncsdk_build_packages"),
    ("edge_service", "edge_service_system_packages"),
)


def pi_packages(roles: Path = REPO / "roles") -> tuple[str, ...]:
    """The Debian packages the edge roles install, read from their ``defaults/main.yml``."""
    found: set[str] = set()
    for role, variable in ROLE_PACKAGES:
        defaults = yaml.safe_load((roles / role / "defaults" / "main.yml").read_text())
        found.update(str(p) for p in defaults[variable])
    return tuple(sorted(found))


@dataclass(frozen=True)
class Summary:
    """What the emulated node did, as the one line ``make edge-<arch>`` prints."""

    arch: str
    machine: str
    backend: str
    frames: int
    detections: int
    mvnc: str
    healthz: str

    def line(self) -> str:
        """``edge-arm64: aarch64 backend=opencv frames=N detections=M mvnc="…" healthz=ok``."""
        return (
            f"edge-{self.arch}: {self.machine} backend={self.backend} frames={self.frames} "
            f'detections={self.detections} mvnc="{self.mvnc}" healthz={self.healthz}'
        )


def vendor_archive(name: str, vendor: Path = VENDOR) -> tuple[Path, str]:
    """``vendor/name`` and its sha256 from ``vendor/SHA256SUMS``, checked against the file's bytes."""
    sums = vendor / "SHA256SUMS"
    try:
        pinned = {
            parts[1].lstrip("*"): parts[0].lower()
            for parts in (line.split() for line in sums.read_text().splitlines())
            if len(parts) == 2
        }
    except OSError as exc:
        raise UserError(f"{sums}: {exc.strerror or exc}") from None
    if name not in pinned:
        raise UserError(f"{sums}: no line for {name}")
    path = vendor / name
    try:
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise UserError(f"{path}: {exc.strerror or exc}") from None
    if actual != pinned[name]:
        raise UserError(f"{path}: sha256 {actual} does not match SHA256SUMS ({pinned[name]})")
    return path, actual


def published_archive(latest_json: Path) -> tuple[Path, str]:
    """The bundle archive and its sha256 that the publish role recorded in ``latest.json``."""
    try:
        record = json.loads(latest_json.read_text())
        archive, digest = Path(record["archive"]), str(record["archive_sha256"])
    except OSError as exc:
        raise UserError(f"{latest_json}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UserError(f"{latest_json}: not the publish role's latest.json ({exc})") from None
    if not archive.is_absolute():
        archive = latest_json.parent / archive
    return archive, digest.removeprefix("sha256:")


def node_vars(
    *,
    bundle: Path,
    bundle_sha256: str,
    port: int,
    trusted_keys: tuple[Path, ...] = (),
    ncsdk_api_version: int = 2,
    vendor: Path = VENDOR,
    health_retries: int = 90,
) -> dict[str, object]:
    """Host vars of the emulated Pi: chroot connection, the Pi's roles as on a real node, NCSDK from
    the vendored sources without firmware, the bundle archive pinned by its sha256 and signed by one
    of ``trusted_keys`` (PEM public keys on the controller), the video."""
    source, source_sha256 = vendor_archive(NCSDK_ARCHIVES[ncsdk_api_version], vendor)
    return {
        "ansible_connection": "community.general.chroot",
        "ansible_become": False,
        "ansible_python_interpreter": "/usr/bin/python3",
        "edge_base_raspberry_pi": True,
        "edge_use_ncsdk": True,
        "ncsdk_api_version": ncsdk_api_version,
        "ncsdk_source_local_archive": str(source),
        "ncsdk_source_sha256": source_sha256,
        "ncsdk_firmware_source": "none",
        "edge_service_model_local_path": str(bundle),
        "edge_service_model_sha256": bundle_sha256,
        "edge_service_trusted_keys": [str(k) for k in trusted_keys],
        "edge_service_source": {"kind": "video", "path": VIDEO_INSIDE, "loop": True},
        "edge_service_backend": {"kind": "auto", "device": "CPU"},
        "edge_service_server_port": port,
        "edge_service_outputs": {"jsonl": "/var/lib/edge-image/detections.jsonl"},
        # qemu runs the service's inference on one host core as fast as it can; capped, it leaves that
        # core to the rest of the suite (the summary counts frames, it is not a speed figure).
        "edge_service_fps_limit": EMULATED_FPS_LIMIT,
        # Emulated ARM runs Python 5-20x slower: the first frame takes a while.
        "edge_service_health_retries": health_retries,
        "edge_service_health_delay": 2,
    }


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    """GET ``url``: the HTTP status and body (error statuses too; connection errors raise OSError)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def metric_sum(text: str, name: str) -> float:
    """Sum of every sample of ``name`` (all label sets) in Prometheus text ``text``.

    >>> metric_sum('a_total{l="x"} 2.0\\na_total{l="y"} 3.0\\nab_total 9\\n', "a_total")
    5.0
    """
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "):
            total += float(line.rsplit(maxsplit=1)[-1])
    return total


class EmulatedNode:
    """A Pi root of ``target``'s architecture under ``cache`` (reused when it is there), driven by Ansible.

    ``root`` defaults to ``cache/root`` and is kept on :meth:`close` (the next run reuses it);
    apt's archives and pip's cache are bound in from ``cache`` so a new root downloads nothing twice.
    With ``layer`` the root starts from the cached tarball with the roles' Debian packages already
    installed (:func:`pi_packages`, as a Pi image build bakes them in; under qemu their maintainer
    scripts alone take about ten minutes), else from plain minbase (the roles install them).
    """

    def __init__(
        self,
        target: Arch,
        cache: Path,
        *,
        root: Path | None = None,
        keep: bool = True,
        workdir: Path | None = None,
        layer: bool = True,
    ) -> None:
        self.target = target
        self.cache = cache
        self.workdir = workdir or cache
        tarball = layered_tarball(cache, target, pi_packages()) if layer else rootfs_tarball(cache, target)
        binds = {"/var/cache/apt/archives": cache / "apt-archives", "/root/.cache/pip": cache / "pip"}
        self.chroot = Chroot(tarball, root or cache / "root", binds=binds, keep=keep)

    @property
    def host(self) -> str:
        """The inventory name (the root's path, as the chroot connection wants it)."""
        return str(self.chroot.root)

    def stage(self, video: Path) -> None:
        """Put the video and a Pi OS firmware config in the root; an empty usbfs (no stick attached)."""
        inside = self.chroot.path(VIDEO_INSIDE)
        inside.parent.mkdir(parents=True, exist_ok=True)
        if not inside.is_file() or inside.read_bytes() != video.read_bytes():
            shutil.copyfile(video, inside)
        inside.chmod(0o644)
        boot = self.chroot.path(BOOT_CONFIG)
        if not boot.is_file():
            boot.parent.mkdir(parents=True, exist_ok=True)
            boot.write_text(PI_BOOT_CONFIG)
        self.chroot.path("/dev/bus/usb").mkdir(parents=True, exist_ok=True)
        # CAs the host trusts (e.g. a TLS-inspecting egress proxy) for pip inside the root.
        # A root with ca-certificates already installed (the baked layer) must fold them in itself.
        local_cas = Path("/usr/local/share/ca-certificates")
        certs = sorted(local_cas.glob("*.crt")) if local_cas.is_dir() else []
        for cert in certs:
            target = self.chroot.path(str(cert))
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cert, target)
        if certs and self.chroot.path("/usr/sbin/update-ca-certificates").is_file():
            self.chroot.run("update-ca-certificates", timeout=600)

    def play(
        self, host_vars: dict[str, object], *, playbook: Path = EDGE_PLAYBOOK, **kwargs: object
    ) -> PlaybookRun:
        """Run ``playbook`` (default ``ansible/edge.yml``) against the root with ``host_vars``."""
        inventory = write_inventory(self.workdir / "hosts.yml", {self.host: host_vars})
        return run_playbook(
            playbook,
            inventory,
            cache_dir=self.workdir / "controller",
            log=self.workdir / f"{playbook.name}.log",
            timeout=kwargs.pop("timeout", 3600),  # type: ignore[arg-type]
            **kwargs,  # type: ignore[arg-type]
        )

    def health(self, port: int) -> tuple[int, dict]:
        """``/healthz`` of the service on ``port``: HTTP status and the document (empty if unreadable)."""
        try:
            status, body = http_get(f"http://127.0.0.1:{port}/healthz")
            return status, json.loads(body)
        except (OSError, ValueError):
            return 0, {}

    def summary(self, port: int, *, min_frames: int = 30, timeout: float = 300) -> Summary:
        """Wait until the service has processed ``min_frames`` frames, then ask it and mvnc what they did."""
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        frames = detections = 0.0
        while True:
            try:
                _, body = http_get(f"{base}/metrics")
                text = body.decode()
                frames = metric_sum(text, "edge_frames_total")
                detections = metric_sum(text, "edge_detections_total")
            except (OSError, ValueError):
                pass
            if frames >= min_frames or time.monotonic() > deadline:
                break
            time.sleep(2)
        status, health = self.health(port)
        _, body = http_get(f"{base}/api/detections")
        backend = json.loads(body).get("status", {}).get("backend") or "none"
        devices = self.chroot.run(VENV_PYTHON, "-m", "edge_image", "devices", check=False, timeout=300)
        mvnc = next(
            (line.partition(": ")[2] for line in devices.stdout.splitlines() if line.startswith("mvnc: ")),
            f"edge_image devices failed: {(devices.stderr.strip().splitlines() or ['no output'])[-1]}",
        )
        machine = self.chroot.run("uname", "-m").stdout.strip()
        return Summary(
            arch=self.target.debian,
            machine=machine,
            backend=backend,
            frames=int(frames),
            detections=int(detections),
            mvnc=mvnc,
            healthz="ok" if status == 200 and health.get("ok") is True else f"failed ({status})",
        )

    def stop_service(self) -> None:
        """Stop the service the role started with start-stop-daemon (systemd is not PID 1 in a root)."""
        self.chroot.run(
            "start-stop-daemon",
            "--stop",
            "--quiet",
            "--pidfile",
            PIDFILE,
            "--retry",
            "TERM/20/KILL/5",
            check=False,
        )

    def close(self) -> None:
        """Stop what runs in the root and undo its mounts (the root stays when kept)."""
        self.chroot.close()

    def __enter__(self) -> EmulatedNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_emulated_edge(
    target: Arch,
    *,
    bundle: Path,
    bundle_sha256: str,
    video: Path,
    cache: Path,
    port: int,
    trusted_keys: tuple[Path, ...] = (),
    ncsdk_api_version: int = 2,
    vendor: Path = VENDOR,
    progress: Callable[[str], None] = print,
) -> Summary:
    """The whole ``make edge-<arch>``: root, ``ansible/edge.yml``, the service's summary, stop.

    Raises :class:`UserError` (one line) when the playbook fails; the log is in ``cache``.
    """
    tag = f"edge-{target.debian}"
    host_vars = node_vars(
        bundle=bundle,
        bundle_sha256=bundle_sha256,
        port=port,
        trusted_keys=trusted_keys,
        ncsdk_api_version=ncsdk_api_version,
        vendor=vendor,
    )
    started = time.monotonic()
    progress(f"{tag}: [1/4] {target.debian} bookworm root under {cache} ({target.stands_for})")
    with EmulatedNode(target, cache) as node:
        node.stage(video)
        progress(
            f"{tag}: [2/4] ansible/edge.yml into {node.host} (log {cache / 'edge.yml.log'}) "
            f"after {time.monotonic() - started:.0f} s"
        )
        run = node.play(host_vars)
        if run.returncode != 0:
            raise UserError(f"{tag}: ansible/edge.yml failed: {run.failure()} (log {cache / 'edge.yml.log'})")
        counts = run.counts(node.host)
        progress(
            f"{tag}: [3/4] provisioned: changed={counts.get('changed', 0)} "
            f"after {time.monotonic() - started:.0f} s; waiting for frames"
        )
        try:
            summary = node.summary(port)
        finally:
            node.stop_service()
        progress(f"{tag}: [4/4] service stopped after {time.monotonic() - started:.0f} s")
    return summary
