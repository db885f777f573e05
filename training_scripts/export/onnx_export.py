"""ONNX from the frozen TensorFlow graph (tf2onnx), and an onnxruntime runner for parity.

tf2onnx converts the GraphDef built by :mod:`.tf_graph` (``Pad`` + ``Conv2D`` folds into
``Conv`` with pads, ``Maximum(Mul(0.1, x), x)`` becomes ``LeakyRelu``, NHWC is kept at the
model boundary with ``Transpose`` nodes). The graph's ``input:0`` / ``output:0`` are renamed
``input`` / ``output`` so every format in a bundle has the same tensor names; the output
stays NHWC (``layout="hwc"`` for :func:`edge_image.contract.decode.decode`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edge_image.contract.atomic import write_bytes
from edge_image.contract.errors import UserError
from training_scripts.export.tf_graph import INPUT_NAME, OUTPUT_NAME

if TYPE_CHECKING:
    from tensorflow.core.framework.graph_pb2 import GraphDef

    from training_scripts.export.context import BuildContext

#: ONNX opset: 13 is read by onnxruntime, OpenCV DNN (4.x) and OpenVINO alike.
DEFAULT_OPSET = 13


def _rename(model: object, old: str, new: str) -> None:
    graph = model.graph  # type: ignore[attr-defined]
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        if value.name == old:
            value.name = new
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new


def convert_graph_def(graph_def: GraphDef, *, batch: int | None = 1, opset: int = DEFAULT_OPSET) -> bytes:
    """Convert a frozen GraphDef to a serialized ONNX model (checked with ``onnx.checker``).

    ``batch`` fixes the input's batch dimension (``None`` keeps it dynamic).
    """
    import onnx
    import tensorflow as tf
    import tf2onnx

    graph_def_in = graph_def
    if batch is not None:
        graph_def_in = tf.compat.v1.GraphDef()
        graph_def_in.CopyFrom(graph_def)
        for node in graph_def_in.node:
            if node.name == INPUT_NAME and node.op == "Placeholder":
                node.attr["shape"].shape.dim[0].size = batch
    tf_logger = tf.get_logger()
    level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)  # tf2onnx calls TF1-era helpers that log deprecation warnings
    try:
        model, _ = tf2onnx.convert.from_graph_def(
            graph_def_in,
            input_names=[f"{INPUT_NAME}:0"],
            output_names=[f"{OUTPUT_NAME}:0"],
            opset=opset,
        )
    except Exception as exc:  # tf2onnx raises bare Exceptions / ValueErrors on unsupported graphs
        raise UserError(f"tf2onnx could not convert the graph: {exc}") from exc
    finally:
        tf_logger.setLevel(level)
    _rename(model, f"{INPUT_NAME}:0", INPUT_NAME)
    _rename(model, f"{OUTPUT_NAME}:0", OUTPUT_NAME)
    model.producer_name = "training_scripts.export (tf2onnx)"
    onnx.checker.check_model(model)
    return model.SerializeToString()


def export_onnx(graph_def: GraphDef, path: str | os.PathLike[str], *, opset: int = DEFAULT_OPSET) -> Path:
    """Write ``graph_def`` as ONNX to ``path`` atomically."""
    return write_bytes(path, convert_graph_def(graph_def, opset=opset))


def onnx_op_types(path: str | os.PathLike[str]) -> list[str]:
    """Sorted distinct ONNX node types of a model file."""
    import onnx

    return sorted({node.op_type for node in onnx.load(str(path)).graph.node})


def run_onnx(path: str | os.PathLike[str], batch: np.ndarray) -> np.ndarray:
    """Run an ONNX model with onnxruntime (CPU) one image at a time; ``(N, H, W, C)`` out."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    images = np.asarray(batch, dtype=np.float32)
    return np.concatenate([session.run(None, {name: image[None]})[0] for image in images])


def build(ctx: BuildContext) -> None:
    """The artifact table's builder for ``onnx``: converted from the staged ``.pb``."""
    from training_scripts.export.tf_graph import load_graph_def

    export_onnx(load_graph_def(ctx.path("pb")), ctx.target)


#: The artifact table's runner for ``onnx`` (parity).
run = run_onnx
