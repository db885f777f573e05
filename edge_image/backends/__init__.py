"""Inference backends behind one interface, and the ``auto`` choice.

A backend takes the preprocessed batch (see :mod:`edge_image.preprocess`) and returns the
raw region-layer output; :func:`edge_image.contract.decode.decode` turns it into boxes for all of
them. ``auto`` = a Movidius stick is plugged in and the NCSDK API imports → ``mvnc``; else
OpenVINO is installed → ``openvino``; else ``opencv`` (cv2.dnn).
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Protocol

import numpy as np

from edge_image.config import BackendConfig
from edge_image.contract.decode import Layout
from edge_image.contract.errors import UserError
from edge_image.contract.manifest import Bundle
from edge_image.preprocess import InputLayout

log = logging.getLogger(__name__)

#: USB vendor id of Movidius / Intel Myriad devices (NCS: 2150 before boot, f63b booted; NCS2: 2485).
MOVIDIUS_VENDOR = "03e7"


class BackendError(Exception):
    """Inference failed at run time (e.g. the stick was unplugged); reopening may help."""


class Backend(Protocol):
    """One loaded model on one device.

    ``input_hw`` is the network input (height, width); ``input_layout`` and ``input_dtype``
    say what :func:`edge_image.preprocess.preprocess` must produce; ``output_layout`` is the
    raw output's layout for :func:`edge_image.contract.decode.decode`.
    """

    name: str
    device: str
    input_hw: tuple[int, int]
    input_layout: InputLayout
    input_dtype: type
    output_layout: Layout

    def infer(self, blob: np.ndarray) -> np.ndarray:
        """Raw output for one preprocessed batch; :class:`BackendError` on device failure."""
        ...

    def close(self) -> None:
        """Release the device (idempotent)."""
        ...


def layout_from_shape(shape: tuple[int, ...], channels: int) -> Layout:
    """Which axis holds the ``channels`` of a 3-D/4-D region output.

    >>> layout_from_shape((1, 13, 13, 160), 160), layout_from_shape((1, 160, 13, 13), 160)
    ('hwc', 'chw')
    """
    dims = [int(d) for d in shape if int(d) != 1] if len(shape) == 4 else [int(d) for d in shape]
    if len(dims) == 3 and dims[-1] == channels:
        return "hwc"
    if len(dims) == 3 and dims[0] == channels:
        return "chw"
    if len(dims) == 1:
        return "hwc"  # flat channel-minor vector (NCS)
    raise UserError(f"model output shape {tuple(shape)} does not have {channels} channels on either end")


def movidius_present(usb_root: Path = Path("/sys/bus/usb/devices")) -> bool:
    """Whether a USB device with the Movidius vendor id is attached (reads sysfs, no libusb)."""
    try:
        vendors = list(usb_root.glob("*/idVendor"))
    except OSError:
        return False
    for vendor in vendors:
        try:
            if vendor.read_text().strip().lower() == MOVIDIUS_VENDOR:
                return True
        except OSError:
            continue
    return False


def resolve_kind(config: BackendConfig, bundle: Bundle, usb_root: Path = Path("/sys/bus/usb/devices")) -> str:
    """The concrete backend for ``config.kind`` (``auto`` → mvnc, openvino or opencv)."""
    if config.kind != "auto":
        return config.kind
    if (
        bundle.has("ncs_graph")
        and movidius_present(usb_root)
        and importlib.util.find_spec("mvnc") is not None
    ):
        return "mvnc"
    if importlib.util.find_spec("openvino") is not None and (
        bundle.has("openvino") or bundle.has("onnx") or bundle.has("openvino_fp16")
    ):
        return "openvino"
    return "opencv"


def open_backend(kind: str, config: BackendConfig, bundle: Bundle) -> Backend:
    """Load ``bundle`` on backend ``kind`` (``mvnc``, ``openvino`` or ``opencv``)."""
    if kind == "mvnc":
        from edge_image.backends.ncs import MvncBackend

        return MvncBackend(bundle)
    if kind == "openvino":
        from edge_image.backends.openvino_backend import OpenVinoBackend

        return OpenVinoBackend(
            bundle, device=config.device, threads=config.threads, precision=config.precision
        )
    if kind == "opencv":
        from edge_image.backends.opencv_backend import OpenCvBackend

        return OpenCvBackend(bundle, threads=config.threads)
    raise UserError(f"unknown backend {kind!r} (use auto, mvnc, openvino, opencv)")


def probe_openvino() -> str:
    """OpenVINO's version and the devices its plugins see (e.g. ``2025.4.1: CPU``), or why not."""
    try:
        import openvino as ov
    except ImportError:
        return "not installed"
    try:
        devices = ov.Core().available_devices
    except Exception as exc:  # a plugin that fails to load raises RuntimeError
        return f"{ov.__version__}: no devices ({exc})"
    return f"{ov.__version__}: {', '.join(devices) or 'no devices'}"


def probe_opencv() -> str:
    """OpenCV's version (its DNN module runs every bundle with an ONNX or .pb model)."""
    try:
        import cv2
    except ImportError:
        return "not installed"
    return f"{cv2.__version__} (dnn)"


def _probe_mvnc() -> str:
    from edge_image.backends.ncs import probe_mvnc

    return probe_mvnc()


#: One line per backend saying what it finds on this node (``python -m edge_image devices``).
PROBES = {"mvnc": _probe_mvnc, "openvino": probe_openvino, "opencv": probe_opencv}
