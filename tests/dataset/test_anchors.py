"""k-means anchors: recovers planted clusters, deterministic, CLI prints the cfg line."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from edge_image.contract.decode import VOC_TINY_ANCHORS
from training_scripts.__main__ import main
from training_scripts.dataset.anchors import avg_iou, iou_wh, kmeans_anchors, training_box_sizes

PLANTED = np.array([[0.8, 1.0], [2.0, 4.5], [4.0, 2.0], [6.0, 9.0], [11.0, 6.0]])


def planted_boxes(seed: int = 0, per: int = 200) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.normal(1.0, 0.04, size=(len(PLANTED) * per, 2))
    return np.repeat(PLANTED, per, axis=0) * noise


def test_kmeans_recovers_planted_clusters() -> None:
    anchors, score = kmeans_anchors(planted_boxes(), 5, seed=0)
    order = np.argsort(PLANTED.prod(axis=1))
    assert anchors == pytest.approx(PLANTED[order], rel=0.03)
    assert score > 0.9
    assert score == pytest.approx(avg_iou(planted_boxes(), anchors))
    assert avg_iou(planted_boxes(), VOC_TINY_ANCHORS) < score


def test_kmeans_is_seeded_and_deterministic() -> None:
    wh = np.random.default_rng(3).uniform(0.5, 12, size=(500, 2))
    a1, s1 = kmeans_anchors(wh, 5, seed=4)
    a2, s2 = kmeans_anchors(wh, 5, seed=4)
    assert np.array_equal(a1, a2) and s1 == s2
    assert np.all(np.diff(a1.prod(axis=1)) >= 0)  # sorted by area


def test_iou_and_errors() -> None:
    assert iou_wh(np.array([[2.0, 1.0]]), np.array([[1.0, 2.0]]))[0, 0] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="distinct box sizes"):
        kmeans_anchors(np.ones((10, 2)), 2, seed=0)
    with pytest.raises(ValueError, match="positive"):
        kmeans_anchors(np.array([[1.0, 0.0], [2.0, 2.0]]), 1, seed=0)


def test_anchors_cli(synth_dataset: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["anchors", "--data", str(synth_dataset), "--num", "5", "--size", "416"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"anchors = (\d+\.\d\d,\d+\.\d\d, ){4}\d+\.\d\d,\d+\.\d\d", out[1])
    values = np.array([float(v) for v in out[1].split("=")[1].replace(" ", "").split(",")]).reshape(5, 2)
    ours, voc = (float(v) for v in re.findall(r"(\d\.\d{4})", out[2]))
    wh = training_box_sizes(synth_dataset / "obj.data", 416)
    assert len(wh) == int(out[0].split()[1])
    assert ours == pytest.approx(avg_iou(wh, values), abs=1e-4)
    assert voc == pytest.approx(avg_iou(wh, VOC_TINY_ANCHORS), abs=1e-4)
    assert ours > voc
    # the printed line goes into `cfg --anchors` as it is, and lands in the region layer
    cfg = tmp_path / "model.cfg"
    assert (
        main(
            ["cfg", "--data", str(synth_dataset), "--profile", "gpu", "--anchors", out[1], "--out", str(cfg)]
        )
        == 0
    )
    region = cfg.read_text(encoding="utf-8").split("[region]")[1]
    line = next(x for x in region.splitlines() if x.replace(" ", "").startswith("anchors="))
    np.testing.assert_allclose(
        np.array([float(v) for v in line.split("=")[1].split(",")]).reshape(5, 2), values, atol=1e-6
    )


def test_anchors_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["anchors", "--data", str(tmp_path), "--num", "5"]) == 2
    assert (
        capsys.readouterr().err
        == f"error: --data {tmp_path}: no obj.data (run `python -m training_scripts prepare` first)\n"
    )
    assert main(["anchors", "--data", str(tmp_path), "--size", "100"]) == 2
    assert "multiple of 32" in capsys.readouterr().err
