"""ansible/edge.yml against a Debian bookworm root filesystem (debootstrap, cached under
.cache/edge-rootfs/) through the ``community.general.chroot`` connection.

The node gets the real exported bundle (``model_bundle``) and the synthetic video
(``synth_video``); systemd is not PID 1 in a chroot, so the role runs the unit's ExecStart
command with start-stop-daemon inside it, and the tests talk to the service over loopback.
Order matters: first deployment, service checks, idempotence, rollback, refusal, then the
NCSDK/OpenVINO download failures. Measured on 2 busy cores: see roles/edge_service/README.md.
"""

from __future__ import annotations

import configparser
import datetime
import hashlib
import http.client
import io
import ipaddress
import json
import platform
import shutil
import ssl
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from edge_image.contract.manifest import build_manifest, write_manifest
from edge_image.contract.signing import key_id, signature_document
from tests.ansible_edge.helpers import (
    EDGE_PLAYBOOK,
    PLAYBOOKS,
    REPO,
    PlaybookRun,
    run_playbook,
    write_inventory,
)
from tests.ansible_edge.rootfs import Chroot, rootfs_tarball
from tests.fixtures import signing
from training_scripts.emulation.edge_node import free_port, http_get
from training_scripts.export.archive import pack_bundle
from training_scripts.export.signing import FileSigner, generate_key, sign_bundle

pytestmark = pytest.mark.slow

VIDEO_IN_CHROOT = "/srv/edge/synth.mp4"
BOOT_CONFIG = "/boot/firmware/config.txt"
MODEL_ARTIFACTS = ("onnx", "pb", "openvino", "openvino_fp16", "darknet_weights", "ncs_graph")


def _closed_port_url(name: str) -> str:
    """An http URL on loopback where nothing listens (connection refused at once)."""
    return f"http://127.0.0.1:{free_port()}/{name}"


@dataclass
class EdgeNode:
    """The provisioned chroot and what the tests need to drive it."""

    chroot: Chroot
    inventory: Path
    cache: Path
    port: int
    bundle: Path
    version: str
    first: PlaybookRun
    first_seconds: float
    rootfs_seconds: float

    @property
    def host(self) -> str:
        return str(self.chroot.root)

    def play(self, playbook: Path = EDGE_PLAYBOOK, **kwargs: object) -> PlaybookRun:
        return run_playbook(playbook, self.inventory, cache_dir=self.cache, **kwargs)  # type: ignore[arg-type]

    def healthz(self) -> dict:
        status, body = http_get(f"http://127.0.0.1:{self.port}/healthz")
        doc = json.loads(body)
        doc["http_status"] = status
        return doc

    def current(self) -> str:
        return str(self.chroot.path("/opt/edge-image/models/current").readlink())


def _derived_bundle(source: Path, dest: Path, version: str, *, break_models: bool) -> Path:
    """A copy of ``source`` under a new version with a consistent, signed manifest; with
    ``break_models`` every model file is replaced by garbage (checksums and signature still match)."""
    shutil.copytree(source, dest)
    manifest = json.loads((dest / "manifest.json").read_text())
    if break_models:
        for kind, rel in manifest["artifacts"].items():
            if kind in MODEL_ARTIFACTS:
                (dest / rel).write_bytes(b"not a model\n")
                if kind.startswith("openvino"):
                    (dest / rel).with_suffix(".bin").write_bytes(b"not weights\n")
    rebuilt = build_manifest(
        dest,
        name=manifest["name"],
        version=version,
        classes=manifest["classes"],
        anchors=manifest["anchors"],
        input_size=manifest["input_size"],
        artifacts=manifest["artifacts"],
        source_checkpoint=manifest.get("source_checkpoint"),
        metrics=manifest.get("metrics"),
        tool_versions=manifest.get("tool_versions", {}),
        output_layout=manifest.get("output_layout", "hwc"),
    )
    write_manifest(dest, rebuilt)
    return signing.sign(dest)


@pytest.fixture(scope="module")
def edge_node(
    model_bundle: Path, synth_video: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EdgeNode]:
    work = tmp_path_factory.mktemp("edge-node")
    started = time.monotonic()
    tarball = rootfs_tarball(REPO / ".cache" / "edge-rootfs")
    chroot = Chroot(tarball, work / "root")
    rootfs_seconds = time.monotonic() - started
    try:
        # CAs the host trusts (e.g. a TLS-inspecting egress proxy) for pip inside the chroot;
        # ca-certificates (installed by edge_base) folds them into the bundle.
        local_cas = Path("/usr/local/share/ca-certificates")
        target_cas = chroot.path(str(local_cas))
        target_cas.mkdir(parents=True, exist_ok=True)
        for cert in sorted(local_cas.glob("*.crt")) if local_cas.is_dir() else []:
            shutil.copyfile(cert, target_cas / cert.name)
        video = chroot.path(VIDEO_IN_CHROOT)
        video.parent.mkdir(parents=True)
        shutil.copyfile(synth_video, video)
        video.chmod(0o644)
        boot = chroot.path(BOOT_CONFIG)
        boot.parent.mkdir(parents=True)
        boot.write_text("# Raspberry Pi firmware settings\ndtparam=audio=on\n#camera_auto_detect=0\n")
        port = free_port()
        inventory = write_inventory(
            work / "hosts.yml",
            {
                str(chroot.root): {
                    "ansible_connection": "community.general.chroot",
                    "ansible_become": False,
                    "ansible_python_interpreter": "/usr/bin/python3",
                    "edge_base_raspberry_pi": True,
                    "edge_service_model_local_path": str(model_bundle),
                    "edge_service_trusted_keys": [str(signing.public_key())],
                    "edge_service_source": {"kind": "video", "path": VIDEO_IN_CHROOT, "loop": True},
                    "edge_service_backend": {"kind": "auto", "device": "CPU"},
                    "edge_service_server_port": port,
                    "edge_service_outputs": {"jsonl": "/var/lib/edge-image/detections.jsonl"},
                    "edge_service_health_retries": 30,
                    "edge_service_health_delay": 2,
                }
            },
        )
        version = json.loads((model_bundle / "manifest.json").read_text())["version"]
        started = time.monotonic()
        first = run_playbook(EDGE_PLAYBOOK, inventory, cache_dir=work / "cache")
        first_seconds = time.monotonic() - started
        node = EdgeNode(
            chroot,
            inventory,
            work / "cache",
            port,
            model_bundle,
            version,
            first,
            first_seconds,
            rootfs_seconds,
        )
        print(f"rootfs ready in {rootfs_seconds:.0f} s, first edge.yml run {first_seconds:.0f} s")
        yield node
    finally:
        chroot.close()


def test_first_run_provisions_the_node(edge_node: EdgeNode) -> None:
    run = edge_node.first
    assert run.returncode == 0, run.output[-5000:]
    counts = run.counts(edge_node.host)
    assert counts["failed"] == 0 and counts["changed"] > 10
    chroot = edge_node.chroot

    rules = chroot.path("/etc/udev/rules.d/97-movidius.rules").read_text()
    for product in ("2150", "f63b", "2485"):
        assert (
            f'ATTRS{{idVendor}}=="03e7", ATTRS{{idProduct}}=="{product}", GROUP="plugdev", MODE="0660"'
            in rules
        )
    groups = chroot.run("id", "-nG", "edge").stdout.split()
    assert {"edge", "video", "plugdev"} <= set(groups)
    boot = chroot.path(BOOT_CONFIG).read_text().splitlines()
    assert "camera_auto_detect=1" in boot and "#camera_auto_detect=0" not in boot
    assert "dtparam=audio=on" in boot
    packages = chroot.run(
        "dpkg-query", "-W", "-f=${Package} ${Status}\\n", "python3-opencv", "v4l-utils", "libusb-1.0-0"
    )
    assert packages.stdout.count("install ok installed") == 3, packages.stdout

    venv_python = "/opt/edge-image/.venv/bin/python"
    probe = chroot.run(
        venv_python, "-c", "import aiohttp, cv2, edge_image.service; print(aiohttp.__version__)"
    )
    assert probe.stdout.strip() == "3.14.5"
    assert chroot.path("/opt/edge-image/edge_image/__main__.py").is_file()

    config = yaml.safe_load(chroot.path("/etc/edge-image/config.yml").read_text())
    assert config["model"]["bundle"] == "/opt/edge-image/models/current"
    assert config["source"] == {"kind": "video", "path": VIDEO_IN_CHROOT, "loop": True}
    assert config["server"] == {
        "host": "127.0.0.1",
        "port": edge_node.port,
        "allowed_hosts": [],
        "max_connections": 64,
        "request_timeout_s": 10.0,
    }
    check = chroot.run(
        venv_python, "-m", "edge_image", "check-config", "--config", "/etc/edge-image/config.yml"
    )
    assert f" {edge_node.version} " in check.stdout and "files verified" in check.stdout

    assert edge_node.current() == edge_node.version
    deployed = chroot.path(f"/opt/edge-image/models/{edge_node.version}")
    assert sorted(p.name for p in deployed.iterdir()) == sorted(p.name for p in edge_node.bundle.iterdir())


def test_unit_matches_the_edge_image_unit_and_verifies(edge_node: EdgeNode) -> None:
    chroot = edge_node.chroot
    unit_path = "/etc/systemd/system/edge-image.service"
    ours = configparser.ConfigParser(interpolation=None, strict=False)
    ours.optionxform = str  # type: ignore[assignment,method-assign]
    ours.read_string(chroot.path(unit_path).read_text())
    theirs = configparser.ConfigParser(interpolation=None, strict=False)
    theirs.optionxform = str  # type: ignore[assignment,method-assign]
    theirs.read_string((REPO / "edge_image" / "systemd" / "edge-image.service").read_text())
    for section in ("Unit", "Service", "Install"):
        assert dict(ours[section]) == dict(theirs[section]), section
    assert ours["Service"]["Type"] == "notify" and ours["Service"]["WatchdogSec"] == "30"
    verify = chroot.run("systemd-analyze", "verify", unit_path, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    wants = chroot.path("/etc/systemd/system/multi-user.target.wants/edge-image.service")
    assert wants.is_symlink() and str(wants.readlink()) == unit_path


def test_service_runs_the_bundle_on_the_video(edge_node: EdgeNode) -> None:
    health = edge_node.healthz()
    assert health["http_status"] == 200 and health["ok"] is True
    assert health["model"].endswith(f" {edge_node.version}")
    assert health["source"] == f"video {VIDEO_IN_CHROOT}"
    pid = int(edge_node.chroot.path("/run/edge-image.pid").read_text())
    status = Path(f"/proc/{pid}/status").read_text()
    uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
    assert edge_node.chroot.run("id", "-u", "edge").stdout.strip() == str(uid)
    assert Path(f"/proc/{pid}/root").readlink() == edge_node.chroot.root

    def frames() -> float:
        _, body = http_get(f"http://127.0.0.1:{edge_node.port}/metrics")
        line = next(x for x in body.decode().splitlines() if x.startswith("edge_frames_total"))
        return float(line.split()[-1])

    before = frames()
    time.sleep(3)
    assert frames() > before
    status_code, body = http_get(f"http://127.0.0.1:{edge_node.port}/api/detections")
    doc = json.loads(body)
    assert status_code == 200 and isinstance(doc["detections"], list)
    assert doc["status"]["model"] == health["model"]


def test_second_run_changes_nothing(edge_node: EdgeNode) -> None:
    pid = edge_node.chroot.path("/run/edge-image.pid").read_text()
    run = edge_node.play()
    assert run.returncode == 0, run.output[-5000:]
    counts = run.counts(edge_node.host)
    assert counts["changed"] == 0, run.changed_tasks()
    assert counts["failed"] == 0
    assert edge_node.chroot.path("/run/edge-image.pid").read_text() == pid, "the service was restarted"


def test_unhealthy_model_is_rolled_back(edge_node: EdgeNode, tmp_path: Path) -> None:
    bad_version = f"{edge_node.version}-broken"
    bad = _derived_bundle(edge_node.bundle, tmp_path / "broken", bad_version, break_models=True)
    # deployed the way the publish role ships bundles: one reproducible archive, its sha256 pinned
    archive = tmp_path / f"{bad_version}.tar.gz"
    digest = pack_bundle(bad, archive)
    run = edge_node.play(
        PLAYBOOKS / "role.yml",
        extra_vars={
            "role_under_test": "edge_service",
            "edge_service_model_local_path": str(archive),
            "edge_service_model_sha256": digest,
            "edge_service_health_retries": 10,
            "edge_service_health_delay": 2,
        },
    )
    assert run.returncode != 0
    assert f"ROLLED BACK: model {bad_version} failed its health check" in run.output, run.output[-5000:]
    counts = run.counts(edge_node.host)
    assert counts["failed"] == 1 and counts["rescued"] == 1
    assert edge_node.current() == edge_node.version
    health = edge_node.healthz()
    assert health["ok"] is True and health["model"].endswith(f" {edge_node.version}")
    # The broken version stays on disk for inspection; it is not in service.
    assert edge_node.chroot.path(f"/opt/edge-image/models/{bad_version}/manifest.json").is_file()


def test_bundle_with_wrong_checksum_is_refused(edge_node: EdgeNode, tmp_path: Path) -> None:
    version = f"{edge_node.version}-tampered"
    tampered = _derived_bundle(edge_node.bundle, tmp_path / "tampered", version, break_models=False)
    manifest = json.loads((tampered / "manifest.json").read_text())
    victim = tampered / manifest["artifacts"]["onnx"]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    run = edge_node.play(
        PLAYBOOKS / "role.yml",
        extra_vars={"role_under_test": "edge_service", "edge_service_model_local_path": str(tampered)},
    )
    assert run.returncode != 0
    assert f"Model bundle {version} refused on the node" in run.output, run.output[-5000:]
    assert "sha256 mismatch" in run.output
    assert edge_node.current() == edge_node.version
    assert not edge_node.chroot.path(f"/opt/edge-image/models/{version}").exists()
    assert edge_node.healthz()["ok"] is True


@pytest.mark.parametrize("attack", ["unsigned", "foreign-key"])
def test_bundle_without_a_trusted_signature_is_refused_before_copying(
    edge_node: EdgeNode, tmp_path: Path, attack: str
) -> None:
    """A consistent bundle (every checksum right) that the trusted key did not sign: refused on the
    controller, nothing copied; the deployed model keeps serving."""
    version = f"{edge_node.version}-{attack}"
    bundle = _derived_bundle(edge_node.bundle, tmp_path / attack, version, break_models=False)
    if attack == "unsigned":
        (bundle / "manifest.sig").unlink()
        expected = "unsigned bundle (no manifest.sig)"
    else:
        other = FileSigner(generate_key(tmp_path / "other-key")[0])
        sign_bundle(bundle, other)
        expected = f"signed by key {key_id(other.public_key())}, which is not trusted"
    run = edge_node.play(
        PLAYBOOKS / "role.yml",
        extra_vars={"role_under_test": "edge_service", "edge_service_model_local_path": str(bundle)},
    )
    assert run.returncode != 0
    assert expected in run.output, run.output[-4000:]
    assert "TASK [edge_service : Copy the bundle's files" not in run.output
    assert not edge_node.chroot.path(f"/opt/edge-image/models/{version}").exists()
    assert edge_node.current() == edge_node.version and edge_node.healthz()["ok"] is True


def _crafted_archive(bundle: Path, path: Path, version: str, evil: dict[str, object]) -> Path:
    """An archive of ``bundle`` whose manifest also lists ``evil`` (and carries it as a member), made
    by hand (``training_scripts pack`` refuses to make one) and signed with the trusted key: a
    compromised signer, so that only the structure check stands between it and the node."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["version"] = version
    manifest["files"].append(evil)
    members = {
        f"{version}/{e['path']}": (bundle / str(e["path"])).read_bytes() for e in manifest["files"][:-1]
    }
    members[f"{version}/{evil['path']}"] = b"* * * * * root /bin/sh -c 'id > /tmp/owned'\n"
    manifest_bytes = json.dumps(manifest).encode()
    members[f"{version}/manifest.json"] = manifest_bytes
    signer = FileSigner(signing.private_key())
    members[f"{version}/manifest.sig"] = signature_document(
        signer.algorithm, key_id(signer.public_key()), signer.sign(manifest_bytes)
    )
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            entry = tarfile.TarInfo(name)
            entry.size, entry.mode = len(data), 0o644
            tar.addfile(entry, io.BytesIO(data))
    return path


@pytest.mark.parametrize(
    "evil_path",
    ["../../../../../etc/cron.d/edge-evil", "/root/.ssh/id_ed25519"],
    ids=["traversing-path", "controller-file"],
)
def test_crafted_archive_writes_nothing_on_the_node(
    edge_node: EdgeNode, tmp_path: Path, evil_path: str
) -> None:
    """Issue 16's attack: manifest paths that climb out of the models directory (written as root on the
    Pi) or name a controller file (copied to every Pi). The controller-side check refuses the archive
    before any task reads it for copying or creates anything on the node."""
    version = f"{edge_node.version}-crafted"
    evil = {"path": evil_path, "sha256": "0" * 64, "bytes": 46}
    archive = _crafted_archive(edge_node.bundle, tmp_path / "crafted.tar.gz", version, evil)
    models = edge_node.chroot.path("/opt/edge-image/models")
    before = sorted(p.name for p in models.iterdir())
    run = edge_node.play(
        PLAYBOOKS / "role.yml",
        extra_vars={"role_under_test": "edge_service", "edge_service_model_local_path": str(archive)},
    )
    assert run.returncode != 0
    assert "TASK [edge_service : Check the bundle on the controller before any of it is copied]" in run.output
    assert "not a relative path inside the bundle" in run.output, run.output[-4000:]
    # no task after the check ran: nothing created, nothing copied
    assert "TASK [edge_service : Create the model directories" not in run.output
    assert "TASK [edge_service : Copy the bundle's files" not in run.output
    assert sorted(p.name for p in models.iterdir()) == before
    assert not edge_node.chroot.path("/etc/cron.d/edge-evil").exists()
    assert not edge_node.chroot.path(f"/opt/edge-image/models/{version}").exists()
    assert edge_node.current() == edge_node.version and edge_node.healthz()["ok"] is True


def _firmware_archive(path: Path, version: str, arch: str) -> bytes:
    """A release archive laid out like NCSDK-<version>.tar.gz (ncsdk-<arch>/fw/*.mvcmd)."""
    firmware = f"firmware for {arch}\n".encode() * 64
    with tarfile.open(path, "w:gz") as tar:
        for name in (f"NCSDK-{version}", f"NCSDK-{version}/ncsdk-{arch}", f"NCSDK-{version}/ncsdk-{arch}/fw"):
            entry = tarfile.TarInfo(name)
            entry.type, entry.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(entry)
        entry = tarfile.TarInfo(f"NCSDK-{version}/ncsdk-{arch}/fw/MvNCAPI-ma2450.mvcmd")
        entry.size, entry.mode = len(firmware), 0o644
        tar.addfile(entry, io.BytesIO(firmware))
    return firmware


def test_ncsdk_firmware_sources(edge_node: EdgeNode, tmp_path: Path) -> None:
    common = {"role_under_test": "ncsdk", "ncsdk_api_version": 2}
    url = _closed_port_url("NCSDK-2.10.01.01.tar.gz")
    unreachable = edge_node.play(
        PLAYBOOKS / "role.yml", tags="ncsdk_firmware", extra_vars={**common, "ncsdk_firmware_url": url}
    )
    assert unreachable.returncode != 0
    assert f"NCSDK firmware archive unreachable: {url}" in unreachable.output, unreachable.output[-4000:]
    assert "ncsdk_firmware_source=local" in unreachable.output

    archive = tmp_path / "NCSDK-2.10.01.01.tar.gz"
    firmware = _firmware_archive(archive, "2.10.01.01", platform.machine())
    local = {**common, "ncsdk_firmware_source": "local", "ncsdk_firmware_local_archive": str(archive)}
    wrong = edge_node.play(
        PLAYBOOKS / "role.yml", tags="ncsdk_firmware", extra_vars={**local, "ncsdk_firmware_sha256": "0" * 64}
    )
    assert wrong.returncode != 0 and "does not match ncsdk_firmware_sha256" in wrong.output, wrong.output[
        -4000:
    ]

    good = edge_node.play(
        PLAYBOOKS / "role.yml",
        tags="ncsdk_firmware",
        extra_vars={**local, "ncsdk_firmware_sha256": hashlib.sha256(archive.read_bytes()).hexdigest()},
    )
    assert good.returncode == 0, good.output[-4000:]
    assert edge_node.chroot.path("/usr/local/lib/mvnc/MvNCAPI-ma2450.mvcmd").read_bytes() == firmware


def test_openvino_archive_unreachable(edge_node: EdgeNode) -> None:
    url = _closed_port_url("l_openvino_toolkit_runtime_raspbian_p_2022.1.0.643.tgz")
    run = edge_node.play(
        PLAYBOOKS / "role.yml",
        extra_vars={"role_under_test": "openvino_runtime", "openvino_runtime_archive_url": url},
    )
    assert run.returncode != 0
    assert f"OpenVINO runtime archive unreachable: {url}" in run.output, run.output[-4000:]
    assert not edge_node.chroot.path("/opt/intel/openvino_2022").exists()


def test_https_certificate_made_on_the_node_is_the_one_served(edge_node: EdgeNode) -> None:
    """edge_service_tls=self_signed: a key made on the node (0640 root:edge), a certificate for
    loopback and the node's names, HTTPS that verifies against exactly it, no plain HTTP, and a
    second run that changes nothing (the certificate is not remade); one that expires within 30
    days is remade. Last: the service stays on HTTPS."""
    tls = {"edge_service_tls": "self_signed"}
    run = edge_node.play(extra_vars=tls)
    assert run.returncode == 0, run.output[-5000:]
    cert_path = edge_node.chroot.path("/etc/edge-image/tls/service.crt")
    key_path = edge_node.chroot.path("/etc/edge-image/tls/service.key")
    key_stat = key_path.stat()
    edge_gid = int(edge_node.chroot.run("id", "-g", "edge").stdout)
    assert (key_stat.st_mode & 0o777, key_stat.st_uid, key_stat.st_gid) == (0o640, 0, edge_gid)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    hostname = edge_node.chroot.run("hostname").stdout.strip()
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert {hostname, f"{hostname}.local"} <= set(names.get_values_for_type(x509.DNSName))

    context = ssl.create_default_context(cafile=str(cert_path))
    url = f"https://127.0.0.1:{edge_node.port}/healthz"
    with urllib.request.urlopen(url, context=context, timeout=10) as response:
        assert response.status == 200 and json.loads(response.read())["ok"] is True
    with pytest.raises((OSError, http.client.HTTPException)):
        http_get(f"http://127.0.0.1:{edge_node.port}/healthz")

    again = edge_node.play(extra_vars=tls)
    assert again.returncode == 0, again.output[-5000:]
    assert again.counts(edge_node.host)["changed"] == 0, again.changed_tasks()
    assert x509.load_pem_x509_certificate(cert_path.read_bytes()) == cert

    cert_path.write_bytes(_reissued(cert, key_path.read_bytes(), days=10))  # inside the 30-day window
    renewed = edge_node.play(extra_vars=tls)
    assert renewed.returncode == 0, renewed.output[-5000:]
    assert "edge_service : Make the self-signed certificate" in renewed.changed_tasks()
    fresh = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert fresh.not_valid_after_utc - fresh.not_valid_before_utc > datetime.timedelta(days=800)


def _reissued(cert: x509.Certificate, key_pem: bytes, *, days: int) -> bytes:
    """``cert`` signed again by its own key with the same subject and extensions, valid ``days``."""
    key = serialization.load_pem_private_key(key_pem, password=None)
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(cert.issuer)
        .public_key(cert.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=days))
    )
    for extension in cert.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)  # type: ignore[arg-type]
