"""The short ``make chaos``: real darknet on the CPU smoke model, crashed three times.

Two SIGKILLs at random moments and one simulated power cut (the newest checkpoint damaged, the
last metrics row torn); each start after a crash must resume from the newest intact checkpoint
and lose at most one checkpoint interval. The reference mAP is the session's uninterrupted
``trained_run`` (the same cfg, 300 iterations), both measured on the 120-image training list:
on the 15-image validation list two runs of the same cfg differed by 0.147 mAP, since darknet
seeds its augmentation from the clock (``make chaos`` has a 150-image validation list).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from training_scripts.evaluation.evaluate import evaluate
from training_scripts.training.chaos import ChaosOptions, last_row_iteration, run_chaos

LINE = re.compile(
    r"^chaos: trials=(\d+) resumed=(\d+) max_lost_iterations=(\d+) checkpoint_interval=(\d+) "
    r"final_map_ok=(True|False)$"
)


@pytest.mark.slow
def test_three_crashes_resume_and_lose_at_most_one_interval(trained_run, darknet_bin, tmp_path):
    cfg = tmp_path / "model.cfg"
    shutil.copy(trained_run.cfg, cfg)
    reference = evaluate(trained_run.data_dir, trained_run.cfg, trained_run.final_weights, "train").evaluation
    assert reference is not None
    said: list[str] = []
    result = run_chaos(
        ChaosOptions(
            data=trained_run.data_dir,
            cfg=cfg,
            backup=tmp_path / "backup",
            darknet=darknet_bin,
            trials=3,
            segment=30,
            power_every=3,
            seed=1,
            reference_map=reference.map,
            map_tolerance=0.2,
            map_list="train",
            log=said.append,
        )
    )
    match = LINE.match(result.line())
    assert match, result.line()
    assert [t.kind for t in result.trials] == ["sigkill", "sigkill", "power"]
    assert result.resumed == 3 and all(t.lost <= 30 for t in result.trials), said
    assert result.metrics_complete and result.final_map_ok and result.ok, said
    # the power cut's damaged checkpoint went to damaged/, and training did that interval again
    power = result.trials[2]
    assert power.resumed_to == power.expected == power.started_at and power.lost >= 1
    assert all(t.resumed_to == t.expected for t in result.trials)
    assert list((tmp_path / "backup" / "damaged").iterdir())
    assert "warning" in (tmp_path / "backup.log").read_text()
    assert not list((tmp_path / "backup").glob(".darknet-work.*"))


def test_last_row_iteration_ignores_a_torn_row(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    assert last_row_iteration(path) == 0
    path.write_bytes(b"iteration,loss\n1,2\n2,1\n3,0.")
    assert last_row_iteration(path) == 2
    path.write_bytes(b"iteration,loss\n1,2\n2,1\n" + bytes(10))
    assert last_row_iteration(path) == 2
