"""The darknet binary the pipeline builds must be able to train YOLOv2 (region) models on a CPU.

pjreddie 61c9d02e ships ``backward_region_layer`` with its body commented out, so a CPU build
never propagates the region loss: training runs and saves checkpoints, but no parameter moves
(only weight decay shrinks the kernels). ``training_scripts/darknet/patches/
region-cpu-backward.patch`` restores it; this test fails on an unpatched binary.
"""

from __future__ import annotations

import subprocess

import numpy as np

from tests.darknet.conftest import NAMES3, write_images
from training_scripts.darknet.cfg import parse_cfg, render_cfg
from training_scripts.darknet.profiles import generate_cfg
from training_scripts.darknet.weights import random_weights, read_weights, write_weights


def test_region_gradient_reaches_the_network(darknet_bin, tmp_path):
    root = tmp_path / "set"  # darknet rewrites "images"/"raw" anywhere in the path: keep them out
    images = write_images(root / "images", 128, 4, seed=7)
    (root / "labels").mkdir()
    for i, image in enumerate(images):
        (root / "labels" / f"{image.stem}.txt").write_text(f"{i % 3} 0.5 0.5 0.4 0.3\n")
    (root / "train.txt").write_text("".join(f"{p}\n" for p in images))
    (root / "obj.names").write_text("".join(f"{n}\n" for n in NAMES3))
    (root / "backup").mkdir()
    (root / "obj.data").write_text(
        f"classes=3\ntrain={root / 'train.txt'}\nnames={root / 'obj.names'}\nbackup={root / 'backup'}\n"
    )
    sections = parse_cfg(generate_cfg(NAMES3, "cpu-smoke", max_batches=2))
    sections[0].options.update(batch="4", burn_in="0")  # full learning rate from the first step
    cfg = root / "tiny.cfg"
    cfg.write_text(render_cfg(sections))
    before = random_weights(sections, seed=1)
    write_weights(root / "init.weights", before)

    proc = subprocess.run(
        [str(darknet_bin), "detector", "train", str(root / "obj.data"), str(cfg), str(root / "init.weights")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"OMP_NUM_THREADS": "2", "PATH": "/usr/bin:/bin"},
    )
    final = root / "backup" / "tiny_final.weights"
    assert final.is_file(), proc.stderr[-2000:]
    after = read_weights(final, sections)
    assert after.seen == 2 * 4
    # the last conv (linear, no batch norm) and the first conv's batch-norm shift both learn
    last_moved = not np.array_equal(after.layers[-1].biases, before.layers[-1].biases)
    first_moved = not np.array_equal(after.layers[0].biases, before.layers[0].biases)
    assert last_moved, f"{darknet_bin}: region loss not propagated (unpatched backward_region_layer)"
    assert first_moved, f"{darknet_bin}: no gradient reached layer 0"
