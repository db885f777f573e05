"""Test doubles of the NCSDK ``mvnc.mvncapi`` module, v1 (1.12) and v2 (2.10), that enforce
the documented call sequences and dtypes (see /work/shared/reference.md and the NCSDK API
docs) and can simulate the stick being unplugged.

Every call is appended to ``api.calls`` so tests can check the order; a call out of order,
with the wrong dtype/shape or on a released object raises :class:`ContractError` (a test
failure, never something the backend should swallow silently).
"""

from __future__ import annotations

import enum
import importlib.machinery
import types
from collections.abc import Callable

import numpy as np


class ContractError(AssertionError):
    """The code under test broke the NCSDK API contract."""


class MvncError(Exception):
    """What the real API raises on device errors (``mvnc.mvncapi.Error`` in v2, ``Exception`` in v1)."""


class _Api:
    """State shared by one fake module: device presence, call log, the output to return."""

    def __init__(self, output: Callable[[np.ndarray], np.ndarray], input_shape: tuple[int, int, int]) -> None:
        self.calls: list[str] = []
        self.output = output
        self.input_shape = input_shape
        self.plugged = True
        self.open_devices = 0

    def log(self, name: str) -> None:
        self.calls.append(name)

    def check_plugged(self, name: str) -> None:
        if not self.plugged:
            raise MvncError(f"{name}: device not found (unplugged)")

    def check_tensor(self, tensor: object, dtype: type, name: str) -> np.ndarray:
        if not isinstance(tensor, np.ndarray):
            raise ContractError(f"{name}: tensor must be a numpy array, got {type(tensor).__name__}")
        if tensor.dtype != dtype:
            raise ContractError(f"{name}: tensor must be {np.dtype(dtype).name}, got {tensor.dtype.name}")
        if tensor.shape != self.input_shape:
            raise ContractError(f"{name}: tensor shape must be {self.input_shape}, got {tensor.shape}")
        return tensor


# --------------------------------------------------------------------------------------- v1


def make_v1(
    output: Callable[[np.ndarray], np.ndarray], input_shape: tuple[int, int, int]
) -> types.ModuleType:
    """A fake NCSDK 1.12 ``mvncapi``: EnumerateDevices/Device/OpenDevice/AllocateGraph/LoadTensor…"""
    api = _Api(output, input_shape)
    mod = types.ModuleType("mvnc.mvncapi")

    class GlobalOption(enum.IntEnum):  # v1 has this enum too, but no global_get_option
        LOG_LEVEL = 0

    class Graph:
        def __init__(self, device: Device) -> None:
            self.device = device
            self.allocated = True
            self.pending: list[tuple[np.ndarray, object]] = []

        def LoadTensor(self, tensor: object, userobj: object) -> bool:
            api.log("LoadTensor")
            if not self.allocated:
                raise ContractError("LoadTensor on a deallocated graph")
            api.check_plugged("LoadTensor")
            arr = api.check_tensor(tensor, np.float16, "LoadTensor")
            if self.pending:
                raise ContractError("LoadTensor twice without GetResult")
            self.pending.append((arr, userobj))
            return True

        def GetResult(self) -> tuple[np.ndarray, object]:
            api.log("GetResult")
            if not self.allocated:
                raise ContractError("GetResult on a deallocated graph")
            if not self.pending:
                raise ContractError("GetResult without LoadTensor")
            api.check_plugged("GetResult")
            arr, userobj = self.pending.pop()
            return api.output(arr.astype(np.float32)).astype(np.float16).reshape(-1), userobj

        def DeallocateGraph(self) -> None:
            api.log("DeallocateGraph")
            if not self.allocated:
                raise ContractError("DeallocateGraph twice")
            self.allocated = False
            self.device.graphs.remove(self)

    class Device:
        def __init__(self, name: str) -> None:
            api.log("Device")
            if name not in mod._names:
                raise ContractError(f"Device({name!r}): not a name from EnumerateDevices")
            self.opened = False
            self.graphs: list[Graph] = []

        def OpenDevice(self) -> None:
            api.log("OpenDevice")
            if self.opened:
                raise ContractError("OpenDevice twice")
            api.check_plugged("OpenDevice")
            self.opened = True
            api.open_devices += 1

        def AllocateGraph(self, blob: object) -> Graph:
            api.log("AllocateGraph")
            if not self.opened:
                raise ContractError("AllocateGraph before OpenDevice")
            if not isinstance(blob, bytes | bytearray) or not blob:
                raise ContractError("AllocateGraph needs the graph file's bytes")
            graph = Graph(self)
            self.graphs.append(graph)
            return graph

        def CloseDevice(self) -> None:
            api.log("CloseDevice")
            if not self.opened:
                raise ContractError("CloseDevice on a device that is not open")
            if self.graphs:
                raise ContractError("CloseDevice with a graph still allocated (DeallocateGraph first)")
            self.opened = False
            api.open_devices -= 1

    def EnumerateDevices() -> list[str]:
        api.log("EnumerateDevices")
        mod._names = ["1"] if api.plugged else []
        return list(mod._names)

    def GetGlobalOption(option: GlobalOption) -> int:
        return 2

    mod._names = []
    mod.GlobalOption = GlobalOption
    mod.Device = Device
    mod.EnumerateDevices = EnumerateDevices
    mod.GetGlobalOption = GetGlobalOption
    mod.api = api
    return mod


# --------------------------------------------------------------------------------------- v2


def make_v2(
    output: Callable[[np.ndarray], np.ndarray], input_shape: tuple[int, int, int]
) -> types.ModuleType:
    """A fake NCSDK 2.10 ``mvncapi``: enumerate_devices/Device.open/Graph.allocate_with_fifos…"""
    api = _Api(output, input_shape)
    mod = types.ModuleType("mvnc.mvncapi")

    class GlobalOption(enum.IntEnum):
        RW_LOG_LEVEL = 0
        RO_API_VERSION = 1

    class Fifo:
        def __init__(self, graph: Graph, direction: str) -> None:
            self.graph, self.direction, self.alive = graph, direction, True
            self.elems: list[tuple[np.ndarray, object]] = []

        def read_elem(self) -> tuple[np.ndarray, object]:
            api.log(f"Fifo.read_elem({self.direction})")
            if self.direction != "out" or not self.alive:
                raise ContractError("read_elem must be called on the live output FIFO")
            if not self.elems:
                raise ContractError("read_elem on an empty FIFO (queue an inference first)")
            api.check_plugged("read_elem")
            return self.elems.pop(0)

        def destroy(self) -> None:
            api.log(f"Fifo.destroy({self.direction})")
            if not self.alive:
                raise ContractError("Fifo.destroy twice")
            if not self.graph.alive:
                raise ContractError("Fifo.destroy after Graph.destroy (destroy FIFOs first)")
            self.alive = False

    class Graph:
        def __init__(self, name: str) -> None:
            api.log("Graph")
            if not isinstance(name, str):
                raise ContractError("Graph(name) takes a string name")
            self.alive = True
            self.device: Device | None = None
            self.fifos: tuple[Fifo, Fifo] | None = None

        def allocate_with_fifos(self, device: Device, blob: object) -> tuple[Fifo, Fifo]:
            api.log("Graph.allocate_with_fifos")
            if not device.opened:
                raise ContractError("allocate_with_fifos before Device.open")
            if not isinstance(blob, bytes | bytearray) or not blob:
                raise ContractError("allocate_with_fifos needs the graph file's bytes")
            if self.fifos is not None:
                raise ContractError("allocate_with_fifos twice")
            self.device = device
            device.graphs.append(self)
            self.fifos = (Fifo(self, "in"), Fifo(self, "out"))
            return self.fifos

        def queue_inference_with_fifo_elem(
            self, fin: Fifo, fout: Fifo, tensor: object, userobj: object
        ) -> None:
            api.log("Graph.queue_inference_with_fifo_elem")
            if self.fifos is None or (fin, fout) != self.fifos or not (fin.alive and fout.alive):
                raise ContractError("queue_inference_with_fifo_elem needs this graph's live (in, out) FIFOs")
            api.check_plugged("queue_inference_with_fifo_elem")
            arr = api.check_tensor(tensor, np.float32, "queue_inference_with_fifo_elem")  # FP32 FIFOs
            fout.elems.append((api.output(arr).astype(np.float32).reshape(-1), userobj))

        def destroy(self) -> None:
            api.log("Graph.destroy")
            if not self.alive:
                raise ContractError("Graph.destroy twice")
            if self.fifos is not None and any(f.alive for f in self.fifos):
                raise ContractError("Graph.destroy before destroying its FIFOs")
            self.alive = False
            if self.device is not None:
                self.device.graphs.remove(self)

    class Device:
        def __init__(self, handle: object) -> None:
            api.log("Device")
            if handle not in mod._handles:
                raise ContractError("Device(handle): not a handle from enumerate_devices")
            self.opened = self.destroyed = False
            self.graphs: list[Graph] = []

        def open(self) -> None:
            api.log("Device.open")
            if self.opened or self.destroyed:
                raise ContractError("Device.open twice or after destroy")
            api.check_plugged("Device.open")
            self.opened = True
            api.open_devices += 1

        def close(self) -> None:
            api.log("Device.close")
            if not self.opened:
                raise ContractError("Device.close on a device that is not open")
            if self.graphs:
                raise ContractError("Device.close with a graph still allocated (destroy it first)")
            self.opened = False
            api.open_devices -= 1

        def destroy(self) -> None:
            api.log("Device.destroy")
            if self.opened:
                raise ContractError("Device.destroy before Device.close")
            if self.destroyed:
                raise ContractError("Device.destroy twice")
            self.destroyed = True

    def enumerate_devices() -> list[object]:
        api.log("enumerate_devices")
        mod._handles = [object()] if api.plugged else []
        return list(mod._handles)

    def global_get_option(option: GlobalOption) -> np.ndarray:
        if option != GlobalOption.RO_API_VERSION:
            raise ContractError(f"unexpected global option {option!r}")
        # as NCSDK 2.10 returns it: numpy.frombuffer over VERSION_MAX_SIZE c_uints
        return np.frombuffer(np.array([2, 10, 1, 1], np.uintc).tobytes(), np.uintc)

    mod._handles = []
    mod.GlobalOption = GlobalOption
    mod.Device = Device
    mod.Graph = Graph
    mod.enumerate_devices = enumerate_devices
    mod.global_get_option = global_get_option
    mod.api = api
    return mod


def as_package(api_module: types.ModuleType) -> types.ModuleType:
    """A ``mvnc`` package holding ``api_module`` as ``mvncapi`` (for ``sys.modules``)."""
    package = types.ModuleType("mvnc")
    package.__spec__ = importlib.machinery.ModuleSpec("mvnc", None, is_package=True)
    package.__path__ = []
    package.mvncapi = api_module
    api_module.__spec__ = importlib.machinery.ModuleSpec("mvnc.mvncapi", None)
    return package
