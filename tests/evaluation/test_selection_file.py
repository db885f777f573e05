"""selection.json as one typed hand-off (SelectionFile): what select writes is what export, report and
summary read, old files load unchanged, and a wrong file is one line naming the field."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from edge_image.contract.errors import UserError
from training_scripts.evaluation.selection_file import SelectionFile


def _evaluation_run(name: str, value: float) -> dict[str, object]:
    return {
        "weights": "/b/m_16.weights", "cfg": "/b/m.cfg", "list": name, "list_path": f"/d/{name}.txt",
        "n_images": 15, "images_per_second": 2.0, "query": None,
        "evaluation": {"map": value, "map11": value, "f1": 0.4, "precision": 0.5, "recall": 0.3,
                       "classes": [{"class_id": 0, "ap": value}]},
    }  # fmt: skip


# a selection.json in the layout select wrote before SelectionFile existed
DOCUMENT: dict[str, object] = {
    "criterion": "valid mAP@0.5, then F1, then the later iteration",
    "data": "/d/obj.data",
    "cfg": "/b/m.cfg",
    "backup": "/b",
    "names": ["a", "b"],
    "conf_thresh": 0.25,
    "selected": {
        "iteration": 16, "weights": "/b/m_16.weights",
        "valid": _evaluation_run("valid", 0.5), "test": _evaluation_run("test", 0.4),
    },
    "checkpoints": [
        {"iteration": 16, "weights": "/b/m_16.weights", "map": 0.5, "map11": 0.5, "f1": 0.4,
         "precision": 0.5, "recall": 0.3, "average_iou": 0.6},
    ],
    "map_by_iteration_png": "/b/map_by_iteration.png",
}  # fmt: skip


def test_old_layout_round_trips_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "selection.json"
    path.write_text(json.dumps(DOCUMENT, indent=2) + "\n")
    selection = SelectionFile.read(path)
    assert selection.selected.iteration == 16 and selection.names == ["a", "b"]
    again = selection.write(tmp_path / "again.json")
    assert again.read_text() == path.read_text()


def test_metrics_for_the_manifest() -> None:
    metrics = SelectionFile.from_dict(DOCUMENT, where="s.json").metrics()
    assert metrics == {
        "criterion": DOCUMENT["criterion"],
        "iteration": 16,
        "valid": {"map": 0.5, "map11": 0.5, "f1": 0.4, "precision": 0.5, "recall": 0.3},
        "test": {"map": 0.4, "map11": 0.4, "f1": 0.4, "precision": 0.5, "recall": 0.3},
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d.pop("selected"),
            r"^s\.json: selected: is required \(not a selection file: was it written by `select`\?\)$",
        ),
        (lambda d: d["selected"].pop("weights"), r"^s\.json: selected\.weights: is required"),
        (
            lambda d: d["selected"].__setitem__("iteration", "16"),
            r"^s\.json: selected\.iteration: must be an integer, got '16'$",
        ),
        (
            lambda d: d["checkpoints"][0].__setitem__("map", None),
            r"^s\.json: checkpoints\[0\]\.map: is required",
        ),
        (
            lambda d: d["checkpoints"][0].__setitem__("map", [1]),
            r"^s\.json: checkpoints\[0\]\.map: must be a number or a string, got \[1\]$",
        ),
        (lambda d: d.update(names=[1]), r"^s\.json: names: must be a list of non-empty strings"),
        (lambda d: d["selected"].__setitem__("test", 3), r"^s\.json: selected\.test: must be an object"),
    ],
)
def test_a_wrong_file_names_the_field(change, message) -> None:  # type: ignore[no-untyped-def]
    doc = copy.deepcopy(DOCUMENT)
    change(doc)
    with pytest.raises(UserError, match=message):
        SelectionFile.from_dict(doc, where="s.json")


def test_read_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"selection file not found \(run `select` first\)"):
        SelectionFile.read(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "selected": \n')
    with pytest.raises(UserError, match=r"bad\.json:3:1: invalid JSON"):
        SelectionFile.read(bad)
    doc = copy.deepcopy(DOCUMENT)
    doc["selected"]["test"] = None  # type: ignore[index]
    selection = SelectionFile.from_dict(doc, where="s.json")
    with pytest.raises(UserError, match=r"s\.json: selected\.test\.evaluation missing"):
        selection.selected.evaluation("test", "s.json")


@pytest.mark.slow
def test_what_select_writes_reads_back_unchanged(selection) -> None:  # type: ignore[no-untyped-def]
    typed = SelectionFile.read(selection.selection_json)
    assert typed.to_dict() == selection.document
    assert typed.selected.iteration == selection.iteration


def test_summary_reads_the_published_selection(tmp_path: Path) -> None:
    from training_scripts.published import PublishedLayout
    from training_scripts.summary import read_training

    bundle = tmp_path / "published" / "m" / "v1"
    (bundle / "extra").mkdir(parents=True)
    (bundle / "manifest.json").write_text(json.dumps({"name": "m", "version": "v1"}))
    (bundle / "extra" / "selection.json").write_text(json.dumps(DOCUMENT))
    latest = tmp_path / "published" / "m" / "latest.json"
    layout = PublishedLayout(str(tmp_path / "published"), "m", "v1")
    latest.write_text(layout.pointer(manifest_sha256="a" * 64, archive_sha256="b" * 64).to_json())
    facts = read_training(latest)
    assert facts["selected_iteration"] == 16 and facts["selected_weights"] == "/b/m_16.weights"
    assert (facts["valid_images"], facts["valid_map50"], facts["test_map50"]) == (15, 0.5, 0.4)
    doc = copy.deepcopy(DOCUMENT)
    del doc["selected"]["test"]["evaluation"]  # type: ignore[index]
    (bundle / "extra" / "selection.json").write_text(json.dumps(doc))
    with pytest.raises(UserError, match=r"selection\.json: selected\.test\.evaluation missing"):
        read_training(latest)
