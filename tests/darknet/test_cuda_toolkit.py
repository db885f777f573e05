"""training_scripts.darknet.cuda_toolkit without downloading: the apt mirror comes from the system's
deb822 sources, a wheel with the wrong digest is refused and removed, a complete tree is not rebuilt,
and the tree `make darknet-gpu` built holds what a CUDA build needs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge_image.contract.errors import UserError
from training_scripts.darknet.cuda_toolkit import (
    STAMP,
    ToolkitSpec,
    debian_mirror,
    download_cudnn,
    ensure_toolkit,
    stamp_of,
)

REPO = Path(__file__).resolve().parents[2]
CUDA = Path(os.environ.get("CUDA_LOCAL", REPO / ".cache" / "cuda-11.8"))

SOURCES = """\
Types: deb deb-src
URIs: http://mirror.invalid/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.invalid/debian-security
Suites: bookworm-security
Components: main
"""


def _no_downloads(argv: list[str]) -> None:
    raise AssertionError(f"nothing should be downloaded: {argv}")


def test_mirror_is_read_from_the_system_sources(tmp_path: Path) -> None:
    path = tmp_path / "debian.sources"
    path.write_text(SOURCES)
    assert debian_mirror((path,), "bookworm") == (
        "http://mirror.invalid/debian",
        "/usr/share/keyrings/debian-archive-keyring.gpg",
    )
    with pytest.raises(UserError, match="no apt entry for suite 'trixie'"):
        debian_mirror((path,), "trixie")


def test_cudnn_wheel_with_another_digest_is_refused_and_removed(tmp_path: Path) -> None:
    spec = ToolkitSpec()
    wheels = tmp_path / "wheels"

    def fake_pip(argv: list[str]) -> None:
        wheels.mkdir(exist_ok=True)
        (wheels / "nvidia_cudnn_cu11-8.9.5.30-py3-none-manylinux1_x86_64.whl").write_bytes(b"not cudnn")

    with pytest.raises(UserError, match="is not the pinned df16c962"):
        download_cudnn(spec, tmp_path, run=fake_pip)
    assert list(wheels.iterdir()) == []


def test_a_complete_tree_is_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "cuda"
    (out / "bin").mkdir(parents=True)
    (out / "bin" / "nvcc").write_text("")
    (out / STAMP).write_text(stamp_of(ToolkitSpec()))
    assert ensure_toolkit(out, tmp_path / "dl", run=_no_downloads) is False
    # another pin means another tree: it would download (and here the stand-in runner refuses)
    with pytest.raises(AssertionError, match="nothing should be downloaded"):
        ensure_toolkit(out, tmp_path / "dl", ToolkitSpec(cudnn_soname="libcudnn.so.9"), run=_no_downloads)


@pytest.mark.slow
def test_the_built_tree_has_compiler_headers_and_libraries() -> None:
    assert (CUDA / STAMP).is_file(), f"{CUDA}: run `make cuda-toolkit` (make test does)"
    assert ensure_toolkit(CUDA, CUDA.parent / "downloads" / "cuda", run=_no_downloads) is False
    for rel in (
        "bin/nvcc",
        "bin/cicc",
        "bin/ptxas",
        "bin/cuobjdump",
        "bin/nvcc.profile",
        "include/cuda_runtime.h",
        "include/cublas_v2.h",
        "include/curand.h",
        "include/cudnn.h",
        "include/cuda_fp16.h",
        "lib64/libcudart.so",
        "lib64/libcublas.so",
        "lib64/libcurand.so",
        "lib64/libcudnn.so",
        "lib64/stubs/libcuda.so",
        "nvvm/libdevice/libdevice.10.bc",
    ):
        assert (CUDA / rel).exists(), rel
    # static archives other than the ones nvcc links into every program are left out (size)
    assert sorted(p.name for p in (CUDA / "lib64").glob("*.a")) == [
        "libcudadevrt.a",
        "libcudart_static.a",
        "libculibos.a",
    ]
