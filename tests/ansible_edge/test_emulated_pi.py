"""The edge roles into emulated Raspberry Pi roots under qemu-user, through the chroot connection.

- arm64 (Raspberry Pi OS 64-bit): the whole ``ansible/edge.yml`` — edge_base, ncsdk building
  libmvnc for aarch64 from the vendored NCSDK 2.10 sources, edge_service with a packed bundle
  archive pinned by its sha256 — then the service on the synthetic video and the summary line,
  changed=0 on a second run, bundles refused (wrong archive pin, a tampered file) while the
  deployed one keeps serving, and the NCSDK 1.12 build as well.
- armhf (Raspberry Pi OS 32-bit, the seed's Pi 3 + NCS1): the ncsdk role from a plain minbase root
  (its package step included), NCSDK 1.12 then 2.10, each libmvnc checked with ``file`` and asked
  for sticks by the real ``mvnc`` module. The service on armhf is ``make edge-armhf``; see the
  support matrix in edge_image/README.md.

``make test-emulated-arm64`` runs the arm64 tests (``-m "not emulated_full"``); ``make
test-emulated`` runs all of them, armhf and NCSDK 1.12 on arm64 included (``emulated_full``).
``make test`` does not: on a fresh 2-core machine the arm64 root alone took 29 minutes beside the
main suite, which it slowed to about half speed (see the Makefile).

Roots come from tarballs cached in ``.cache/pi-<arch>/`` (debootstrap; for arm64 with the roles'
Debian packages baked in, as an image build does); each module unpacks a fresh root from them.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ansible_edge.helpers import PLAYBOOKS, REPO, PlaybookRun
from tests.ansible_edge.test_chroot_deploy import _derived_bundle
from tests.fixtures import signing
from training_scripts.emulation.edge_node import LIBMVNC, VENV_PYTHON, EmulatedNode, free_port, node_vars
from training_scripts.emulation.rootfs import ARCHES
from training_scripts.export.archive import pack_bundle

pytestmark = pytest.mark.slow

# What `file -b` says of libmvnc per architecture.
ELF = {
    "arm64": "ELF 64-bit LSB shared object, ARM aarch64",
    "armhf": "ELF 32-bit LSB shared object, ARM, EABI5",
}
SUMMARY = re.compile(
    r"^edge-(?P<arch>\w+): (?P<machine>\w+) backend=(?P<backend>\w+) frames=(?P<frames>\d+) "
    r'detections=(?P<detections>\d+) mvnc="(?P<mvnc>[^"]*)" healthz=(?P<healthz>\S+)$'
)
# The real mvnc module, asked for sticks with each generation's call (needs no edge_image).
ENUMERATE = (
    "from mvnc import mvncapi as m; "
    "print('v1' if hasattr(m, 'EnumerateDevices') else 'v2', "
    "m.EnumerateDevices() if hasattr(m, 'EnumerateDevices') else m.enumerate_devices())"
)


def _file(path: Path) -> str:
    return subprocess.run(["file", "-b", str(path)], capture_output=True, text=True, check=True).stdout


def _ncsdk_vars(api: int) -> dict[str, object]:
    """The ncsdk_* part of the emulated node's vars for NCSDK generation ``api``."""
    full = node_vars(bundle=Path("/nonexistent"), bundle_sha256="0" * 64, port=1, ncsdk_api_version=api)
    return {k: v for k, v in full.items() if k.startswith(("ncsdk_", "ansible_"))}


@dataclass
class PiNode:
    """A provisioned emulated Pi and what the tests need to drive it."""

    arch: str
    node: EmulatedNode
    vars: dict[str, object]
    port: int
    version: str
    first: PlaybookRun

    def current(self) -> str:
        return str(self.node.chroot.path("/opt/edge-image/models/current").readlink())

    def role(self, role: str, **extra: object) -> PlaybookRun:
        """Only ``role`` (tests/ansible_edge/playbooks/role.yml) with the node's vars plus ``extra``."""
        return self.node.play(
            {**self.vars, **extra, "role_under_test": role}, playbook=PLAYBOOKS / "role.yml"
        )


@pytest.fixture(scope="module")
def arm64(
    model_bundle: Path, synth_video: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PiNode]:
    work = tmp_path_factory.mktemp("pi-arm64")
    archive = work / "bundle.tar.gz"
    digest = pack_bundle(model_bundle, archive)
    port = free_port()
    host_vars = node_vars(
        bundle=archive,
        bundle_sha256=digest,
        port=port,
        trusted_keys=(signing.public_key(),),
        ncsdk_api_version=2,
    )
    node = EmulatedNode(
        ARCHES["arm64"], REPO / ".cache" / "pi-arm64", root=work / "root", keep=False, workdir=work
    )
    try:
        node.stage(synth_video)
        started = time.monotonic()
        first = node.play(host_vars)
        print(f"arm64: first edge.yml run {time.monotonic() - started:.0f} s")
        version = json.loads((model_bundle / "manifest.json").read_text())["version"]
        yield PiNode("arm64", node, host_vars, port, version, first)
    finally:
        node.close()


def test_arm64_first_run_provisions_the_pi(arm64: PiNode) -> None:
    assert arm64.first.returncode == 0, arm64.first.output[-6000:]
    counts = arm64.first.counts(arm64.node.host)
    assert counts["failed"] == 0 and counts["changed"] > 10
    chroot = arm64.node.chroot
    assert chroot.run("uname", "-m").stdout.strip() == "aarch64"
    rules = chroot.path("/etc/udev/rules.d/97-movidius.rules").read_text()
    assert 'ATTRS{idVendor}=="03e7", ATTRS{idProduct}=="2150", GROUP="plugdev", MODE="0660"' in rules
    assert {"edge", "video", "plugdev"} <= set(chroot.run("id", "-nG", "edge").stdout.split())
    assert "camera_auto_detect=1" in chroot.path("/boot/firmware/config.txt").read_text().splitlines()
    assert arm64.current() == arm64.version
    # the service's own Python is the Pi's: an aarch64 interpreter with aarch64 wheels (aiohttp)
    probe = chroot.run(
        VENV_PYTHON, "-c", "import platform, aiohttp; print(platform.machine(), aiohttp.__file__)"
    )
    machine, aiohttp_file = probe.stdout.split()
    assert machine == "aarch64"
    extension = next(Path(chroot.path(aiohttp_file)).parent.glob("_http_parser*.so"))
    assert _file(extension).startswith("ELF 64-bit LSB shared object, ARM aarch64")


def test_arm64_libmvnc_is_built_for_aarch64(arm64: PiNode) -> None:
    assert _file(arm64.node.chroot.path(LIBMVNC)).startswith(ELF["arm64"])
    assert arm64.node.chroot.run(VENV_PYTHON, "-c", ENUMERATE).stdout.strip() == "v2 []"


def test_arm64_service_summary_line(arm64: PiNode) -> None:
    summary = arm64.node.summary(arm64.port, min_frames=30)
    line = summary.line()
    print(line)
    match = SUMMARY.match(line)
    assert match, line
    fields = match.groupdict()
    assert (fields["arch"], fields["machine"], fields["healthz"]) == ("arm64", "aarch64", "ok")
    # no stick on the emulated node: mvnc answers cleanly, and auto falls back to a CPU backend
    assert fields["mvnc"] == f"v2 (libmvnc {LIBMVNC}): no Movidius stick found"
    assert fields["backend"] in ("openvino", "opencv")
    assert int(fields["frames"]) >= 30
    records = arm64.node.chroot.path("/var/lib/edge-image/detections.jsonl").read_text().splitlines()
    assert records and json.loads(records[-1])["model"].endswith(arm64.version)
    auto = arm64.node.chroot.run(
        VENV_PYTHON, "-m", "edge_image", "devices", "--config", "/etc/edge-image/config.yml", timeout=300
    )
    assert f"auto -> {fields['backend']} for {arm64.version}" in auto.stdout.splitlines(), auto.stdout


def test_arm64_second_run_changes_nothing(arm64: PiNode) -> None:
    pid = arm64.node.chroot.path("/run/edge-image.pid").read_text()
    run = arm64.node.play(arm64.vars)
    assert run.returncode == 0, run.output[-5000:]
    counts = run.counts(arm64.node.host)
    assert counts["changed"] == 0, run.changed_tasks()
    assert arm64.node.chroot.path("/run/edge-image.pid").read_text() == pid, "the service was restarted"


def test_arm64_archive_with_wrong_pin_is_refused(arm64: PiNode, tmp_path: Path, model_bundle: Path) -> None:
    version = f"{arm64.version}-other"
    archive = tmp_path / f"{version}.tar.gz"
    pack_bundle(_derived_bundle(model_bundle, tmp_path / "other", version, break_models=False), archive)
    run = arm64.role(
        "edge_service", edge_service_model_local_path=str(archive), edge_service_model_sha256="0" * 64
    )
    assert run.returncode != 0
    assert f"does not match edge_service_model_sha256 {'0' * 64}" in run.failure(), run.output[-4000:]
    assert arm64.current() == arm64.version
    assert not arm64.node.chroot.path(f"/opt/edge-image/models/{version}").exists()


def test_arm64_tampered_bundle_is_refused_on_the_node(
    arm64: PiNode, tmp_path: Path, model_bundle: Path
) -> None:
    version = f"{arm64.version}-tampered"
    tampered = _derived_bundle(model_bundle, tmp_path / "tampered", version, break_models=False)
    victim = tampered / json.loads((tampered / "manifest.json").read_text())["artifacts"]["onnx"]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    pid = arm64.node.chroot.path("/run/edge-image.pid").read_text()
    run = arm64.role(
        "edge_service", edge_service_model_local_path=str(tampered), edge_service_model_sha256=""
    )
    assert run.returncode != 0
    assert f"Model bundle {version} refused on the node" in run.output and "sha256 mismatch" in run.output, (
        run.output[-4000:]
    )
    # the previous version keeps serving, untouched
    assert arm64.current() == arm64.version
    assert not arm64.node.chroot.path(f"/opt/edge-image/models/{version}").exists()
    assert arm64.node.chroot.path("/run/edge-image.pid").read_text() == pid
    status, health = arm64.node.health(arm64.port)
    assert status == 200 and health["ok"] is True and health["model"].endswith(f" {arm64.version}")


@pytest.mark.emulated_full
def test_arm64_ncsdk_1_builds_too(arm64: PiNode) -> None:
    run = arm64.node.play({**_ncsdk_vars(1), "role_under_test": "ncsdk"}, playbook=PLAYBOOKS / "role.yml")
    assert run.returncode == 0, run.output[-5000:]
    assert _file(arm64.node.chroot.path(LIBMVNC)).startswith(ELF["arm64"])
    devices = arm64.node.chroot.run(VENV_PYTHON, "-m", "edge_image", "devices", timeout=300)
    assert f"mvnc: v1 (libmvnc {LIBMVNC}): no Movidius stick found" in devices.stdout.splitlines(), (
        devices.stdout
    )


@pytest.fixture(scope="module")
def armhf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedNode]:
    work = tmp_path_factory.mktemp("pi-armhf")
    node = EmulatedNode(
        ARCHES["armhf"],
        REPO / ".cache" / "pi-armhf",
        root=work / "root",
        keep=False,
        workdir=work,
        layer=False,
    )
    try:
        yield node
    finally:
        node.close()


@pytest.mark.emulated_full
@pytest.mark.parametrize("api", [1, 2])
def test_armhf_ncsdk_builds_libmvnc_for_armv7l(armhf: EmulatedNode, api: int) -> None:
    run = armhf.play({**_ncsdk_vars(api), "role_under_test": "ncsdk"}, playbook=PLAYBOOKS / "role.yml")
    assert run.returncode == 0, run.output[-5000:]
    assert armhf.chroot.run("uname", "-m").stdout.strip() == "armv7l"
    assert _file(armhf.chroot.path(LIBMVNC)).startswith(ELF["armhf"])
    assert armhf.chroot.run("python3", "-c", ENUMERATE).stdout.strip() == f"v{api} []"
    if api == 1:  # the first run installed the build packages from a plain minbase root
        assert run.counts(armhf.host)["changed"] > 5
