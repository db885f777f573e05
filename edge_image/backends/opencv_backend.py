"""OpenCV DNN backend (``cv2.dnn``), CPU.

OpenCV 5.0 dropped the darknet importer (``readNetFromDarknet`` is gone; 4.x had it), so
this backend reads, in order of preference, the bundle's ONNX, frozen TF ``.pb``, or
OpenVINO IR (``readNetFromModelOptimizer``); with OpenCV 4.x it also reads the darknet
cfg/weights, taking the last convolution's raw output (the darknet ``[region]`` layer in
cv2.dnn would decode on its own, and this service uses one decoder for every backend).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import cv2
import numpy as np

from edge_image.backends import BackendError, layout_from_shape
from edge_image.contract.decode import Layout
from edge_image.contract.errors import UserError
from edge_image.contract.manifest import Bundle, companion
from edge_image.preprocess import InputLayout

log = logging.getLogger(__name__)


def _read_net(bundle: Bundle) -> tuple[cv2.dnn.Net, str, InputLayout]:
    """The network, the artifact kind it was read from, and the input layout to try first.

    Tries ONNX, the TF ``.pb``, the OpenVINO IR (needs OpenCV's OpenVINO plugin) and, where
    the importer exists (OpenCV 4.x), the darknet cfg/weights; the first that loads wins.
    """

    def buf(rel: str) -> np.ndarray:
        return np.frombuffer(bundle.read(rel), dtype=np.uint8)

    def art(kind: str) -> np.ndarray:
        return np.frombuffer(bundle.artifact(kind), dtype=np.uint8)

    # Every reader gets the bytes Bundle.read hashed, never a path OpenCV would open again.
    readers: list[tuple[str, InputLayout, Callable[[], cv2.dnn.Net]]] = [
        ("onnx", "nhwc", lambda: cv2.dnn.readNetFromONNX(art("onnx"))),
        ("pb", "nchw", lambda: cv2.dnn.readNetFromTensorflow(art("pb"))),
    ]
    if hasattr(cv2.dnn, "readNetFromModelOptimizer"):
        readers.append(
            (
                "openvino",
                "nhwc",
                lambda: cv2.dnn.readNetFromModelOptimizer(
                    art("openvino"), buf(str(companion("openvino", bundle.artifacts["openvino"])))
                ),
            )
        )
    if hasattr(cv2.dnn, "readNetFromDarknet"):
        readers.append(
            (
                "darknet_cfg",
                "nchw",
                lambda: cv2.dnn.readNetFromDarknet(art("darknet_cfg"), art("darknet_weights")),
            )
        )
    problems = []
    for kind, layout, read in readers:
        if not bundle.has(kind):
            continue
        try:
            return read(), kind, layout
        except cv2.error as exc:
            problems.append(f"{kind}: {str(exc).strip().splitlines()[-1]}")
    raise UserError(
        f"{bundle.root}: OpenCV {cv2.__version__} can read none of this bundle's artifacts "
        f"(has {', '.join(sorted(bundle.artifacts))}; tried {'; '.join(problems) or 'onnx, pb, openvino'})"
    )


class OpenCvBackend:
    """``cv2.dnn.Net`` on the CPU; output layout found from the first inference's shape."""

    name = "opencv"
    device = "CPU"

    def __init__(self, bundle: Bundle, *, threads: int = 0) -> None:
        if threads:
            cv2.setNumThreads(threads)
        self.net, self.source, self.input_layout = _read_net(bundle)
        self.net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self.net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        h, w, _ = bundle.input_size
        self.input_hw = (h, w)
        self.input_dtype = np.float32
        self.channels = bundle.spec.channels
        self._out_name: list[str] | None = None
        if self.source == "darknet_cfg":
            names = self.net.getLayerNames()
            self._out_name = [n for n in names if "conv" in n.lower()][-1:]
        self.output_layout: Layout = layout_from_shape(self._probe(h, w), self.channels)
        log.info(
            "opencv dnn on %s (%s), output %s",
            bundle.path(self.source).name,
            self.input_layout,
            self.output_layout,
        )

    def _probe(self, h: int, w: int) -> tuple[int, ...]:
        """Run once on zeros to fix the input layout (the importer's guess first) and output shape."""
        first: cv2.error | None = None
        for layout in (self.input_layout, "nchw" if self.input_layout == "nhwc" else "nhwc"):
            probe = np.zeros((1, h, w, 3) if layout == "nhwc" else (1, 3, h, w), np.float32)
            try:
                shape = tuple(self._forward(probe).shape)
            except cv2.error as exc:
                first = first or exc
                continue
            self.input_layout = layout  # type: ignore[assignment]
            return shape
        raise UserError(
            f"OpenCV {cv2.__version__} cannot run this model: {str(first).strip().splitlines()[-1]}"
        )

    def _forward(self, blob: np.ndarray) -> np.ndarray:
        self.net.setInput(blob)
        if self._out_name:
            return np.asarray(self.net.forward(self._out_name[0]))
        return np.asarray(self.net.forward())

    def infer(self, blob: np.ndarray) -> np.ndarray:
        try:
            return self._forward(blob)
        except cv2.error as exc:
            raise BackendError(f"opencv dnn: {str(exc).strip().splitlines()[-1]}") from exc

    def close(self) -> None:
        self.net = None
