"""Debian root filesystems for the edge playbook, native or for a Raspberry Pi's architecture under
qemu-user emulation, driven through Ansible's ``community.general.chroot`` connection.

- :data:`ARCHES`: the one table of what differs per architecture (Debian arch, the binfmt_misc
  entry that runs its binaries, what ``uname -m`` says inside, the Pi OS it stands for).
- :func:`ensure_binfmt` checks (and where it can, enables) qemu-user-static's binfmt_misc entry, so
  ``chroot ROOT …`` runs foreign binaries; one-line :class:`UserError` with the fix otherwise.
- :func:`rootfs_tarball` runs ``debootstrap --variant=minbase`` once per key (suite, arch, mirror,
  packages) and caches it as ``<cache>/<suite>-<arch>-minbase-<key>.tar`` (a build goes to a
  temporary directory and is renamed into place: an interrupted run leaves no tarball).
- :class:`Chroot` unpacks a tarball (or reuses an unpacked root), mounts ``/proc``, bind-mounts
  download caches (apt archives, pip) from the host, keeps services from starting at package
  install (``policy-rc.d``), and on :meth:`Chroot.close` stops every process whose root is the
  chroot and unmounts (deleting the tree unless asked to keep it).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import platform
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from edge_image.contract.errors import UserError

SUITE = "bookworm"
MIRROR = os.environ.get("EDGE_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# What Ansible needs inside the root (python3, python3-apt for the apt module); roles do the rest.
INCLUDE = ("python3", "python3-apt")
DEBOOTSTRAP = "/usr/sbin/debootstrap"
BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")


@dataclass(frozen=True)
class Arch:
    """One target architecture: Debian's name, the binfmt_misc entry (None: runs natively), what
    ``uname -m`` (Ansible's ``machine`` fact) says inside, and the Pi system it stands for."""

    debian: str
    binfmt: str | None
    machine: str
    stands_for: str


ARCHES: dict[str, Arch] = {
    "amd64": Arch("amd64", None, "x86_64", "a Debian bookworm amd64 host (not a Pi)"),
    "arm64": Arch("arm64", "qemu-aarch64", "aarch64", "Raspberry Pi OS 64-bit (bookworm arm64), Pi 3/4/5"),
    "armhf": Arch("armhf", "qemu-arm", "armv7l", "Raspberry Pi OS 32-bit (bookworm armhf), Pi 2/3/4"),
}
_NATIVE = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "armhf"}


def arch(name: str) -> Arch:
    """The :data:`ARCHES` row for ``name`` (``arm64``, ``armhf``, ``amd64``); one-line error otherwise."""
    try:
        return ARCHES[name]
    except KeyError:
        raise UserError(f"--arch: {name!r} is not one of {', '.join(ARCHES)}") from None


def ensure_binfmt(target: Arch, binfmt_dir: Path = BINFMT_DIR) -> None:
    """Make sure ``target``'s binaries run on this host: native, or qemu-user's binfmt_misc entry
    registered and enabled (mounting binfmt_misc and running ``update-binfmts --enable`` if needed).

    Raises :class:`UserError` naming the package to install when it cannot be made to work.
    """
    if target.binfmt is None or _NATIVE.get(platform.machine()) == target.debian:
        return
    entry = binfmt_dir / target.binfmt
    if not (binfmt_dir / "register").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(binfmt_dir)], check=False)
    if not _enabled(entry) and shutil.which("update-binfmts"):
        subprocess.run(["update-binfmts", "--enable", target.binfmt], check=False, capture_output=True)
    if not _enabled(entry):
        raise UserError(
            f"{entry}: not registered: {target.debian} binaries cannot run here "
            "(apt-get install qemu-user-static binfmt-support, as root)"
        )
    flags = next(
        (line.split()[1] for line in entry.read_text().splitlines() if line.startswith("flags:")), ""
    )
    if "F" not in flags:
        raise UserError(
            f"{entry}: flags {flags!r} lack F: the interpreter would have to be copied into every root "
            "(use Debian's qemu-user-static, which registers with F)"
        )


def _enabled(entry: Path) -> bool:
    try:
        return entry.read_text().splitlines()[0].strip() == "enabled"
    except (OSError, IndexError):
        return False


def rootfs_tarball(
    cache_dir: Path, target: Arch | None = None, *, include: tuple[str, ...] = INCLUDE, mirror: str = MIRROR
) -> Path:
    """Path of the cached minbase tarball for ``target`` (default amd64), debootstrapping it when missing.

    The key covers suite, architecture, mirror and packages. Foreign architectures need
    :func:`ensure_binfmt` first (debootstrap's second stage runs inside the root).
    """
    target = target or ARCHES["amd64"]
    cache_dir = cache_dir.resolve()  # debootstrap wants an absolute target
    ensure_binfmt(target)
    key = hashlib.sha256(f"{SUITE} {target.debian} {mirror} {' '.join(include)}".encode()).hexdigest()[:12]
    tarball = cache_dir / f"{SUITE}-{target.debian}-minbase-{key}.tar"
    if tarball.is_file():
        return tarball
    with _exclusive(cache_dir / ".minbase.lock"):
        if tarball.is_file():  # built by whoever held the lock
            return tarball
        _debootstrap(tarball, target, include, mirror)
    return tarball


def _debootstrap(tarball: Path, target: Arch, include: tuple[str, ...], mirror: str) -> None:
    cache_dir = tarball.parent
    work = cache_dir / f".build-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        _run_or_fail(
            [
                "nice",
                "-n",
                "10",
                DEBOOTSTRAP,
                f"--arch={target.debian}",
                "--variant=minbase",
                f"--include={','.join(include)}",
                SUITE,
                str(work / "root"),
                mirror,
            ],
            f"debootstrap {SUITE} {target.debian} from {mirror}",
        )
        partial = tarball.with_suffix(".tar.part")
        subprocess.run(
            ["tar", "--numeric-owner", "-C", str(work / "root"), "-cf", str(partial), "."], check=True
        )
        partial.rename(tarball)
    finally:
        _unmount_below(work)
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def _exclusive(lock: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock`` (a concurrent build waits; a crashed one releases it)."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def layered_tarball(
    cache_dir: Path, target: Arch, packages: tuple[str, ...], *, mirror: str = MIRROR
) -> Path:
    """The minbase root of :func:`rootfs_tarball` with ``packages`` apt-installed, cached as
    ``<cache>/<suite>-<arch>-layer-<key>.tar`` (key: the base tarball's name and the sorted packages).

    What a Pi image build bakes in: under emulation every maintainer script runs through qemu, so
    this layer is built once and reused; the roles then find the packages present. apt's downloads
    are kept in ``<cache>/apt-archives``. A failed build leaves no tarball.
    """
    cache_dir = cache_dir.resolve()
    base = rootfs_tarball(cache_dir, target, mirror=mirror)
    key = hashlib.sha256(f"{base.name} {' '.join(sorted(packages))}".encode()).hexdigest()[:12]
    tarball = cache_dir / f"{SUITE}-{target.debian}-layer-{key}.tar"
    if tarball.is_file():
        return tarball
    with _exclusive(cache_dir / ".layer.lock"):
        if not tarball.is_file():
            _install_layer(tarball, base, target, packages)
    return tarball


def _install_layer(tarball: Path, base: Path, target: Arch, packages: tuple[str, ...]) -> None:
    cache_dir = tarball.parent
    work = cache_dir / f".layer-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        with Chroot(
            base, work, binds={"/var/cache/apt/archives": cache_dir / "apt-archives"}, keep=True
        ) as root:
            for argv in (
                ("apt-get", "update", "-q"),
                ("apt-get", "install", "-y", "-q", "--no-install-recommends", *sorted(packages)),
            ):
                _run_or_fail(
                    ["chroot", str(work), *argv],
                    f"{' '.join(argv[:2])} in the {target.debian} root",
                    env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                )
            root.stop_processes()
        partial = tarball.with_suffix(".tar.part")
        subprocess.run(
            [
                "tar",
                "--numeric-owner",
                "--exclude=./var/cache/apt/archives/*",
                "-C",
                str(work),
                "-cf",
                str(partial),
                ".",
            ],
            check=True,
        )
        partial.rename(tarball)
    finally:
        _unmount_below(work)
        shutil.rmtree(work, ignore_errors=True)


def _run_or_fail(argv: list[str], what: str, env: dict[str, str] | None = None) -> None:
    """Run ``argv``; on failure a one-line :class:`UserError`: ``what``, the exit code, the last line."""
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["no output"]
        raise UserError(f"{what}: exit {proc.returncode}: {tail[0]}")


def _mounts_below(path: Path) -> list[str]:
    prefix = str(path)
    with Path("/proc/self/mounts").open() as mounts:
        points = [line.split()[1] for line in mounts]
    return [p for p in points if p == prefix or p.startswith(prefix + "/")]


def _unmount_below(path: Path) -> None:
    for point in sorted(_mounts_below(path), key=len, reverse=True):
        if subprocess.run(["umount", point], check=False, capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", point], check=False, capture_output=True)
    if _mounts_below(path):
        raise RuntimeError(f"{path}: still has mounts {_mounts_below(path)}; not deleting it")


class Chroot:
    """A root filesystem with ``/proc`` mounted and host cache directories bound in; a context manager.

    ``binds`` maps a path inside (e.g. ``/var/cache/apt/archives``) to a host directory that
    outlives the root (created when missing). ``keep`` leaves the tree on :meth:`close` (only the
    processes are stopped and the mounts undone), so a later run can reuse it.
    """

    def __init__(
        self,
        tarball: Path,
        root: Path,
        *,
        binds: dict[str, Path] | None = None,
        keep: bool = False,
    ) -> None:
        self.root = root
        self.keep = keep
        if not (root / "usr/bin").is_dir():
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-xf", str(tarball)], check=True)
        # Debian's convention for image builds: packages must not start services here.
        policy = root / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        shutil.copyfile("/etc/resolv.conf", root / "etc/resolv.conf")
        _unmount_below(root)  # debris of a run that was killed
        subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
        for inside, host in (binds or {}).items():
            host.mkdir(parents=True, exist_ok=True)
            target = self.path(inside)
            target.mkdir(parents=True, exist_ok=True)
            subprocess.run(["mount", "--bind", str(host), str(target)], check=True)

    def run(self, *argv: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the chroot; returns the completed process (text output)."""
        return subprocess.run(
            ["chroot", str(self.root), *argv], check=check, capture_output=True, text=True, timeout=timeout
        )

    def path(self, inside: str) -> Path:
        """Host path of ``inside`` (an absolute path in the chroot)."""
        return self.root / inside.lstrip("/")

    def pids(self) -> list[int]:
        """Processes whose root directory is this chroot."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if os.readlink(entry / "root") == str(self.root):
                    found.append(int(entry.name))
            except OSError:
                continue
        return found

    def stop_processes(self, grace: float = 10.0) -> None:
        """SIGTERM every process running in the chroot, SIGKILL what is left after ``grace``."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + grace
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.2)
            if not self.pids():
                return

    def close(self) -> None:
        """Stop the chroot's processes, undo its mounts and (unless ``keep``) delete the tree."""
        self.stop_processes()
        _unmount_below(self.root)
        if not self.keep:
            shutil.rmtree(self.root)

    def __enter__(self) -> Chroot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
