"""Frozen TensorFlow GraphDef (``model.pb``) and darkflow ``.meta`` for a folded darknet network.

The graph follows darkflow's ``flow --savepb`` conventions (thtrieu/darkflow
darkflow/net/build.py ``build_forward``/``savepb`` and darkflow/net/ops/convolution.py),
which is what the Movidius NCSDK compiler and darkflow-era tooling expect:

* input: ``Placeholder`` named ``input``, float32 NHWC ``[None, h, w, 3]``, RGB scaled to 0..1;
* per conv: ``Pad`` (darknet's symmetric zero padding) → ``Conv2D`` VALID → ``BiasAdd``
  (batch norm already folded into the kernel and bias, see :mod:`.folded`);
* leaky ReLU as ``Maximum(Mul(0.1, x), x)`` with a scalar constant: NCSDK 2.x has no
  ``LeakyRelu`` op and matches exactly this pattern (mvnctools TensorFlowPreproc.py:
  a ``Maximum`` whose input is a ``Mul`` by a scalar sharing the other input);
* ``MaxPool`` with TensorFlow SAME padding (the stride-1 pool pads right/bottom like darknet);
* output: ``Identity`` named ``output`` of the last conv, raw ``(1, H, W, num*(5+classes))``.

Only constants (no variables), and attributes at their default values are stripped, so
the GraphDef imports into the TensorFlow 1.x that NCSDK's ``mvNCCompile`` runs on.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_image.contract.atomic import write_bytes, write_text
from edge_image.contract.errors import UserError
from training_scripts.darknet.cfg import Section, net_section, region_section
from training_scripts.export.folded import FoldedConv, FoldedNetwork

if TYPE_CHECKING:
    from tensorflow.core.framework.graph_pb2 import GraphDef

    from training_scripts.export.context import BuildContext

INPUT_NAME = "input"
OUTPUT_NAME = "output"

#: TensorFlow node types the NCSDK 2.x compiler (``mvNCCompile``) converts or accepts.
#: Source: NCSDK 2.10.01 (release notes, movidius/ncsdk docs/release_notes.html,
#: "V2.10.01 2019-01-27", TensorFlow r1.09: "TinyYolo v2 via Darkflow transformation" is a
#: tested network; firmware features: convolutions, max pooling, Relu / Leaky-Relu,
#: ElmWise max, bias, scale) and the op dispatch of its TensorFlow parser
#: (NCSDK 2.x toolkit tk/mvnctools-lib/mvnctools/Controllers/TensorFlowParser.py
#: ``parse_tensor``: the ``node.type == ...`` branches; mirrored at github.com/xzhangxa/ncsdk).
#: ``LeakyRelu``, ``FusedBatchNormV3`` and ``AddV2`` are absent: TF 1.x-era graphs only.
NCSDK_TF_OPS: frozenset[str] = frozenset(
    {
        "Placeholder",
        "Const",
        "Identity",
        "NoOp",
        "Conv2D",
        "DepthwiseConv2dNative",
        "Conv2DBackpropInput",
        "BiasAdd",
        "Add",
        "Sub",
        "Mul",
        "RealDiv",
        "Maximum",
        "MaxPool",
        "AvgPool",
        "Relu",
        "Relu6",
        "Sigmoid",
        "Tanh",
        "Softmax",
        "LRN",
        "MatMul",
        "Pad",
        "Reshape",
        "Squeeze",
        "Shape",
        "Concat",
        "ConcatV2",
        "Mean",
        "Sum",
        "Square",
        "Rsqrt",
        "FusedBatchNorm",
        "Slice",
        "StridedSlice",
        "Split",
        "ExtractImagePatches",
    }
)


def _strip_default_attrs(graph_def: GraphDef) -> None:
    """Remove attributes equal to their op's default (newer TF adds ones TF 1.x rejects)."""
    from tensorflow.python.framework import op_def_registry

    for node in graph_def.node:
        op_def = op_def_registry.get(node.op)
        if op_def is None:
            continue
        for attr_def in op_def.attr:
            name = attr_def.name
            if (
                attr_def.HasField("default_value")
                and name in node.attr
                and node.attr[name] == attr_def.default_value
            ):
                del node.attr[name]


def build_graph_def(network: FoldedNetwork) -> GraphDef:
    """Build the frozen inference GraphDef (constants only) for ``network``.

    Returns a ``tf.compat.v1.GraphDef`` whose ``input:0`` takes ``(N, h, w, c)`` float32 and
    whose ``output:0`` is the raw last-conv output ``(N, H, W, C)``.
    """
    import tensorflow as tf

    h, w, c = network.input_size
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, h, w, c], name=INPUT_NAME)
        for layer in network.layers:
            scope = f"{layer.index}-{'convolutional' if isinstance(layer, FoldedConv) else 'maxpool'}"
            with tf.name_scope(scope):
                if isinstance(layer, FoldedConv):
                    if layer.pad:
                        x = tf.pad(
                            x, [[0, 0], [layer.pad, layer.pad], [layer.pad, layer.pad], [0, 0]], name="pad"
                        )
                    x = tf.nn.conv2d(
                        x,
                        tf.constant(layer.kernel, name="kernel"),
                        [1, layer.stride, layer.stride, 1],
                        "VALID",
                    )
                    x = tf.nn.bias_add(x, tf.constant(layer.bias, name="biases"))
                    if layer.activation == "leaky":
                        slope = tf.constant(np.float32(network.leaky_slope), name="alpha")
                        x = tf.maximum(tf.multiply(slope, x), x, name="leaky")
                    elif layer.activation == "relu":
                        x = tf.nn.relu(x)
                    elif layer.activation == "logistic":
                        x = tf.sigmoid(x)
                else:
                    x = tf.nn.max_pool2d(x, layer.size, layer.stride, layer.tf_padding)
        tf.identity(x, name=OUTPUT_NAME)
    graph_def = graph.as_graph_def()
    _strip_default_attrs(graph_def)
    return graph_def


def op_types(graph_def: GraphDef) -> list[str]:
    """Sorted distinct node types of a GraphDef."""
    return sorted({node.op for node in graph_def.node})


def unsupported_ncsdk_ops(ops: Iterable[str]) -> list[str]:
    """The op types NCSDK 2.x cannot compile (empty when the graph is fine).

    >>> unsupported_ncsdk_ops(["Conv2D", "LeakyRelu", "Maximum"])
    ['LeakyRelu']
    """
    return sorted(set(ops) - NCSDK_TF_OPS)


def write_pb(graph_def: GraphDef, path: str | os.PathLike[str]) -> Path:
    """Serialize ``graph_def`` to ``path`` atomically (deterministic: same graph, same bytes)."""
    return write_bytes(path, graph_def.SerializeToString(deterministic=True))


def load_graph_def(path: str | os.PathLike[str]) -> GraphDef:
    """Parse a binary GraphDef file (``UserError`` if it is not one)."""
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(Path(path).read_bytes())
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except DecodeError as exc:
        raise UserError(f"{path}: not a TensorFlow GraphDef ({exc})") from None
    return graph_def


def run_pb(path: str | os.PathLike[str], batch: np.ndarray) -> np.ndarray:
    """Run a frozen ``.pb`` on ``(N, h, w, c)`` float32 with ``tf.compat.v1.import_graph_def``."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(load_graph_def(path), name="")
    with tf.compat.v1.Session(graph=graph) as session:
        return np.asarray(session.run(f"{OUTPUT_NAME}:0", {f"{INPUT_NAME}:0": np.asarray(batch, np.float32)}))


def _cfg_value(text: str) -> Any:
    """darkflow's option parsing: a number (int when integral) or the string."""
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number == int(number) else number


def _darkflow_color(index: int, base: int) -> list[float]:
    # darkflow/net/yolo/__init__.py constructor: _to_color
    base2 = base * base
    return [(2 - index / base2) * 127, (2 - (index % base2) / base) * 127, (2 - (index % base2) % base) * 127]


def darkflow_meta(
    sections: Sequence[Section],
    labels: Sequence[str],
    network: FoldedNetwork,
    *,
    name: str,
    model: str,
) -> dict[str, Any]:
    """darkflow's ``built_graph/<name>.meta`` dict (darkflow/utils/process.py ``parser``).

    The ``[region]`` options (anchors as a float list, thresh, classes, num, ...), ``net``
    (the ``[net]`` options), ``type``, ``model`` (cfg file name), ``inp_size`` and
    ``out_size`` (``[h, w, c]``), ``name``, ``labels`` and darkflow's ``colors``.
    """
    region = region_section(sections)
    meta: dict[str, Any] = {
        "net": {"type": "[net]"} | {k: _cfg_value(v) for k, v in net_section(sections).options.items()}
    }
    meta["type"] = "[region]"
    meta.update({k: _cfg_value(v) for k, v in region.options.items()})
    meta["anchors"] = [float(a) for a in network.spec.anchors]
    meta.setdefault("thresh", 0.5)  # darknet's region default (parser.c parse_region)
    meta["model"] = model
    meta["inp_size"] = list(network.input_size)
    meta["out_size"] = list(network.output_size)
    meta["name"] = name
    meta["labels"] = list(labels)
    base = int(np.ceil(len(labels) ** (1.0 / 3)))
    meta["colors"] = [_darkflow_color(i, base) for i in range(len(labels))]
    return meta


def write_meta(meta: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write the ``.meta`` JSON atomically."""
    import json

    return write_text(path, json.dumps(meta, indent=1) + "\n")


def build(ctx: BuildContext) -> None:
    """The artifact table's builder for ``pb``: the frozen graph and its darkflow ``.meta``."""
    graph_def = build_graph_def(ctx.network)
    bad = unsupported_ncsdk_ops(op_types(graph_def))
    if bad:
        raise UserError(f"{ctx.cfg_path}: the graph needs ops NCSDK 2.x cannot compile: {', '.join(bad)}")
    write_pb(graph_def, ctx.target)
    cfg_file = ctx.path("darknet_cfg").name
    meta = darkflow_meta(ctx.sections, ctx.names, ctx.network, name=ctx.model_name, model=cfg_file)
    write_meta(meta, ctx.path("meta"))


#: The artifact table's runner for ``pb`` (parity).
run = run_pb
