"""OpenVINO backend: the bundle's IR (FP32, or FP16 for MYRIAD) or its ONNX, on CPU or MYRIAD.

MYRIAD (NCS / NCS2) exists only in OpenVINO 2022.3 and older (on a Raspberry Pi: 2022.1 or
2021.4.2; NCS1 up to 2020.3); current releases run on CPU and read ONNX directly
(``Core.read_model``). A device the installed OpenVINO lacks is a clear error.
"""

from __future__ import annotations

import logging

import numpy as np

from edge_image.backends import BackendError, layout_from_shape
from edge_image.contract.decode import Layout
from edge_image.contract.errors import UserError
from edge_image.contract.manifest import Bundle, companion
from edge_image.preprocess import InputLayout

log = logging.getLogger(__name__)


def model_kind(bundle: Bundle, device: str) -> str:
    """IR FP16 for MYRIAD, IR FP32 otherwise, ONNX when the bundle has no IR."""
    order = (
        ("openvino_fp16", "openvino", "onnx") if device == "MYRIAD" else ("openvino", "onnx", "openvino_fp16")
    )
    for kind in order:
        if bundle.has(kind):
            return kind
    raise UserError(f"{bundle.root}: no OpenVINO IR or ONNX artifact in the bundle")


class OpenVinoBackend:
    """Compiled model + one infer request; input/output layouts read from the model's shapes."""

    name = "openvino"

    def __init__(
        self, bundle: Bundle, *, device: str = "CPU", threads: int = 0, precision: str = "f32"
    ) -> None:
        import openvino as ov

        self.core = ov.Core()
        # Read the weights into memory instead of mmap-ing them: a bundle file rewritten in
        # place (a botched deploy) would otherwise kill the process with SIGBUS mid-inference.
        self.core.set_property({"ENABLE_MMAP": False})
        available = self.core.available_devices
        if device not in ("AUTO", *available):
            raise UserError(
                f"backend.device: OpenVINO {ov.__version__} has no {device} plugin here "
                f"(available: {', '.join(available) or 'none'}); MYRIAD needs OpenVINO <= 2022.3"
            )
        kind = model_kind(bundle, device)
        self.path = bundle.path(kind)
        # the bytes Bundle.read hashed, not a path OpenVINO would open again (weights: the IR's .bin)
        weights = companion(kind, bundle.artifacts[kind])
        model = self.core.read_model(bundle.artifact(kind), b"" if weights is None else bundle.read(weights))
        if len(model.inputs) != 1:
            raise UserError(f"{self.path}: expected one input, the model has {len(model.inputs)}")
        in_shape = [int(d) for d in model.inputs[0].get_partial_shape().get_min_shape()]
        h, w, c = bundle.input_size
        if model.inputs[0].get_partial_shape().is_dynamic:
            model.reshape({model.inputs[0].get_any_name(): [1, h, w, c]})
            in_shape = [1, h, w, c]
        self.input_layout: InputLayout = "nchw" if len(in_shape) == 4 and in_shape[1] == c else "nhwc"
        self.input_hw = (h, w)
        self.input_dtype = np.float32
        props: dict[str, object] = {}
        if threads and device == "CPU":
            props["INFERENCE_NUM_THREADS"] = threads
        if precision == "f32" and device == "CPU":
            # the CPU plugin defaults to bf16 (x86 with AVX512-BF16/AMX) or f16 (ARM): keep darknet's f32
            props["INFERENCE_PRECISION_HINT"] = "f32"
        self.device = device
        self.compiled = self.core.compile_model(model, device, props)
        out_shape = tuple(int(d) for d in self.compiled.outputs[0].get_shape())
        self.output_layout: Layout = layout_from_shape(out_shape, bundle.spec.channels)
        self.request = self.compiled.create_infer_request()
        log.info(
            "openvino %s on %s: input %s %s, output %s",
            self.path.name,
            device,
            in_shape,
            self.input_layout,
            out_shape,
        )

    def infer(self, blob: np.ndarray) -> np.ndarray:
        try:
            self.request.infer({0: blob})
            return self.request.get_output_tensor(0).data.copy()
        except RuntimeError as exc:
            raise BackendError(f"openvino {self.device}: {exc}") from exc

    def close(self) -> None:
        self.request = None
        self.compiled = None
