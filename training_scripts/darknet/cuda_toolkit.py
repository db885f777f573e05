"""A CUDA toolkit + cuDNN tree (``CUDA_HOME`` layout) from the package registries, for GPU builds here.

darknet's GPU code needs nvcc and cicc, the CUDA headers, libcudart/libcublas/libcurand and cuDNN. On a
machine without NVIDIA's installer this module assembles them from what the registries hold:

- CUDA 11.8 from Debian bookworm's ``non-free`` component (``nvidia-cuda-toolkit`` has nvcc, cicc, ptxas,
  cuobjdump; ``nvidia-cuda-dev`` the headers and link stubs; the runtime libraries come in their own
  packages). NVIDIA's ``nvidia-cuda-nvcc-cu12`` wheels hold only ptxas and libnvvm (no nvcc driver, no
  cicc: checked for 12.1, 12.4, 12.6, 12.8 and 12.9), and the wheels that do hold nvcc are CUDA 13, which
  no longer compiles sm_70. CUDA 11.8 compiles sm_50 through sm_90 (V100 sm_70 to H100 sm_90).
- cuDNN 8.9 for CUDA 11 from PyPI (``nvidia-cudnn-cu11``, pinned by sha256; Debian's ``nvidia-cudnn``
  is only a downloader).

apt runs with a private state directory (the system's sources and keyring, plus ``non-free``), so the
machine's own apt configuration is not touched and nothing is installed system-wide. Downloads are
cached in ``downloads``; the tree is built beside ``out`` and renamed into place, with ``toolkit.json``
recording what it holds, so a second call with the same spec does nothing.

Layout of ``out``: ``bin/`` (nvcc with an ``nvcc.profile`` relative to itself, cicc, ptxas, cuobjdump, the
host-compiler wrappers that pick g++-11), ``include/``, ``lib64/`` (+ ``lib64/stubs/`` with libcuda),
``nvvm/libdevice/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edge_image.contract.errors import UserError

STAMP = "toolkit.json"
DEBIAN_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"),)
NVCC_PROFILE = """\
# Written by training_scripts.darknet.cuda_toolkit: paths relative to this directory.
TOP = $(_HERE_)/..
NVVMIR_LIBRARY_DIR = $(TOP)/nvvm/libdevice
PATH += $(_HERE_):
INCLUDES += "-I$(TOP)/include" $(_SPACE_)
LIBRARIES =+ $(_SPACE_) "-L$(TOP)/lib64/stubs" "-L$(TOP)/lib64"
"""


@dataclass(frozen=True)
class ToolkitSpec:
    """What goes into the tree: Debian packages pinned to one version, one cuDNN wheel pinned by hash."""

    cuda_version: str = "11.8"
    suite: str = "bookworm"
    # (package, version): every package pinned to the version bookworm non-free carries.
    debian_packages: tuple[tuple[str, str], ...] = (
        ("nvidia-cuda-toolkit", "11.8.89~11.8.0-5~deb12u1"),
        ("nvidia-cuda-dev", "11.8.89~11.8.0-5~deb12u1"),
        ("libcudart11.0", "11.8.89~11.8.0-5~deb12u1"),
        ("libcublas11", "11.11.3.6~11.8.0-5~deb12u1"),
        ("libcublaslt11", "11.11.3.6~11.8.0-5~deb12u1"),
        ("libcurand10", "11.1.1+~10.3.0.86~11.8.0-5~deb12u1"),
        ("libnvvm4", "11.8.89~11.8.0-5~deb12u1"),
        # header-only packages that nvidia-cuda-dev's headers include
        ("libcu++-dev", "1.8.1-2"),
        ("libcub-dev", "1.17.2-2"),
        ("libthrust-dev", "1.17.2-2"),
    )
    cudnn_wheel: str = "nvidia-cudnn-cu11==8.9.5.30"
    cudnn_sha256: str = "df16c962ecc1c38ab6ca579c058e801c60a3e5e2c5349a2dcb88b29f0351fb6b"
    cudnn_soname: str = "libcudnn.so.8"
    # Compute capabilities this toolkit compiles for (nvcc --list-gpu-arch of CUDA 11.8).
    min_compute: int = 35
    max_compute: int = 90
    extra: dict[str, str] = field(default_factory=dict)


Runner = Callable[[list[str]], None]


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        raise UserError(f"{argv[0]} {' '.join(argv[1:3])}: exit {proc.returncode}: {tail[0]}")


def debian_mirror(sources: tuple[Path, ...] = DEBIAN_SOURCES, suite: str = "bookworm") -> tuple[str, str]:
    """(URI, Signed-By) of the system's apt entry for ``suite``, read from its deb822 sources file."""
    for path in sources:
        if not path.exists():
            continue
        for block in path.read_text().split("\n\n"):
            pairs = re.finditer(r"(?m)^([A-Za-z-]+):\s*(.*)$", block)
            fields = {m.group(1): m.group(2).strip() for m in pairs}
            if suite in fields.get("Suites", "").split() and "URIs" in fields:
                return fields["URIs"].split()[0], fields.get("Signed-By", "")
    raise UserError(
        f"{', '.join(map(str, sources))}: no apt entry for suite {suite!r} "
        "(the CUDA toolkit comes from that suite's non-free component)"
    )


def apt_options(state: Path) -> list[str]:
    """apt-get options that keep lists, cache and sources under ``state``."""
    return [
        "-o", f"Dir::State={state}",
        "-o", f"Dir::State::Lists={state}/lists",
        "-o", f"Dir::Cache={state}/cache",
        "-o", f"Dir::Etc::SourceList={state}/sources.list",
        "-o", "Dir::Etc::SourceParts=/dev/null",
        "-o", "Debug::NoLocking=1",
        "-o", "APT::Sandbox::User=root",
    ]  # fmt: skip


def download_debs(spec: ToolkitSpec, downloads: Path, run: Runner = _run) -> list[Path]:
    """Fetch the pinned Debian packages (signature-checked by apt) into ``downloads``; cached by name."""
    debs = downloads / "debs"
    state = downloads / "apt"
    wanted = [f"{name}={version}" for name, version in spec.debian_packages]
    have = sorted(debs.glob("*.deb")) if debs.is_dir() else []
    # apt-get download names files <name>_<version with ':' as %3a>_<arch>.deb
    names = {tuple(p.name.split("_")[:2]) for p in have}
    if names >= {(name, version.replace(":", "%3a")) for name, version in spec.debian_packages}:
        return have
    uri, signed_by = debian_mirror(suite=spec.suite)
    (state / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (state / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    opt = f"[signed-by={signed_by}] " if signed_by else ""
    (state / "sources.list").write_text(
        "".join(f"deb {opt}{uri} {s} main contrib non-free\n" for s in (spec.suite, f"{spec.suite}-updates"))
    )
    run(["apt-get", *apt_options(state), "update", "-q"])
    part = debs.with_name("debs.partial")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    cwd = os.getcwd()
    try:
        os.chdir(part)
        run(["apt-get", *apt_options(state), "download", "-q", *wanted])
    finally:
        os.chdir(cwd)
    shutil.rmtree(debs, ignore_errors=True)
    part.rename(debs)
    return sorted(debs.glob("*.deb"))


def download_cudnn(spec: ToolkitSpec, downloads: Path, run: Runner = _run) -> Path:
    """Fetch the cuDNN wheel with pip into ``downloads/wheels`` and check its pinned sha256."""
    wheels = downloads / "wheels"
    dist = spec.cudnn_wheel.split("==")[0].replace("-", "_")
    found = sorted(wheels.glob(f"{dist}-*.whl")) if wheels.is_dir() else []
    if not found:
        wheels.mkdir(parents=True, exist_ok=True)
        run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(wheels), spec.cudnn_wheel])
        found = sorted(wheels.glob(f"{dist}-*.whl"))
    if not found:
        raise UserError(f"{wheels}: pip left no {dist} wheel")
    digest = hashlib.sha256()
    with found[-1].open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != spec.cudnn_sha256:
        found[-1].unlink()
        raise UserError(f"{found[-1]}: sha256 {digest.hexdigest()} is not the pinned {spec.cudnn_sha256}")
    return found[-1]


# Static archives nvcc itself links into every program it builds (the rest are large and unused).
KEEP_STATIC = frozenset({"libcudadevrt.a", "libcudart_static.a", "libculibos.a"})


def _extract_deb(deb: Path, stage: Path) -> None:
    """Unpack a .deb's files into ``stage`` without the static libraries darknet does not link."""
    listing = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=False)
    if listing.returncode != 0:
        raise UserError(f"{deb}: cannot unpack: {listing.stderr.decode(errors='replace').strip()[-200:]}")
    members = (
        subprocess.run(["tar", "-t"], input=listing.stdout, capture_output=True, check=True)
        .stdout.decode()
        .splitlines()
    )
    skip = [m for m in members if m.endswith(".a") and Path(m).name not in KEEP_STATIC]
    excludes = [f"--exclude={m}" for m in skip]
    proc = subprocess.run(
        ["tar", "-x", "-C", str(stage), *excludes], input=listing.stdout, capture_output=True, check=False
    )
    if proc.returncode != 0:
        raise UserError(f"{deb}: cannot unpack: {proc.stderr.decode(errors='replace').strip()[-200:]}")


def assemble(stage: Path, tree: Path, cudnn_wheel: Path, spec: ToolkitSpec) -> None:
    """Lay the unpacked Debian files in ``stage`` and the cuDNN wheel out as a CUDA_HOME in ``tree``."""
    usr = stage / "usr"
    bin_dir, lib_dir, inc_dir = tree / "bin", tree / "lib64", tree / "include"
    for d in (bin_dir, lib_dir, inc_dir, tree / "nvvm"):
        d.mkdir(parents=True, exist_ok=True)
    toolkit_bin = usr / "lib" / "nvidia-cuda-toolkit" / "bin"
    for src in toolkit_bin.iterdir():
        if src.name == "nvcc.profile":
            continue
        dest = bin_dir / src.name
        shutil.move(str(src), dest)
    for src in (usr / "bin").iterdir():
        if src.name != "nvcc" and not (bin_dir / src.name).exists():
            shutil.move(str(src), bin_dir / src.name)
    (bin_dir / "nvcc.profile").write_text(NVCC_PROFILE)
    shutil.move(str(usr / "lib" / "nvidia-cuda-toolkit" / "libdevice"), tree / "nvvm" / "libdevice")
    for src in (usr / "include").iterdir():
        shutil.move(str(src), inc_dir / src.name)
    for src in (usr / "lib" / "x86_64-linux-gnu").iterdir():
        shutil.move(str(src), lib_dir / src.name)
    stubs = lib_dir / "stubs"
    if (stubs / "libcuda.so").exists() and not (stubs / "libcuda.so.1").exists():
        # The driver's soname, so `ldd` and `-nogpu` runs resolve on a machine without a driver.
        (stubs / "libcuda.so.1").symlink_to("libcuda.so")
    with zipfile.ZipFile(cudnn_wheel) as whl:
        for info in whl.infolist():
            name = info.filename
            for prefix, dest in (("nvidia/cudnn/include/", inc_dir), ("nvidia/cudnn/lib/", lib_dir)):
                if name.startswith(prefix) and not name.endswith((".py", "/")):
                    target = dest / name[len(prefix) :]
                    with whl.open(info) as src, target.open("wb") as out:
                        shutil.copyfileobj(src, out)
    (lib_dir / "libcudnn.so").symlink_to(spec.cudnn_soname)
    for need in (bin_dir / "nvcc", bin_dir / "cicc", inc_dir / "cuda_runtime.h", inc_dir / "cudnn.h"):
        if not need.exists():
            raise UserError(f"{tree}: {need.relative_to(tree)} missing after unpacking")


def stamp_of(spec: ToolkitSpec) -> str:
    """The ``toolkit.json`` text for ``spec`` (what a cached tree must match)."""
    return json.dumps(asdict(spec), sort_keys=True, indent=2) + "\n"


def ensure_toolkit(out: Path, downloads: Path, spec: ToolkitSpec | None = None, run: Runner = _run) -> bool:
    """Make ``out`` a CUDA_HOME for ``spec``; False when it already was (nothing changed), True when built.

    Raises UserError (one line) when a download, a checksum or an unpack fails; ``out`` is then left as it
    was (the new tree is built in ``out``.partial and only renamed into place when complete).
    """
    spec = spec or ToolkitSpec()
    stamp = out / STAMP
    if stamp.is_file() and stamp.read_text() == stamp_of(spec) and (out / "bin" / "nvcc").exists():
        return False
    debs = download_debs(spec, downloads, run)
    wheel = download_cudnn(spec, downloads, run)
    partial = out.with_name(out.name + ".partial")
    stage = out.with_name(out.name + ".stage")
    for d in (partial, stage):
        shutil.rmtree(d, ignore_errors=True)
    stage.mkdir(parents=True)
    total = len(debs)
    for i, deb in enumerate(debs, 1):
        print(f"cuda-toolkit: unpack {i}/{total} ({100 * i // total}%) {deb.name}", flush=True)
        _extract_deb(deb, stage)
    assemble(stage, partial, wheel, spec)
    shutil.rmtree(stage, ignore_errors=True)
    (partial / STAMP).write_text(stamp_of(spec))
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    return True
