"""The emulated-Pi tooling without emulating anything: the architecture table, binfmt checks, the
vendored-archive pins, the published-bundle record, the summary line, and what ``devices`` says
for each NCSDK generation (the fake mvnc modules of tests/edge)."""

from __future__ import annotations

import hashlib
import json
import types
from pathlib import Path

import numpy as np
import pytest

from edge_image.backends import PROBES
from edge_image.backends.ncs import probe_mvnc
from edge_image.contract.errors import UserError
from tests.edge.fake_mvnc import make_v1, make_v2
from training_scripts.__main__ import main as training_main
from training_scripts.emulation.edge_node import (
    NCSDK_ARCHIVES,
    Summary,
    metric_sum,
    node_vars,
    published_archive,
    vendor_archive,
)
from training_scripts.emulation.rootfs import ARCHES, arch, ensure_binfmt

VENDOR = Path(__file__).resolve().parents[2].parent / "shared" / "vendor"


def test_arch_table_and_refusal() -> None:
    assert (arch("arm64").machine, arch("armhf").machine, arch("amd64").machine) == (
        "aarch64",
        "armv7l",
        "x86_64",
    )
    assert arch("arm64").binfmt == "qemu-aarch64" and arch("armhf").binfmt == "qemu-arm"
    with pytest.raises(UserError, match=r"^--arch: 'riscv64' is not one of amd64, arm64, armhf$"):
        arch("riscv64")


def _binfmt(directory: Path, body: str | None) -> Path:
    """A stand-in /proc/sys/fs/binfmt_misc: mounted (``register``), with a qemu-aarch64 entry if ``body``."""
    directory.mkdir()
    (directory / "register").write_text("")
    if body is not None:
        (directory / "qemu-aarch64").write_text(body)
    return directory


def test_binfmt_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)  # no update-binfmts to fix it with
    entry = "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\noffset 0\n"
    ensure_binfmt(ARCHES["arm64"], _binfmt(tmp_path / "ok", entry))
    ensure_binfmt(ARCHES["amd64"], tmp_path / "nowhere")  # native: nothing to check
    with pytest.raises(
        UserError, match=r"qemu-aarch64: not registered: arm64 binaries cannot run here .*qemu-user-static"
    ):
        ensure_binfmt(ARCHES["arm64"], _binfmt(tmp_path / "missing", None))
    with pytest.raises(UserError, match="not registered"):
        ensure_binfmt(ARCHES["arm64"], _binfmt(tmp_path / "disabled", "disabled\nflags: PF\n"))
    with pytest.raises(UserError, match=r"flags 'P' lack F"):
        ensure_binfmt(ARCHES["arm64"], _binfmt(tmp_path / "nofix", "enabled\nflags: P\n"))


def test_vendor_archives_are_pinned(tmp_path: Path) -> None:
    for name in NCSDK_ARCHIVES.values():
        path, digest = vendor_archive(name, VENDOR)
        assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    fake = tmp_path / "vendor"
    fake.mkdir()
    (fake / "ncsdk-2.10.01.01-api.tar.gz").write_bytes(b"tampered")
    (fake / "SHA256SUMS").write_text(f"{'a' * 64}  ncsdk-2.10.01.01-api.tar.gz\n")
    with pytest.raises(
        UserError, match=r"ncsdk-2.10.01.01-api.tar.gz: sha256 [0-9a-f]{64} does not match SHA256SUMS"
    ):
        vendor_archive("ncsdk-2.10.01.01-api.tar.gz", fake)
    with pytest.raises(UserError, match=r"SHA256SUMS: no line for ncsdk-1.12.01.01-api.tar.gz"):
        vendor_archive("ncsdk-1.12.01.01-api.tar.gz", fake)


def test_node_vars_pin_the_sources_and_the_bundle(tmp_path: Path) -> None:
    bundle = tmp_path / "b.tar.gz"
    got = node_vars(bundle=bundle, bundle_sha256="f" * 64, port=8123, ncsdk_api_version=1, vendor=VENDOR)
    assert got["ansible_connection"] == "community.general.chroot"
    assert got["ncsdk_api_version"] == 1 and got["ncsdk_firmware_source"] == "none"
    assert got["ncsdk_source_local_archive"] == str(VENDOR / "ncsdk-1.12.01.01-api.tar.gz")
    assert got["ncsdk_source_sha256"] == vendor_archive("ncsdk-1.12.01.01-api.tar.gz", VENDOR)[1]
    assert (got["edge_service_model_local_path"], got["edge_service_model_sha256"]) == (str(bundle), "f" * 64)
    assert got["edge_service_backend"] == {"kind": "auto", "device": "CPU"}


def test_published_archive(tmp_path: Path) -> None:
    latest = tmp_path / "latest.json"
    latest.write_text(json.dumps({"archive": "v1.tar.gz", "archive_sha256": "sha256:" + "1" * 64}))
    assert published_archive(latest) == (tmp_path / "v1.tar.gz", "1" * 64)
    latest.write_text(json.dumps({"path": "v1"}))
    with pytest.raises(UserError, match=r"latest.json: not the publish role's latest.json \('archive'\)"):
        published_archive(latest)
    with pytest.raises(UserError, match=r"nope.json: No such file or directory"):
        published_archive(tmp_path / "nope.json")


def test_summary_line_and_metrics() -> None:
    text = (
        'edge_frames_total 61.0\nedge_detections_total{label="a"} 4.0\nedge_detections_total{label="b"} 3.0\n'
    )
    assert (metric_sum(text, "edge_frames_total"), metric_sum(text, "edge_detections_total")) == (61.0, 7.0)
    line = Summary(
        "arm64", "aarch64", "opencv", 61, 7, "v2 (libmvnc /x): no Movidius stick found", "ok"
    ).line()
    assert line == (
        "edge-arm64: aarch64 backend=opencv frames=61 detections=7 "
        'mvnc="v2 (libmvnc /x): no Movidius stick found" healthz=ok'
    )


def _fake(make: object, plugged: bool) -> types.ModuleType:
    api = make(lambda x: np.zeros(4, np.float32), (8, 8, 3))  # type: ignore[operator]
    api.api.plugged = plugged
    return api


@pytest.mark.parametrize("make, version", [(make_v1, 1), (make_v2, 2)])
def test_probe_mvnc_says_what_the_api_found(make: object, version: int) -> None:
    assert probe_mvnc(_fake(make, False)) == f"v{version} (libmvnc): no Movidius stick found"
    assert probe_mvnc(_fake(make, True)) == f"v{version} (libmvnc): 1 stick(s) found"


def test_probe_mvnc_without_the_module_and_with_a_failing_enumerate() -> None:
    assert probe_mvnc().startswith(
        "not installed (backend.kind: mvnc: the NCSDK Python API (mvnc) is not installed"
    )
    broken = _fake(make_v2, False)

    def fail() -> list:
        raise RuntimeError("libusb_init: LIBUSB_ERROR_OTHER")

    broken.enumerate_devices = fail
    assert probe_mvnc(broken) == "v2 (libmvnc): enumerate failed: libusb_init: LIBUSB_ERROR_OTHER"


def test_devices_command_prints_one_line_per_backend(capsys: pytest.CaptureFixture[str]) -> None:
    from edge_image.__main__ import main

    assert main(["devices"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == list(PROBES)
    assert lines[2].startswith("opencv: ") and "(dnn)" in lines[2]


def test_cli_refuses_bad_input_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    common = ["edge-emulated", "--video", str(video), "--cache", str(tmp_path / "c")]
    assert training_main([*common, "--bundle", str(tmp_path / "b.tar.gz")]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --sha256: the bundle archive's 64-hex-digit sha256 is required with --bundle"
    )
    assert training_main([*common, "--bundle", str(tmp_path / "b.tar.gz"), "--sha256", "a" * 64]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'b.tar.gz'}: no such bundle archive"
    assert training_main([*common, "--arch", "mips", "--bundle", "x", "--sha256", "a" * 64]) == 2
    assert "--arch: 'mips' is not one of" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
