"""OpenVINO IR (``.xml`` + ``.bin``) FP32 and FP16 from the frozen TensorFlow graph.

``openvino.convert_model`` reads the ``.pb`` with its TensorFlow frontend (no Model
Optimizer, no TensorFlow needed at conversion time) with a static ``[1, h, w, c]`` input;
``openvino.save_model(..., compress_to_fp16=True)`` stores the weights as FP16 (the
precision MYRIAD / NCS2 devices compute in). Tensor names are set to ``input`` / ``output``
and the layout stays NHWC, like the ``.pb`` and the ONNX model.

Parity note: on CPUs with AVX512-BF16/AMX the OpenVINO CPU plugin infers in bf16 by
default (and in f16 on ARM), which alone costs ~1e-2 of absolute error; :func:`run_ir`
pins ``INFERENCE_PRECISION_HINT`` to f32 so that only the IR's own precision is measured.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edge_image.contract.errors import UserError
from training_scripts.export.tf_graph import INPUT_NAME, OUTPUT_NAME

if TYPE_CHECKING:
    from training_scripts.export.context import BuildContext


def convert_pb(pb_path: str | os.PathLike[str], input_size: tuple[int, int, int]) -> object:
    """``openvino.Model`` from a frozen ``.pb`` with input ``[1, h, w, c]``, tensors renamed."""
    import openvino as ov

    h, w, c = input_size
    try:
        model = ov.convert_model(str(pb_path), input=[1, h, w, c])
    except Exception as exc:  # OpenVINO raises its own exception types without a common base
        raise UserError(f"{pb_path}: OpenVINO could not convert the graph: {exc}") from exc
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UserError(
            f"{pb_path}: expected one input and one output, got {len(model.inputs)}/{len(model.outputs)}"
        )
    model.inputs[0].get_tensor().set_names({INPUT_NAME})
    model.outputs[0].get_tensor().set_names({OUTPUT_NAME})
    return model


def save_ir(model: object, xml_path: str | os.PathLike[str], *, fp16: bool) -> tuple[Path, Path]:
    """Save ``model`` as IR at ``xml_path`` (``.bin`` beside it); returns both paths.

    The files are written to a temporary name in the same directory and renamed, so a
    failed save leaves no half IR behind.
    """
    import openvino as ov

    xml = Path(xml_path)
    tmp_xml = xml.with_name(f".{xml.stem}.tmp.xml")
    try:
        ov.save_model(model, str(tmp_xml), compress_to_fp16=fp16)
        os.replace(tmp_xml.with_suffix(".bin"), xml.with_suffix(".bin"))
        os.replace(tmp_xml, xml)
    finally:
        for leftover in (tmp_xml, tmp_xml.with_suffix(".bin")):
            leftover.unlink(missing_ok=True)
    return xml, xml.with_suffix(".bin")


def export_openvino(
    pb_path: str | os.PathLike[str],
    xml_path: str | os.PathLike[str],
    input_size: tuple[int, int, int],
    *,
    fp16: bool,
) -> tuple[Path, Path]:
    """Convert the ``.pb`` and save one IR (FP16 weights when ``fp16``)."""
    return save_ir(convert_pb(pb_path, input_size), xml_path, fp16=fp16)


def ir_op_types(xml_path: str | os.PathLike[str]) -> list[str]:
    """Sorted distinct operation types of an IR."""
    import openvino as ov

    return sorted({op.get_type_name() for op in ov.Core().read_model(str(xml_path)).get_ops()})


def ir_weight_precision(xml_path: str | os.PathLike[str]) -> str:
    """Element type of the IR's convolution weights as stored (``f32`` or ``f16``)."""
    import openvino as ov

    model = ov.Core().read_model(str(xml_path))
    types = {
        op.get_output_element_type(0).get_type_name()
        for op in model.get_ops()
        if op.get_type_name() == "Constant" and len(op.get_output_shape(0)) == 4
    }
    return "f16" if "f16" in types else "f32"


def run_ir(xml_path: str | os.PathLike[str], batch: np.ndarray, *, device: str = "CPU") -> np.ndarray:
    """Run an IR one image at a time in f32 inference precision; ``(N, H, W, C)`` out."""
    import openvino as ov

    core = ov.Core()
    compiled = core.compile_model(str(xml_path), device, {"INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    images = np.asarray(batch, dtype=np.float32)
    outputs = []
    for image in images:
        result = request.infer({0: image[None]})
        outputs.append(np.array(result[compiled.outputs[0]]))
    return np.concatenate(outputs)


def build(ctx: BuildContext) -> None:
    """The artifact table's builder for the IR kinds: the row's ``precision`` picks FP32 or FP16."""
    if ctx.artifact.precision not in ("f32", "f16"):
        raise UserError(f"{ctx.artifact.kind}: no IR builder for precision {ctx.artifact.precision!r}")
    export_openvino(ctx.path("pb"), ctx.target, ctx.network.input_size, fp16=ctx.artifact.precision == "f16")


#: The artifact table's runner for the IR kinds (parity).
run = run_ir
