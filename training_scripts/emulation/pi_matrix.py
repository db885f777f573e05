"""The Raspberry Pi support matrix: Pi model × OS × accelerator × runtime, and what is known of each
combination — tested here under emulation, documented but not testable here, or known not to work —
with the reason. One table; ``edge_image/README.md`` shows it rendered (:func:`render_markdown`;
``tests/ansible_edge/test_pi_matrix.py`` keeps the two equal and ties the "tested" rows to the
emulated-Pi tests).

What emulation covers and what it does not: qemu-user runs the Pi's userland (Debian bookworm arm64 or
armhf: the same packages Raspberry Pi OS takes from Debian), so package installs, Python wheels, the
libmvnc build, the service and its HTTP side are real. It does not emulate the Pi's kernel, firmware,
camera stack or USB: no stick can be attached, so inference on an NCS is never exercised here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["tested", "documented", "broken"]
LABELS: dict[Status, str] = {
    "tested": "tested here under emulation",
    "documented": "documented, not testable here",
    "broken": "does not work",
}

PI_OS_64 = "Raspberry Pi OS 64-bit (bookworm, arm64)"
PI_OS_32 = "Raspberry Pi OS 32-bit (bookworm, armhf)"
BUSTER_32 = "Raspberry Pi OS 32-bit Buster (armhf)"
NO_USB = "qemu-user has no USB: the stick is never attached here, and Intel's firmware archive is offline"


@dataclass(frozen=True)
class Row:
    """One combination. ``arch`` is the emulated root that tests it (``tested`` rows only)."""

    pi: str
    os: str
    accelerator: str
    runtime: str
    status: Status
    reason: str
    arch: str | None = None


MATRIX: tuple[Row, ...] = (
    Row(
        "Pi 4 / Pi 5 / Pi 3B+",
        PI_OS_64,
        "none (CPU)",
        "OpenCV DNN (Debian python3-opencv 4.6), `auto` fallback",
        "tested",
        "`make edge-arm64`; `make test-emulated` runs edge.yml into a fresh root: the service on a video, "
        "/healthz, changed=0 on the second run, refused bundles while the deployed one keeps serving",
        "arm64",
    ),
    Row(
        "Pi 4 / Pi 5 / Pi 3B+",
        PI_OS_64,
        "NCS1 (Myriad 2)",
        "NCSDK 2.10 `mvnc` (libmvnc built for aarch64)",
        "tested",
        '`make test-emulated`: built for aarch64, imported, devices enumerated ("no Movidius stick found"); '
        "inference on the stick: " + NO_USB,
        "arm64",
    ),
    Row(
        "Pi 4 / Pi 5 / Pi 3B+",
        PI_OS_64,
        "NCS1 (Myriad 2)",
        "NCSDK 1.12 `mvnc` (libmvnc built for aarch64)",
        "tested",
        "`make test-emulated`: built, imported and enumerated as above; NCSDK 1.x never supported a 64-bit "
        "Pi OS officially",
        "arm64",
    ),
    Row(
        "Pi 4 / Pi 5",
        PI_OS_64,
        "none (CPU)",
        "OpenVINO ARM CPU plugin (PyPI `openvino` aarch64 wheel)",
        "documented",
        "the wheel exists for cp311 aarch64; not in the emulated root (its CPU plugin under qemu is not a "
        "measurement; the role installs Debian's OpenCV)",
    ),
    Row(
        "Pi 4 / Pi 5",
        PI_OS_64,
        "NCS2 (Myriad X)",
        "OpenVINO MYRIAD plugin",
        "broken",
        "MYRIAD was removed in OpenVINO 2023.0 and never shipped in pip wheels; the 2022.3 Pi archives "
        "have no MYRIAD, and 2022.1/2022.2 are 32-bit Buster only",
    ),
    Row(
        "Pi 3 / Pi 3B+ / Pi 4",
        PI_OS_32,
        "none (CPU)",
        "OpenCV DNN (Debian python3-opencv 4.6), `auto` fallback",
        "tested",
        "`make edge-armhf` (run by hand on 2026-12-03: frames=36, healthz=ok, mvnc v1 no stick): edge.yml "
        "and the service as on arm64; aiohttp has armv7l wheels on PyPI",
        "armhf",
    ),
    Row(
        "Pi 3 / Pi 3B+ / Pi 4",
        PI_OS_32,
        "NCS1 (Myriad 2)",
        "NCSDK 1.12 `mvnc` (libmvnc built for armv7l; the seed's Pi 3 + NCS1 setup)",
        "tested",
        "`make test-emulated`: built for armv7l (from plain minbase), imported, enumerated; inference on "
        "the stick: " + NO_USB,
        "armhf",
    ),
    Row(
        "Pi 3 / Pi 3B+ / Pi 4",
        PI_OS_32,
        "NCS1 (Myriad 2)",
        "NCSDK 2.10 `mvnc` (libmvnc built for armv7l)",
        "tested",
        "`make test-emulated`: built for armv7l (from plain minbase), imported, enumerated; inference on "
        "the stick: " + NO_USB,
        "armhf",
    ),
    Row(
        "Pi 3 / Pi 3B+ / Pi 4",
        PI_OS_32,
        "none (CPU)",
        "OpenVINO (PyPI)",
        "broken",
        "PyPI has no armhf (armv7l) wheels of openvino",
    ),
    Row(
        "Pi 3 / Pi 3B+ / Pi 4",
        BUSTER_32,
        "NCS2 (Myriad X)",
        "OpenVINO 2022.1 Raspbian runtime (role openvino_runtime)",
        "documented",
        "needs Buster (Python 3.7) and the l_openvino_toolkit_runtime_raspbian archive, which is not "
        "reachable from here; the role's download refusal is tested",
    ),
    Row(
        "Pi 5",
        PI_OS_64,
        "AI HAT+ (Hailo-8/8L), AI Camera (IMX500)",
        "Hailo / IMX500 runtimes",
        "documented",
        "not supported by this project: the HEF compiler is not on PyPI; the bundle has no such format",
    ),
)


def render_markdown(rows: tuple[Row, ...] = MATRIX) -> str:
    """The matrix as a Markdown table (the block between the ``pi-matrix`` markers of the README)."""
    lines = [
        "| Pi | OS | Accelerator | Runtime | Status | Why / what was run |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.pi} | {r.os} | {r.accelerator} | {r.runtime} | {LABELS[r.status]} | {r.reason} |" for r in rows
    ]
    return "\n".join(lines) + "\n"
