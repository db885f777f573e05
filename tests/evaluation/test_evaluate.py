"""Evaluation of real darknet checkpoints, checkpoint selection and the CLI commands."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_image.contract.errors import UserError
from training_scripts.dataset.darknet_layout import read_labels, read_list
from training_scripts.evaluation import evaluate as evaluate_mod
from training_scripts.evaluation.evaluate import Evaluator, load_truths, query_accuracy, resolve_list
from training_scripts.evaluation.metrics import ImagePredictions
from training_scripts.evaluation.select import CheckpointScore, pick_best, select
from training_scripts.training.data import load_data_config

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "training_scripts", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_truths_are_labels_as_corners(synth_dataset, tmp_path):
    image = read_list(synth_dataset / "valid.txt")[0]
    labels = read_labels(synth_dataset / "labels" / f"{image.stem}.txt")
    (truth,) = load_truths([image], 3)
    cx, cy, w, h = labels[0, 1:]
    assert truth.boxes[0] == pytest.approx([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    assert truth.class_ids.tolist() == labels[:, 0].astype(int).tolist()
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "x.txt").write_text("5 0.5 0.5 0.1 0.1\n")
    with pytest.raises(UserError, match=r"labels/x.txt: class id 5 but the data set has 3 classes"):
        load_truths([tmp_path / "images" / "x.jpg"], 3)
    (no_label,) = load_truths([tmp_path / "images" / "none.jpg"], 3)  # missing label file: no objects
    assert no_label.boxes.shape == (0, 4)


def test_resolve_list_names_and_errors(synth_dataset, tmp_path):
    data = load_data_config(synth_dataset)
    assert resolve_list(data, "test") == synth_dataset / "test.txt"
    assert resolve_list(data, "query") == synth_dataset / "query.txt"
    with pytest.raises(UserError, match="not one of valid, test, query, train"):
        resolve_list(data, "holdout")
    own = tmp_path / "mine.txt"
    own.write_text(read_list(synth_dataset / "test.txt")[0].as_posix() + "\n")
    assert resolve_list(data, str(own)) == own


def test_query_accuracy_counts():
    names = ["a", "b"]
    preds = [
        ImagePredictions.of([[0, 0, 1, 1], [0, 0, 1, 1]], [0.6, 0.9], [0, 1]),  # top "b": right
        ImagePredictions.of([[0, 0, 1, 1]], [0.8], [0]),  # "a" but truth "b": wrong
        ImagePredictions.of([[0, 0, 1, 1]], [0.2], [0]),  # below .25 on a none image: right
        ImagePredictions.of([[0, 0, 1, 1]], [0.3], [1]),  # detection on a none image: wrong
        ImagePredictions.of([], [], []),  # nothing on an "a" image: wrong
    ]
    result = query_accuracy(preds, ["b", "b", None, None, "a"], names, 0.25)
    assert (result.correct, result.n_images) == (2, 5)
    assert (result.with_class, result.with_class_correct, result.none, result.none_correct) == (3, 1, 2, 1)
    assert result.accuracy == pytest.approx(0.4)
    assert "accuracy = 40.00 % (2 of 5 images)" in result.format()


def test_pick_best_tie_breaks():
    def score(iteration: int, m: float, f1: float) -> CheckpointScore:
        return CheckpointScore(iteration, Path(f"w{iteration}"), m, m, f1, 0.0, 0.0, 0.0)

    assert pick_best([score(10, 0.5, 0.1), score(20, 0.4, 0.9)]).iteration == 10  # mAP first
    assert pick_best([score(10, 0.5, 0.6), score(20, 0.5, 0.4)]).iteration == 10  # then F1
    assert pick_best([score(10, 0.5, 0.6), score(20, 0.5, 0.6)]).iteration == 20  # then later
    with pytest.raises(UserError):
        pick_best([])


def test_select_empty_backup_is_an_error(synth_dataset, tmp_path):
    cfg = tmp_path / "model.cfg"
    cfg.write_text("[net]\n")
    (tmp_path / "backup").mkdir()
    with pytest.raises(UserError, match=r"backup: no checkpoints model_<iteration>.weights to select from"):
        select(synth_dataset, cfg, tmp_path / "backup", stream=io.StringIO())
    (tmp_path / "backup" / "other_100.weights").write_bytes(b"")
    with pytest.raises(UserError, match=r"other weights there: other_100.weights"):
        select(synth_dataset, cfg, tmp_path / "backup", stream=io.StringIO())
    result = _cli("select", "--data", synth_dataset, "--cfg", cfg, "--backup", tmp_path / "nowhere")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: --backup") and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_evaluate_real_checkpoint_matches_metrics(trained_run):
    data = load_data_config(trained_run.data_dir)
    run = Evaluator(data, trained_run.cfg, "valid").run(trained_run.final_weights)
    ev = run.evaluation
    assert ev is not None and run.query is None
    valid = read_list(trained_run.data_dir / "valid.txt")
    assert run.n_images == ev.n_images == len(valid)
    assert [c.name for c in ev.classes] == trained_run.names
    n_truth = sum(len(read_labels(trained_run.data_dir / "labels" / f"{p.stem}.txt")) for p in valid)
    assert sum(c.n_truth for c in ev.classes) == n_truth == ev.tp + ev.fn
    assert 0.0 <= ev.map <= 1.0 and 0.0 <= ev.map11 <= 1.0
    assert ev.tp + ev.fp == sum(c.tp + c.fp for c in ev.classes)
    assert run.images_per_second > 0


@pytest.mark.slow
def test_evaluate_cli_prints_darknet_lines_and_json(trained_run, tmp_path):
    out = tmp_path / "eval.json"
    result = _cli(
        "evaluate", "--data", trained_run.data_dir, "--cfg", trained_run.cfg,
        "--weights", trained_run.final_weights, "--list", "test", "--json", out,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for k, name in enumerate(trained_run.names):
        assert any(line.startswith(f"class_id = {k}, name = {name}, ap = ") for line in lines)
    assert any(line.startswith(" for conf_thresh = 0.25, precision = ") for line in lines)
    assert any(line.startswith(" for conf_thresh = 0.25, TP = ") for line in lines)
    map_lines = [line for line in lines if "mean average precision (mAP@0.50) = " in line]
    assert len(map_lines) == 2
    document = json.loads(out.read_text())
    assert document["list"] == "test" and document["weights"] == str(trained_run.final_weights)
    assert f"{document['evaluation']['map']:.6f}" in map_lines[0]
    assert f"{document['evaluation']['map11']:.6f}" in map_lines[1]
    assert len(document["evaluation"]["classes"]) == len(trained_run.names)


@pytest.mark.slow
def test_evaluate_query_list_gives_accuracy(trained_run):
    run = Evaluator(load_data_config(trained_run.data_dir), trained_run.cfg, "query").run(
        trained_run.final_weights
    )
    report = json.loads((trained_run.data_dir / "report.json").read_text())
    assert run.evaluation is None and run.query is not None
    assert run.query.n_images == report["query"]
    assert run.query.with_class == report["query_with_class"] and run.query.none == report["query_none"]
    assert 0 <= run.query.correct <= run.query.n_images


@pytest.mark.slow
def test_weights_of_another_cfg_is_a_clear_error(trained_run, tmp_path):
    bad = tmp_path / "bad.weights"
    bad.write_bytes(trained_run.final_weights.read_bytes()[:-400])
    result = _cli(
        "evaluate", "--data", trained_run.data_dir, "--cfg", trained_run.cfg, "--weights", bad,
    )  # fmt: skip
    assert result.returncode == 2
    assert "error: " in result.stderr and "truncated in layer" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_selection_evaluates_test_only_for_the_winner(trained_run, tmp_path, monkeypatch):
    calls: list[tuple[str, str]] = []
    original = Evaluator.run

    def recording(self: Evaluator, weights: Path, **kw: object):  # type: ignore[no-untyped-def]
        calls.append((self.which, Path(weights).name))
        return original(self, weights, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Evaluator, "run", recording)
    chosen = select(trained_run.data_dir, trained_run.cfg, trained_run.backup, tmp_path, stream=io.StringIO())
    valid_calls = [w for which, w in calls if which == "valid"]
    test_calls = [w for which, w in calls if which == "test"]
    assert valid_calls == [p.name for _, p in trained_run.checkpoints]
    assert test_calls == [chosen.best.weights.name]
    assert chosen.best == pick_best(chosen.scores)


@pytest.mark.slow
def test_selection_fixture_outputs(selection):
    doc = selection.document
    iterations = [c["iteration"] for c in doc["checkpoints"]]
    assert iterations == [i for i, _ in selection.run.checkpoints]
    best = max(doc["checkpoints"], key=lambda c: (c["map"], c["f1"], c["iteration"]))
    assert doc["selected"]["iteration"] == best["iteration"] == selection.iteration
    assert doc["selected"]["weights"] == str(selection.weights)
    assert doc["selected"]["valid"]["list"] == "valid" and doc["selected"]["test"]["list"] == "test"
    assert doc["selected"]["valid"]["evaluation"]["map"] == pytest.approx(best["map"])
    assert doc["names"] == selection.run.names
    assert selection.map_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for cls in doc["selected"]["test"]["evaluation"]["classes"]:
        assert len(cls["precision"]) == len(cls["recall"])


@pytest.mark.slow
def test_input_cache_reused_between_checkpoints(trained_run, monkeypatch):
    reads: list[Path] = []
    original = evaluate_mod.load_image

    def counting(path: Path) -> np.ndarray:
        reads.append(path)
        return original(path)

    monkeypatch.setattr(evaluate_mod, "load_image", counting)
    evaluator = Evaluator(load_data_config(trained_run.data_dir), trained_run.cfg, "valid")
    first = evaluator.run(trained_run.checkpoints[0][1])
    second = evaluator.run(trained_run.checkpoints[1][1])
    assert len(reads) == first.n_images == second.n_images
