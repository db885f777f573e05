"""Export a darknet Tiny-YOLOv2 checkpoint into a parity-checked model bundle.

Pipeline (each step one module):

* :mod:`.folded` — cfg + weights → plain per-layer parameters with batch norm folded in;
* :mod:`.tf_graph` — frozen TensorFlow GraphDef with darkflow's conventions (``.pb`` + ``.meta``);
* :mod:`.onnx_export` — ONNX from that GraphDef (tf2onnx);
* :mod:`.openvino_export` — OpenVINO IR FP32 / FP16 from that GraphDef;
* :mod:`.ncs` — the ``mvNCCompile`` command for the Movidius NCSDK graph;
* :mod:`.parity` — every artifact's raw output against the numpy darknet reference;
* :mod:`.bundle` — all of the above into ``BUNDLE/`` with ``manifest.json`` (atomically).

TensorFlow, tf2onnx and OpenVINO are imported inside functions only.
"""

from __future__ import annotations

#: ``--formats`` names, in build order, and the manifest artifact kind each one produces.
FORMATS: dict[str, str] = {
    "pb": "pb",
    "onnx": "onnx",
    "openvino": "openvino",
    "openvino-fp16": "openvino_fp16",
    "ncs": "ncs_graph",
}
DEFAULT_FORMATS: tuple[str, ...] = ("pb", "onnx", "openvino", "openvino-fp16")
