"""The acceptance run: `ansible-playbook -i ansible/inventories/local ansible/train.yml` for real.

darknet is built from Debian's source package through the darknet role, a synthetic dataset is
drawn and imported, darknet trains a few segments of the cpu-smoke profile, the best checkpoint
is selected, exported to a parity-checked bundle and published to a local directory. A second
run of the same playbook must report changed=0 and must not retrain.

Extra-vars keep CI time down: everything lives in a temporary edgeyolo_root, 40 synthetic
images, 20 iterations in segments of 10 (two checkpoints to choose from).
"""

from __future__ import annotations

import csv
import hashlib
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge_image.contract.manifest import load_bundle
from tests.ansible.runner import ANSIBLE_DIR, REPO, PlaybookRun, run_playbook

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

MAX_BATCHES = 20
SEGMENT = 10


@dataclass(frozen=True)
class TwoRuns:
    root: Path
    first: PlaybookRun
    second: PlaybookRun
    before_second: dict[str, float]  # mtimes of training outputs before the second run


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run_dir(root: Path) -> Path:
    return (root / "train" / "current").resolve()


def _training_outputs(root: Path) -> dict[str, float]:
    run = _run_dir(root)
    paths = [*run.glob("*.weights"), run / "metrics.csv", root / "darknet" / "bin" / "darknet"]
    return {str(p): p.stat().st_mtime_ns for p in paths}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> TwoRuns:
    root = tmp_path_factory.mktemp("train-local")
    extra = {
        "edgeyolo_root": str(root),
        "dataset_synth_images": 40,
        "train_max_batches": MAX_BATCHES,
        "train_segment": SEGMENT,
    }
    playbook = ANSIBLE_DIR / "train.yml"
    first = run_playbook(
        playbook, inventory="ansible/inventories/local", tmp=root, extra_vars=extra, timeout=1500
    )
    assert first.returncode == 0, first.tail(120)
    before = _training_outputs(root)
    second = run_playbook(
        playbook, inventory="ansible/inventories/local", tmp=root, extra_vars=extra, timeout=900
    )
    return TwoRuns(root, first, second, before)


def test_darknet_built_from_debian_source_through_the_role(runs: TwoRuns) -> None:
    darknet = runs.root / "darknet"
    stamp = json.loads((darknet / "build.json").read_text(encoding="utf-8"))
    assert stamp["source"].startswith("debian darknet_0.0.0+git20180914.61c9d02e")
    assert "OPENMP=1" in stamp["make"] and "GPU=0" in stamp["make"]
    # pjreddie's Makefile has no CUDNN_HALF/AVX/LIBSO: they are not passed
    assert not any(arg.split("=")[0] in ("CUDNN_HALF", "AVX", "LIBSO") for arg in stamp["make"])
    assert list((darknet / "debian").glob("darknet_*.dsc"))
    # the local inventory's CPU region-backward patch is applied and fingerprinted
    (region_c,) = (darknet / "debian").glob("darknet_*/src/region_layer.c")
    assert "CPU twin of backward_region_layer_gpu" in region_c.read_text(encoding="utf-8")
    patch = REPO / "training_scripts/darknet/patches/region-cpu-backward.patch"
    # ansible's file lookup strips the trailing newline before hashing
    assert stamp["patches"] == [
        hashlib.sha256(patch.read_text(encoding="utf-8").rstrip().encode()).hexdigest()
    ]
    assert (darknet / "bin" / "darknet").stat().st_size > 100_000


def test_synthetic_dataset_prepared_with_anchors(runs: TwoRuns) -> None:
    prepared = runs.root / "dataset" / "prepared"
    report = json.loads((prepared / "report.json").read_text(encoding="utf-8"))
    assert report["images"] == 40
    assert len(report["classes"]) == 3
    anchors = (runs.root / "dataset" / "anchors.txt").read_text(encoding="utf-8").strip().split(",")
    assert len(anchors) == 10 and all(float(a) > 0 for a in anchors)


def test_training_ran_in_segments_to_max_batches(runs: TwoRuns) -> None:
    run = _run_dir(runs.root)
    with (run / "metrics.csv").open(encoding="utf-8", newline="") as handle:
        iterations = [int(row["iteration"]) for row in csv.DictReader(handle)]
    assert iterations[-1] == MAX_BATCHES
    assert iterations == sorted(set(iterations))
    names = sorted(p.name for p in run.glob("yolov2-tiny-edgeyolo_*.weights"))
    assert names == ["yolov2-tiny-edgeyolo_10.weights", "yolov2-tiny-edgeyolo_20.weights"]
    assert (run / "train.done").is_file()
    assert "iteration 20/20 (100.0%)" in runs.first.output


def test_selected_exported_and_published_locally(runs: TwoRuns) -> None:
    run = _run_dir(runs.root)
    selection = json.loads((run / "selection" / "selection.json").read_text(encoding="utf-8"))
    assert Path(selection["selected"]["weights"]).parent == run
    assert (run / "selection" / "report.html").stat().st_size > 1000
    latest = json.loads(
        (runs.root / "published" / "yolov2-tiny-edgeyolo" / "latest.json").read_text(encoding="utf-8")
    )
    published = Path(latest["path"])
    assert latest["version"] == run.name == published.name
    manifest_path = published / "manifest.json"
    assert _sha256(manifest_path) == latest["manifest_sha256"]
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert manifest["version"] == run.name
    for entry in manifest["files"]:
        file = published / entry["path"]
        assert file.stat().st_size == entry["bytes"], entry["path"]
        assert _sha256(file) == entry["sha256"], entry["path"]
    assert {"model.pb", "model.onnx", "model.xml", "model-fp16.xml"} <= {e["path"] for e in manifest["files"]}
    assert (published / "extra" / "report.html").is_file()
    # the archive the edge playbook deploys: the same bytes as <version>.tar.gz and latest.tar.gz,
    # named in latest.json, and it unpacks to the verified bundle
    archive = Path(latest["archive"])
    assert archive == published.parent / f"{run.name}.tar.gz"
    assert _sha256(archive) == latest["archive_sha256"] == _sha256(published.parent / "latest.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(runs.root / "unpacked", filter="data")
    assert load_bundle(runs.root / "unpacked" / run.name).manifest == manifest


def test_train_status_shows_progress_and_fetches_the_loss_plot(runs: TwoRuns) -> None:
    """`make train-status`: the play tagged train-status alone, on the finished run."""
    fetch_dir = runs.root / "status"
    status = run_playbook(
        ANSIBLE_DIR / "train.yml", inventory="ansible/inventories/local", tmp=runs.root,
        extra_vars={"edgeyolo_root": str(runs.root), "train_status_fetch_dir": str(fetch_dir)},
        args=("--tags", "train-status"), timeout=300,
    )  # fmt: skip
    assert status.returncode == 0, status.tail(80)
    assert "iteration 20/20 (100.0%)" in status.output and "complete" in status.output
    assert "Build darknet" not in status.output  # only the status play ran
    plot = fetch_dir / "localhost-loss.png"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_second_run_changes_nothing_and_does_not_retrain(runs: TwoRuns) -> None:
    second = runs.second
    assert second.returncode == 0, second.tail(120)
    assert second.changed() == 0, second.tail(200)
    assert _training_outputs(runs.root) == runs.before_second
    assert (
        "skipping: [localhost]"
        in second.output.split("TASK [train : Train (resumes", 1)[1].split("TASK [", 1)[0]
    )
