"""Movidius Neural Compute Stick backend through the NCSDK Python API (``mvnc``), v1 or v2.

The API version is detected at run time: only NCSDK 2.x has ``global_get_option`` /
``GlobalOption`` (``RO_API_VERSION``); 1.x has ``EnumerateDevices``. Call sequences
(NCSDK 1.12 and 2.10 Python API docs):

- v1: ``EnumerateDevices()`` → ``Device(name)`` → ``OpenDevice()`` → ``AllocateGraph(blob)``
  → ``LoadTensor(float16 tensor, userobj)`` → ``GetResult()`` (float16)
  → ``DeallocateGraph()`` → ``CloseDevice()``.
- v2: ``enumerate_devices()`` → ``Device(handle)`` → ``open()`` → ``Graph(name)`` →
  ``allocate_with_fifos(device, blob)`` (FP32 FIFOs) → ``queue_inference_with_fifo_elem
  (fifo_in, fifo_out, float32 tensor, userobj)`` → ``fifo_out.read_elem()`` → destroy both
  FIFOs, then the graph, then ``close()`` and ``destroy()`` the device.

The stick returns the darkflow graph's output channel-minor (13x13xN, flattened), decoded
with layout ``hwc``. Any API exception during inference is a :class:`BackendError`, so the
pipeline closes and reopens the device (stick unplugged and replugged).
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from edge_image.backends import BackendError
from edge_image.contract.decode import Layout
from edge_image.contract.errors import UserError
from edge_image.contract.manifest import Bundle
from edge_image.preprocess import InputLayout

log = logging.getLogger(__name__)


def import_mvnc() -> ModuleType:
    """``from mvnc import mvncapi`` (both NCSDK versions ship it there)."""
    try:
        from mvnc import mvncapi
    except ImportError as exc:
        raise UserError(
            "backend.kind: mvnc: the NCSDK Python API (mvnc) is not installed (the ncsdk role installs it)"
        ) from exc
    return mvncapi


def api_version(api: ModuleType) -> int:
    """1 or 2: NCSDK 2.x is the one with ``global_get_option(GlobalOption.RO_API_VERSION)``."""
    if hasattr(api, "global_get_option") and hasattr(api, "GlobalOption"):
        # NCSDK 2.10 returns numpy.frombuffer(<4 c_uints>): major, minor, hotfix, release
        version = np.asarray(api.global_get_option(api.GlobalOption.RO_API_VERSION)).reshape(-1)
        return int(version[0])
    if hasattr(api, "EnumerateDevices"):
        return 1
    raise UserError("backend.kind: mvnc: the installed mvnc module is neither the NCSDK v1 nor v2 API")


def probe_mvnc(api: ModuleType | None = None) -> str:
    """What the NCSDK API says on this node, in one line: the API generation, the libmvnc it loaded
    and the sticks it enumerates ("v2 (libmvnc /usr/local/lib/libmvnc.so.0): no Movidius stick
    found"), or why it cannot be asked ("not installed: ..."). Needs no stick; never raises."""
    try:
        api = api if api is not None else import_mvnc()
        version = api_version(api)
    except UserError as exc:
        return f"not installed ({exc})"
    except OSError as exc:  # the module imports libmvnc.so with ctypes
        return f"libmvnc does not load: {exc}"
    library = _loaded_library("libmvnc")
    try:
        found = api.EnumerateDevices() if version == 1 else api.enumerate_devices()
    except Exception as exc:  # NCSDK raises its own Exception subclasses
        return f"v{version} ({library}): enumerate failed: {exc}"
    if not found:
        return f"v{version} ({library}): no Movidius stick found"
    return f"v{version} ({library}): {len(found)} stick(s) found"


def _loaded_library(stem: str, maps: Path = Path("/proc/self/maps")) -> str:
    """The file this process mapped for the shared library ``stem`` (from ``/proc/self/maps``)."""
    try:
        for line in maps.read_text().splitlines():
            path = line.split()[-1]
            if Path(path).name.startswith(stem + "."):
                return f"{stem} {path}"
    except OSError:
        pass
    return stem


class MvncBackend:
    """The bundle's ``ncs_graph`` on the first stick found."""

    name = "mvnc"
    input_layout: InputLayout = "nhwc"
    output_layout: Layout = "hwc"

    def __init__(self, bundle: Bundle, api: ModuleType | None = None) -> None:
        self.api = api if api is not None else import_mvnc()
        self.version = api_version(self.api)
        self.blob = bundle.artifact("ncs_graph")
        h, w, _ = bundle.input_size
        self.input_hw = (h, w)
        self.input_dtype = np.float16 if self.version == 1 else np.float32
        self.device = f"NCS (NCSDK v{self.version})"
        self._device: Any = None
        self._graph: Any = None
        self._fifo_in: Any = None
        self._fifo_out: Any = None
        try:
            self._open()
        except Exception:
            self.close()
            raise

    def _open(self) -> None:
        api = self.api
        if self.version == 1:
            names = api.EnumerateDevices()
            if not names:
                raise BackendError("mvnc v1: no Movidius stick found")
            self._device = api.Device(names[0])
            self._device.OpenDevice()
            self._graph = self._device.AllocateGraph(self.blob)
        else:
            handles = api.enumerate_devices()
            if not handles:
                raise BackendError("mvnc v2: no Movidius stick found")
            self._device = api.Device(handles[0])
            self._device.open()
            self._graph = api.Graph("tiny-yolo")
            self._fifo_in, self._fifo_out = self._graph.allocate_with_fifos(self._device, self.blob)
        log.info("mvnc v%d: graph allocated (%d bytes)", self.version, len(self.blob))

    def infer(self, blob: np.ndarray) -> np.ndarray:
        tensor = np.ascontiguousarray(blob[0] if blob.ndim == 4 else blob, dtype=self.input_dtype)
        try:
            if self.version == 1:
                self._graph.LoadTensor(tensor, None)
                output, _ = self._graph.GetResult()
            else:
                self._graph.queue_inference_with_fifo_elem(self._fifo_in, self._fifo_out, tensor, None)
                output, _ = self._fifo_out.read_elem()
        except Exception as exc:  # the API raises its own Exception subclasses
            raise BackendError(f"mvnc v{self.version}: {exc}") from exc
        return np.asarray(output, dtype=np.float32).reshape(-1)

    def close(self) -> None:
        """Release in the documented order; errors are logged (the stick may be gone already)."""
        steps: list[tuple[str, Any]] = []
        if self.version == 1:
            if self._graph is not None:
                steps.append(("DeallocateGraph", self._graph.DeallocateGraph))
            if self._device is not None:
                steps.append(("CloseDevice", self._device.CloseDevice))
        else:
            for fifo in (self._fifo_in, self._fifo_out):
                if fifo is not None:
                    steps.append(("Fifo.destroy", fifo.destroy))
            if self._graph is not None:
                steps.append(("Graph.destroy", self._graph.destroy))
            if self._device is not None:
                steps.extend([("Device.close", self._device.close), ("Device.destroy", self._device.destroy)])
        self._device = self._graph = self._fifo_in = self._fifo_out = None
        for label, step in steps:
            try:
                step()
            except Exception as exc:  # keep releasing the rest
                log.warning("mvnc v%d: %s failed: %s", self.version, label, exc)
