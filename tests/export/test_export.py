"""Export of the real darknet-trained checkpoint: every format, op set, parity, manifest, CLI.

One export per session (``model_export`` in tests/fixtures/bundle.py) from the checkpoint
that ``select`` chose out of the real darknet training run (cpu-smoke cfg, 128x128, 3
classes); the tests re-run each artifact with its own runtime and compare it with the numpy
darknet reference on 5 test images.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge_image.contract.errors import UserError
from edge_image.contract.manifest import MANIFEST_NAME, file_digest, load_bundle
from edge_image.contract.signing import SIGNATURE_NAME
from tests.fixtures.bundle import ModelExport
from training_scripts.__main__ import main
from training_scripts.darknet.cfg import parse_cfg
from training_scripts.darknet.forward import DarknetModel
from training_scripts.darknet.profiles import generate_cfg
from training_scripts.darknet.weights import random_weights, read_weights, write_weights
from training_scripts.export import onnx_export, openvino_export, parity, tf_graph

pytestmark = pytest.mark.slow

EXPECTED_FILES = {
    "model.cfg",
    "model.weights",
    "obj.names",
    "model.pb",
    "model.meta",
    "model.onnx",
    "model.xml",
    "model.bin",
    "model-fp16.xml",
    "model-fp16.bin",
}


def test_bundle_holds_every_format_and_verifies(model_export: ModelExport) -> None:
    bundle = load_bundle(model_export.bundle)
    # manifest.sig: the fixture signs the bundle as publish does (pack --sign)
    assert {p.name for p in model_export.bundle.iterdir()} == EXPECTED_FILES | {MANIFEST_NAME, SIGNATURE_NAME}
    assert {f["path"] for f in bundle.manifest["files"]} == EXPECTED_FILES
    assert set(bundle.artifacts) == {
        "darknet_cfg", "darknet_weights", "names", "pb", "meta", "onnx", "openvino", "openvino_fp16",
    }  # fmt: skip
    assert bundle.classes == tuple(model_export.names.read_text().split())
    assert bundle.input_size == (128, 128, 3)
    assert bundle.spec == DarknetModel.load(model_export.cfg, model_export.weights).spec
    assert bundle.manifest["name"] == "synth-tiny" and bundle.manifest["version"] == "test-1"
    assert (bundle.root / "model.weights").read_bytes() == model_export.weights.read_bytes()
    source = bundle.manifest["source_checkpoint"]
    assert source["sha256"] == file_digest(model_export.weights)[0]
    assert source["selected_weights"] == model_export.weights.name
    assert source["darknet_version"] == "0.2.0"
    metrics = bundle.manifest["metrics"]
    assert metrics["iteration"] == source["selected_iteration"]
    assert 0.0 <= metrics["valid"]["map"] <= 1.0 and "test" in metrics
    assert {"tensorflow", "tf2onnx", "onnx", "onnxruntime", "openvino"} <= set(
        bundle.manifest["tool_versions"]
    )
    assert all(entry["ok"] for entry in bundle.manifest["parity"])
    assert [entry["kind"] for entry in bundle.manifest["parity"]] == [
        "pb",
        "onnx",
        "openvino",
        "openvino_fp16",
    ]
    assert all(entry["images"] == 5 for entry in bundle.manifest["parity"])
    assert all(p.stat().st_mode & 0o044 == 0o044 for p in bundle.root.iterdir())  # readable by the service


def test_pb_uses_only_ops_ncsdk_compiles(model_export: ModelExport) -> None:
    graph_def = tf_graph.load_graph_def(model_export.bundle / "model.pb")
    ops = tf_graph.op_types(graph_def)
    assert ops == [
        "BiasAdd",
        "Const",
        "Conv2D",
        "Identity",
        "MaxPool",
        "Maximum",
        "Mul",
        "Pad",
        "Placeholder",
    ]
    assert tf_graph.unsupported_ncsdk_ops(ops) == []
    assert "LeakyRelu" not in ops and "FusedBatchNormV3" not in ops  # batch norm folded, leaky spelled out
    nodes = {node.name: node for node in graph_def.node}
    input_node = nodes["input"]
    assert input_node.op == "Placeholder"
    assert [d.size for d in input_node.attr["shape"].shape.dim] == [-1, 128, 128, 3]
    assert nodes["output"].op == "Identity"
    # NCSDK's TensorFlowPreproc leaky pattern: Maximum(Mul(scalar 0.1, x), x)
    maxima = [n for n in graph_def.node if n.op == "Maximum"]
    assert len(maxima) == 8
    for node in maxima:
        mul = nodes[node.input[0]]
        assert mul.op == "Mul" and mul.input[1] == node.input[1]
        alpha = nodes[mul.input[0]].attr["value"].tensor
        assert list(alpha.tensor_shape.dim) == [] and alpha.float_val == [pytest.approx(0.1)]
    pools = [n for n in graph_def.node if n.op == "MaxPool"]
    assert [(n.attr["padding"].s, list(n.attr["strides"].list.i)) for n in pools] == [
        (b"SAME", [1, 2, 2, 1])
    ] * 5 + [(b"SAME", [1, 1, 1, 1])]
    for node in graph_def.node:
        if node.op == "Conv2D":
            assert node.attr["padding"].s == b"VALID"
            assert "explicit_paddings" not in node.attr  # TF >= 1.14 attr stripped for NCSDK's TF 1.x


def test_darkflow_meta(model_export: ModelExport) -> None:
    meta = json.loads((model_export.bundle / "model.meta").read_text())
    bundle = load_bundle(model_export.bundle)
    assert meta["labels"] == list(bundle.classes)
    assert meta["classes"] == len(bundle.classes) and meta["num"] == 5
    assert meta["anchors"] == list(bundle.anchors)
    assert meta["inp_size"] == [128, 128, 3] and meta["out_size"] == [4, 4, 40]
    assert meta["type"] == "[region]" and meta["net"]["width"] == 128
    assert meta["name"] == "synth-tiny" and len(meta["colors"]) == len(bundle.classes)
    assert 0 < meta["thresh"] < 1


@pytest.mark.parametrize(
    ("kind", "run", "tolerance"),
    [
        ("pb", tf_graph.run_pb, 1e-4),
        ("onnx", onnx_export.run_onnx, 1e-4),
        ("openvino", openvino_export.run_ir, 1e-4),
        ("openvino_fp16", openvino_export.run_ir, 2e-2),
    ],
)
def test_raw_output_and_boxes_match_darknet(
    model_export: ModelExport, kind: str, run, tolerance: float
) -> None:  # type: ignore[no-untyped-def]
    bundle = load_bundle(model_export.bundle)
    batch, reference = model_export.batch, model_export.reference
    assert batch.shape == (5, 128, 128, 3) and reference.shape == (5, 4, 4, 40)
    output = parity.as_nhwc(run(bundle.path(kind), batch), reference.shape[1:])
    allowed = parity.allowed_error(tolerance, float(np.max(np.abs(reference))))
    assert np.max(np.abs(output - reference)) <= allowed
    if kind != "openvino_fp16":
        # FP32 formats meet the absolute tolerance even on this checkpoint's large outputs (~1.5e-5
        # measured). FP16 cannot: its spacing is 1/32 for |x| in [32, 64), and the CI checkpoint's
        # outputs reach 30-36 depending on the run, so FP16 is held to the scaled bound here and to
        # the absolute 2e-2 on well-scaled models (the two tests below).
        assert np.max(np.abs(output - reference)) <= tolerance
    result = parity.compare(kind, reference, output, bundle.spec, thresh=model_export.parity_thresh)
    assert result.ok, result.describe()
    assert result.reference_boxes > 0  # the comparison covered detections
    if kind != "openvino_fp16":
        assert result.export_boxes == result.reference_boxes


def test_well_scaled_model_meets_the_absolute_tolerances(model_export: ModelExport, tmp_path: Path) -> None:
    """The CI checkpoint's raw outputs can be large (a few hundred iterations from scratch:
    darknet's rolling variances are still below the true ones), so its parity tolerances scale
    with them.
    Random weights with settled batch-norm statistics give outputs within ±10, where every
    format must meet 1e-4 / 2e-2 absolute and give the same, finite boxes."""
    from training_scripts.export.bundle import export_bundle

    cfg = tmp_path / "random.cfg"
    cfg.write_text(model_export.cfg.read_text())
    weights = tmp_path / "random.weights"
    write_weights(weights, random_weights(parse_cfg(cfg), seed=11))
    result = export_bundle(
        cfg,
        weights,
        model_export.names,
        tmp_path / "bundle",
        parity_batch=model_export.batch,
        log=lambda _: None,
    )
    entries = {entry["kind"]: entry for entry in result.manifest["parity"]}
    assert set(entries) == {"pb", "onnx", "openvino", "openvino_fp16"}
    for kind, entry in entries.items():
        assert entry["output_max"] < parity.OUTPUT_SCALE
        assert entry["allowed"] == parity.TOLERANCES[kind] and entry["max_abs"] <= entry["allowed"]
        assert entry["ok"] and entry["reference_boxes"] > 0 and not entry["mismatch"]
        if kind != "openvino_fp16":
            assert entry["export_boxes"] == entry["reference_boxes"]
    assert entries["openvino_fp16"]["max_abs"] > entries["openvino"]["max_abs"]  # fp16 weights do round


def test_openvino_fp16_stores_half_precision(model_export: ModelExport) -> None:
    root = model_export.bundle
    assert openvino_export.ir_weight_precision(root / "model.xml") == "f32"
    assert openvino_export.ir_weight_precision(root / "model-fp16.xml") == "f16"
    ratio = (root / "model-fp16.bin").stat().st_size / (root / "model.bin").stat().st_size
    assert 0.45 < ratio < 0.55
    assert "LeakyRelu" in onnx_export.onnx_op_types(root / "model.onnx")


def test_flipped_byte_in_a_model_is_refused(model_export: ModelExport, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(model_export.bundle, tmp_path / "bundle"))
    data = bytearray((copy / "model-fp16.bin").read_bytes())
    data[len(data) // 2] ^= 0x80
    (copy / "model-fp16.bin").write_bytes(bytes(data))
    with pytest.raises(
        UserError, match=r"model-fp16\.bin: sha256 mismatch \(manifest [0-9a-f]{12}\.\.\., file "
    ):
        load_bundle(copy)


def test_416_network_every_format_matches_darknet(tmp_path: Path) -> None:
    """Tiny-YOLOv2 at 416 (13x13 grid: the stride-1 pool works on 13x13, odd sizes), 20 classes
    (13x13x125 as for VOC), narrow filters to keep it quick, random weights with settled batch-norm
    statistics: every format on 5 images within the absolute tolerances (1e-4 FP32, 2e-2 FP16),
    unscaled, with the same boxes."""
    from training_scripts.export.bundle import export_bundle

    names = tmp_path / "voc.names"
    names.write_text("".join(f"c{i}\n" for i in range(20)))
    cfg = tmp_path / "voc416.cfg"
    cfg.write_text(generate_cfg([f"c{i}" for i in range(20)], "cpu-smoke", size=416))
    weights = tmp_path / "voc416.weights"
    write_weights(weights, random_weights(parse_cfg(cfg), seed=7))
    batch = parity.random_images(5, (416, 416, 3), seed=1)
    # random weights score low: a low threshold so that the box comparison has boxes to compare
    result = export_bundle(
        cfg, weights, names, tmp_path / "bundle", parity_batch=batch, parity_thresh=0.02, log=lambda _: None
    )
    entries = {entry["kind"]: entry for entry in result.manifest["parity"]}
    assert set(entries) == {"pb", "onnx", "openvino", "openvino_fp16"}
    for kind, entry in entries.items():
        assert entry["images"] == 5 and entry["output_max"] < parity.OUTPUT_SCALE, entry
        assert entry["allowed"] == parity.TOLERANCES[kind] and entry["max_abs"] <= entry["allowed"], entry
        assert entry["ok"] and not entry["mismatch"] and entry["reference_boxes"] > 0, entry
    bundle = load_bundle(tmp_path / "bundle")
    output = parity.as_nhwc(onnx_export.run_onnx(bundle.path("onnx"), batch), (13, 13, 125))
    reference = DarknetModel(parse_cfg(cfg), read_weights(weights, parse_cfg(cfg))).forward(batch)
    assert output.shape == reference.shape == (5, 13, 13, 125)
    assert np.max(np.abs(output - reference)) <= 1e-4


def test_cli_exports_and_prints_sizes(
    model_export: ModelExport, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli-bundle"
    images = [str(p) for p in model_export.images]
    argv = ["export", "--cfg", str(model_export.cfg), "--weights", str(model_export.weights)]
    argv += ["--names", str(model_export.names), "--out", str(out), "--formats", "pb", "--version", "9"]
    argv += ["--parity-images", *images, "--parity-thresh", str(model_export.parity_thresh)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "pb: max |Δ|" in captured.err and ": ok" in captured.err
    assert "size MiB" in captured.out and "model.pb" in captured.out
    assert "exported in" in captured.out
    bundle = load_bundle(out)
    assert bundle.manifest["version"] == "9" and set(bundle.artifacts) >= {"pb", "meta", "names"}
    assert (out / "model.pb").read_bytes() == (model_export.bundle / "model.pb").read_bytes()  # deterministic


def test_cli_bad_input_is_one_line_and_keeps_the_old_bundle(
    model_export: ModelExport, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = Path(shutil.copytree(model_export.bundle, tmp_path / "bundle"))
    names = tmp_path / "two.names"
    names.write_text("only\ntwo\n")
    argv = ["export", "--cfg", str(model_export.cfg), "--weights", str(model_export.weights)]
    argv += ["--names", str(names), "--out", str(out), "--formats", "pb"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "two.names lists 2 names" in err[0]
    load_bundle(out)  # untouched


def test_failed_parity_leaves_the_old_bundle(
    model_export: ModelExport, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from training_scripts.export.bundle import export_bundle

    out = Path(shutil.copytree(model_export.bundle, tmp_path / "bundle"))
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.suffix in {".json", ".pb"}}
    monkeypatch.setitem(parity.TOLERANCES, "pb", -1.0)  # no output can pass
    with pytest.raises(UserError, match=r"model\.pb: parity with the darknet reference failed"):
        export_bundle(
            model_export.cfg,
            model_export.weights,
            model_export.names,
            out,
            formats=["pb"],
            parity_batch=model_export.batch,
            log=lambda _line: None,
        )
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.suffix in {".json", ".pb"}} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # no temporary directory left
