"""Pick the best checkpoint on the validation list, then measure only it on the test list.

Every ``<name>_<iteration>.weights`` in the backup directory is evaluated on ``valid``;
the winner has the highest mAP@0.5 (area under the curve), ties broken by F1 at the
confidence threshold, then by the later iteration. Only the winner is evaluated on
``test``, so the test number is an unbiased estimate (no choosing on test data).

Outputs (in ``out``, default the backup directory): ``selection.json`` and
``map_by_iteration.png``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from edge_image.contract.errors import UserError
from training_scripts.evaluation.evaluate import EvaluationRun, Evaluator
from training_scripts.evaluation.selection_file import SelectedCheckpoint, SelectionFile
from training_scripts.training.checkpoints import checkpoint_name, list_checkpoints
from training_scripts.training.data import load_data_config

SELECTION_JSON = "selection.json"
MAP_PNG = "map_by_iteration.png"
CRITERION = "max mAP@0.5 (area under curve) on valid; ties: F1 at conf_thresh, then later iteration"


@dataclass(frozen=True)
class CheckpointScore:
    """Validation numbers of one checkpoint."""

    iteration: int
    weights: Path
    map: float
    map11: float
    f1: float
    precision: float
    recall: float
    average_iou: float

    def key(self) -> tuple[float, float, int]:
        """Sort key of the selection rule (bigger is better)."""
        return (self.map, self.f1, self.iteration)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {
            "iteration": self.iteration,
            "weights": str(self.weights),
            "map": self.map,
            "map11": self.map11,
            "f1": self.f1,
            "precision": self.precision,
            "recall": self.recall,
            "average_iou": self.average_iou,
        }


def pick_best(scores: list[CheckpointScore]) -> CheckpointScore:
    """The winner under :data:`CRITERION`.

    >>> a = CheckpointScore(10, Path("a"), 0.5, 0.5, 0.6, 0, 0, 0)
    >>> b = CheckpointScore(20, Path("b"), 0.5, 0.5, 0.6, 0, 0, 0)
    >>> pick_best([a, b]).iteration
    20
    """
    if not scores:
        raise UserError("no checkpoints to choose from")
    return max(scores, key=CheckpointScore.key)


@dataclass(frozen=True)
class Selection:
    """What :func:`select` wrote."""

    selection_json: Path
    map_png: Path
    best: CheckpointScore
    valid: EvaluationRun
    test: EvaluationRun | None
    scores: list[CheckpointScore]


def select(
    data: str | os.PathLike[str],
    cfg: str | os.PathLike[str],
    backup: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    conf_thresh: float = 0.25,
    stream: TextIO | None = None,
) -> Selection:
    """Evaluate all checkpoints of ``cfg`` in ``backup`` on valid, pick one, test it; write outputs."""
    stream = stream if stream is not None else sys.stderr
    backup = Path(backup).resolve()
    name = checkpoint_name(cfg)
    if not backup.is_dir():
        raise UserError(f"--backup {backup}: no such directory")
    checkpoints = list_checkpoints(backup, name)
    if not checkpoints:
        others = sorted(p.name for p in backup.glob("*.weights"))
        hint = f" (other weights there: {', '.join(others[:5])})" if others else ""
        raise UserError(f"{backup}: no checkpoints {name}_<iteration>.weights to select from{hint}")
    data_cfg = load_data_config(data)
    out_dir = Path(out).resolve() if out else backup
    valid = Evaluator(data_cfg, Path(cfg), "valid")
    runs: dict[int, EvaluationRun] = {}
    scores: list[CheckpointScore] = []
    for number, (iteration, weights) in enumerate(checkpoints, start=1):
        run = valid.run(weights, conf_thresh=conf_thresh)
        ev = run.evaluation
        assert ev is not None
        runs[iteration] = run
        scores.append(
            CheckpointScore(
                iteration, weights, ev.map, ev.map11, ev.f1, ev.precision, ev.recall, ev.average_iou
            )
        )
        print(
            f"select: [{number}/{len(checkpoints)}] {weights.name}: mAP@0.5 {100 * ev.map:.2f} % "
            f"(11-point {100 * ev.map11:.2f} %), F1 {ev.f1:.3f}, {run.images_per_second:.1f} images/s",
            file=stream,
            flush=True,
        )
    best = pick_best(scores)
    print(
        f"select: best is {best.weights.name} (valid mAP@0.5 {100 * best.map:.2f} %)", file=stream, flush=True
    )
    test_run = Evaluator(data_cfg, Path(cfg), "test").run(best.weights, conf_thresh=conf_thresh)
    assert test_run.evaluation is not None
    print(
        f"select: test mAP@0.5 of {best.weights.name}: {100 * test_run.evaluation.map:.2f} % "
        f"(11-point {100 * test_run.evaluation.map11:.2f} %)",
        file=stream,
        flush=True,
    )
    from training_scripts.evaluation.plots import plot_map_by_iteration

    map_png = plot_map_by_iteration(scores, best, out_dir / MAP_PNG, test_map=test_run.evaluation.map)
    document = SelectionFile(
        criterion=CRITERION,
        data=str(data_cfg.obj_data),
        cfg=str(Path(cfg).resolve()),
        backup=str(backup),
        names=list(data_cfg.names),
        conf_thresh=conf_thresh,
        selected=SelectedCheckpoint(
            iteration=best.iteration,
            weights=str(best.weights),
            valid=runs[best.iteration].to_dict(),
            test=test_run.to_dict(),
        ),
        checkpoints=[s.to_dict() for s in scores],
        map_by_iteration_png=str(map_png),
    )
    selection_json = document.write(out_dir / SELECTION_JSON)
    return Selection(selection_json, map_png, best, runs[best.iteration], test_run, scores)
