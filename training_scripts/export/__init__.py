"""Export a darknet Tiny-YOLOv2 checkpoint into a parity-checked model bundle.

Pipeline (each step one module):

* :mod:`.folded` — cfg + weights → plain per-layer parameters with batch norm folded in;
* :mod:`.tf_graph` — frozen TensorFlow GraphDef with darkflow's conventions (``.pb`` + ``.meta``);
* :mod:`.onnx_export` — ONNX from that GraphDef (tf2onnx);
* :mod:`.openvino_export` — OpenVINO IR FP32 / FP16 from that GraphDef;
* :mod:`.ncs` — the ``mvNCCompile`` command for the Movidius NCSDK graph;
* :mod:`.parity` — every artifact's raw output against the numpy darknet reference;
* :mod:`.bundle` — all of the above into ``BUNDLE/`` with ``manifest.json`` (atomically).

Which module builds which artifact, its file name and its parity tolerances are one table,
:data:`edge_image.contract.manifest.ARTIFACT_TYPES`; each builder module exposes ``build(ctx)`` and
``run(path, batch)`` (:mod:`.context`).

TensorFlow, tf2onnx and OpenVINO are imported inside functions only.
"""

from __future__ import annotations

from edge_image.contract.manifest import ARTIFACT_TYPES

#: ``--formats`` names, in build order, and the manifest artifact kind each one produces (the
#: rows of :data:`edge_image.contract.manifest.ARTIFACT_TYPES` that have a format).
FORMATS: dict[str, str] = {t.format: t.kind for t in ARTIFACT_TYPES if t.format}
DEFAULT_FORMATS: tuple[str, ...] = ("pb", "onnx", "openvino", "openvino-fp16")
