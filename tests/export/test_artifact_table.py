"""One table of artifact types (edge_image.contract.manifest.ARTIFACT_TYPES): export's formats, file names,
builders, parity tolerances and the manifest's known kinds all come from it, and it keeps the
kinds bundles already carry."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from edge_image.contract.errors import UserError
from edge_image.contract.manifest import ARTIFACT_KINDS, ARTIFACT_TYPES, ARTIFACTS, companion
from training_scripts.export import FORMATS, parity
from training_scripts.export import bundle as export_bundle

# The kinds of manifest schema 1 as bundles made before the table carry them: renaming one
# would make those bundles fail to load.
SCHEMA_1_KINDS = (
    "darknet_cfg", "darknet_weights", "names", "pb", "meta", "onnx", "openvino", "openvino_fp16", "ncs_graph",
)  # fmt: skip


def test_table_keeps_the_schema_1_kinds_and_their_files() -> None:
    assert tuple(ARTIFACT_KINDS) == SCHEMA_1_KINDS
    assert export_bundle.FILES == {
        "darknet_cfg": "model.cfg", "darknet_weights": "model.weights", "names": "obj.names",
        "pb": "model.pb", "meta": "model.meta", "onnx": "model.onnx", "openvino": "model.xml",
        "openvino_fp16": "model-fp16.xml", "ncs_graph": "model.graph",
    }  # fmt: skip
    assert companion("openvino_fp16", "model-fp16.xml") == "model-fp16.bin"
    assert len({t.file for t in ARTIFACT_TYPES}) == len(ARTIFACT_TYPES)


def test_formats_tolerances_and_matching_are_the_table_rows() -> None:
    assert FORMATS == {
        "pb": "pb", "onnx": "onnx", "openvino": "openvino", "openvino-fp16": "openvino_fp16",
        "ncs": "ncs_graph",
    }  # fmt: skip
    assert parity.TOLERANCES == {"pb": 1e-4, "onnx": 1e-4, "openvino": 1e-4, "openvino_fp16": 2e-2}
    assert parity.MATCHING["openvino_fp16"] == (0.05, 1e-2) and parity.MATCHING["pb"] == (1e-3, 1e-3)
    with pytest.raises(UserError, match=r"no runtime here for artifact kind 'ncs_graph' \(parity runs pb, "):
        parity.runner("ncs_graph")


@pytest.mark.parametrize("row", [t for t in ARTIFACT_TYPES if t.format], ids=lambda t: t.kind)
def test_every_format_row_names_a_builder_module_with_the_contract(row) -> None:  # type: ignore[no-untyped-def]
    module = importlib.import_module(row.builder)
    assert callable(module.build)
    if row.parity is not None:
        assert parity.runner(row.kind) is module.run
    for extra in row.extras:
        assert extra in ARTIFACTS and ARTIFACTS[extra].format is None


def test_the_table_does_not_pull_training_code_onto_the_pi() -> None:
    """Builders are named, not imported: the edge package loads the table without training_scripts."""
    code = (
        "import sys, edge_image.contract.manifest as m; assert m.ARTIFACTS; "
        "print(any(k.startswith('training_scripts') for k in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
