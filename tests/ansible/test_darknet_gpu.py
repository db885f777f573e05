"""darknet's GPU build, as ``make darknet-gpu`` leaves it (``make test`` builds it first): AlexeyAB at
the pinned commit from the vendor archive through roles/darknet with GPU=1 CUDNN=1 CUDNN_HALF=1,
compiled here (no GPU) with CUDA 11.8 from Debian non-free and cuDNN 8.9 from PyPI.

What is checked: the libraries it links, the device code it holds (sm_70 for the V100 and sm_86),
the build flags, that a second run changes nothing, that a wrong archive digest is refused before
anything is unpacked, and why it cannot train here (no driver: the GPU build stops before `-nogpu`
is looked at)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ansible.runner import REPO, run_playbook

pytestmark = pytest.mark.slow

GPU_DIR = Path(os.environ.get("DARKNET_GPU_DIR", REPO / ".cache" / "darknet-gpu"))
CUDA = Path(os.environ.get("CUDA_LOCAL", REPO / ".cache" / "cuda-11.8"))
ARCHIVE = Path(
    os.environ.get("DARKNET_ARCHIVE", REPO.parent / "shared" / "vendor" / "darknet-alexeyab-59596d78.tar.gz")
)
ARCHIVE_SHA256 = "a05c88d2887f182b1e25c7d4873f5447d56b69b9027035ae8fe15fdff1af91a6"
BIN = GPU_DIR / "darknet"
PLAYBOOK = REPO / "ansible" / "darknet-gpu.yml"


@pytest.fixture(scope="module")
def gpu_bin() -> Path:
    assert BIN.is_file(), f"{BIN} missing: run `make darknet-gpu` (make test does)"
    return BIN


def _env(stubs: bool) -> dict[str, str]:
    paths = [CUDA / "lib64"] + ([CUDA / "lib64" / "stubs"] if stubs else [])
    return {**os.environ, "LD_LIBRARY_PATH": ":".join(map(str, paths))}


def _vars(root: Path, sha256: str = ARCHIVE_SHA256) -> dict[str, object]:
    return {
        "darknet_archive": str(ARCHIVE),
        "darknet_archive_sha256": sha256,
        "darknet_root": str(root),
        "darknet_cuda_home": str(CUDA),
        "darknet_cuda_arch": ["7.0", "8.6"],
        "darknet_verify_gpu": False,
        "ansible_python_interpreter": sys.executable,
    }


def test_links_cudart_cublas_curand_cudnn_from_the_toolkit(gpu_bin: Path) -> None:
    kind = subprocess.run(["file", "-b", str(gpu_bin)], capture_output=True, text=True, check=True).stdout
    assert kind.startswith("ELF 64-bit LSB pie executable, x86-64"), kind
    ldd = subprocess.run(
        ["ldd", str(gpu_bin)], capture_output=True, text=True, env=_env(True), check=True
    ).stdout
    libs = {
        line.split()[0]: line.split()[2]
        for line in ldd.splitlines()
        if "=>" in line and len(line.split()) > 2
    }
    for soname in ("libcudart.so.11.0", "libcublas.so.11", "libcurand.so.10", "libcudnn.so.8"):
        assert libs.get(soname, "").startswith(str(CUDA / "lib64")), f"{soname}: {libs.get(soname)}\n{ldd}"
    assert libs["libcuda.so.1"] == str(CUDA / "lib64" / "stubs" / "libcuda.so.1")  # the driver's, at run time
    assert "not found" not in ldd


def test_holds_sm70_and_sm86_device_code_and_the_requested_flags(gpu_bin: Path) -> None:
    elf = subprocess.run(
        [str(CUDA / "bin" / "cuobjdump"), "--list-elf", str(gpu_bin)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    archs = {line.rsplit(".", 2)[-2] for line in elf.splitlines() if line.endswith(".cubin")}
    assert archs == {"sm_70", "sm_86"}, elf[:400]
    stamp = json.loads((GPU_DIR / "build.json").read_text())
    make = stamp["make"]
    for flag in ("GPU=1", "CUDNN=1", "CUDNN_HALF=1", "OPENMP=1"):
        assert flag in make, make
    arch = next(a for a in make if a.startswith("ARCH="))
    assert (
        "arch=compute_70,code=[sm_70,compute_70]" in arch
        and "arch=compute_86,code=[sm_86,compute_86]" in arch
    )
    assert stamp["source"] == f"archive {ARCHIVE.name} sha256:{ARCHIVE_SHA256}"


def test_second_run_changes_nothing(gpu_bin: Path, tmp_path: Path) -> None:
    before = gpu_bin.stat().st_mtime_ns
    run = run_playbook(PLAYBOOK, inventory="localhost,", tmp=tmp_path, extra_vars=_vars(GPU_DIR), timeout=600)
    assert run.returncode == 0, run.tail()
    assert run.changed() == 0, run.tail()
    assert "GPU=1, not run (no GPU on this host)" in run.output and "device code sm_70 sm_86" in run.output
    assert gpu_bin.stat().st_mtime_ns == before


def test_wrong_archive_digest_is_refused_before_unpacking(tmp_path: Path) -> None:
    root = tmp_path / "darknet"
    run = run_playbook(
        PLAYBOOK, inventory="localhost,", tmp=tmp_path, extra_vars=_vars(root, "0" * 64), timeout=300
    )
    assert run.returncode != 0
    assert (
        f"darknet_archive={ARCHIVE}: sha256 {ARCHIVE_SHA256} is not darknet_archive_sha256 {'0' * 64}"
        in run.output
    )
    assert not (root / "src-archive").exists()


def test_cannot_train_without_a_driver_even_with_nogpu(gpu_bin: Path, tmp_path: Path) -> None:
    """AlexeyAB's main() calls show_cuda_cudnn_info() in every GPU build before any command (and before
    -nogpu is read): cudaRuntimeGetVersion fails against the libcuda stub, and without the stub the
    loader finds no libcuda.so.1. So the GPU binary's CPU training cannot be tried on this machine;
    `make gpu-check` trains with it on a GPU host, and the CPU build (Debian's source) trains here."""
    argv = [str(gpu_bin), "-i", "-1", "detector", "train", "x.data", "x.cfg", "-nogpu", "-dont_show"]
    with_stub = subprocess.run(
        argv, capture_output=True, text=True, env=_env(True), cwd=tmp_path, check=False
    )
    assert with_stub.returncode != 0
    assert (
        "show_cuda_cudnn_info()" in with_stub.stderr and "CUDA driver is a stub library" in with_stub.stderr
    )
    no_driver = subprocess.run(
        argv, capture_output=True, text=True, env=_env(False), cwd=tmp_path, check=False
    )
    assert no_driver.returncode == 127 and "libcuda.so.1: cannot open shared object file" in no_driver.stderr
