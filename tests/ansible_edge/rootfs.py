"""A Debian bookworm root filesystem for the edge playbook tests, driven through the
``community.general.chroot`` connection.

- :func:`rootfs_tarball` runs ``debootstrap --variant=minbase`` once and caches the result as
  ``.cache/edge-rootfs/<key>.tar`` (about 40 s with a nearby mirror; reused while the key,
  i.e. suite, mirror and package list, stays the same).
- :class:`Chroot` unpacks it into a directory, mounts ``/proc`` (start-stop-daemon and
  Python need it), stops services from starting inside it with a ``policy-rc.d``, and on
  :meth:`Chroot.close` stops every process whose root is the chroot, unmounts and deletes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

SUITE = "bookworm"
MIRROR = os.environ.get("EDGE_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# What Ansible needs inside the chroot (python3 and python3-apt for the apt module);
# the roles install everything else.
INCLUDE = ("python3", "python3-apt")
DEBOOTSTRAP = "/usr/sbin/debootstrap"


def rootfs_tarball(cache_dir: Path) -> Path:
    """Path of the cached minbase tarball, building it with debootstrap when missing.

    The cache key covers the suite, mirror and included packages; a build goes to a
    temporary directory and is renamed into place, so an interrupted run leaves no tarball.
    """
    key = hashlib.sha256(f"{SUITE} {MIRROR} {' '.join(INCLUDE)}".encode()).hexdigest()[:12]
    tarball = cache_dir / f"{SUITE}-minbase-{key}.tar"
    if tarball.is_file():
        return tarball
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = cache_dir / f".build-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        subprocess.run(
            [
                "nice",
                "-n",
                "10",
                DEBOOTSTRAP,
                "--variant=minbase",
                f"--include={','.join(INCLUDE)}",
                SUITE,
                str(work / "root"),
                MIRROR,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        partial = tarball.with_suffix(".tar.part")
        subprocess.run(
            ["tar", "--numeric-owner", "-C", str(work / "root"), "-cf", str(partial), "."],
            check=True,
        )
        partial.rename(tarball)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tarball


def _mounted(path: Path) -> bool:
    target = str(path)
    with Path("/proc/self/mounts").open() as mounts:
        return any(line.split()[1] == target for line in mounts)


class Chroot:
    """An unpacked root filesystem with ``/proc`` mounted; use as a context manager."""

    def __init__(self, tarball: Path, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True)
        subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-xf", str(tarball)], check=True)
        # Debian's convention for image builds: packages must not start services here.
        policy = root / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        shutil.copyfile("/etc/resolv.conf", root / "etc/resolv.conf")
        subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)

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
        """Stop the chroot's processes, unmount ``/proc`` and delete the tree."""
        self.stop_processes()
        proc = self.root / "proc"
        if _mounted(proc):
            subprocess.run(["umount", str(proc)], check=False)
        if _mounted(proc):
            subprocess.run(["umount", "-l", str(proc)], check=True)
        if _mounted(proc):
            raise RuntimeError(f"{proc} is still mounted; not deleting {self.root}")
        shutil.rmtree(self.root)

    def __enter__(self) -> Chroot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
