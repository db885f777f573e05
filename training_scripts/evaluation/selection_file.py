"""``selection.json``, the hand-off from ``select`` to ``export``, ``report`` and ``summary``.

One class, :class:`SelectionFile`, writes it (``select``) and reads it (everyone else), with
one-line errors naming the file and the field. The JSON layout is unchanged from the files
``select`` wrote before this class existed, so those still load::

    {"criterion": "...", "data": ".../obj.data", "cfg": ".../model.cfg", "backup": "...",
     "names": ["..."], "conf_thresh": 0.25,
     "selected": {"iteration": 300, "weights": ".../model_300.weights",
                  "valid": <EvaluationRun.to_dict()>, "test": <EvaluationRun.to_dict()>},
     "checkpoints": [<CheckpointScore.to_dict()>, ...], "map_by_iteration_png": "..."}
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edge_image.contract.atomic import write_text
from edge_image.contract.errors import UserError, read_json
from edge_image.contract.fields import Fields

_CHECKPOINT_FIELDS = ("iteration", "weights", "map", "map11", "f1", "precision", "recall", "average_iou")


def _scalars(data: object) -> dict[str, Any]:
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, int | float | str) and not isinstance(v, bool)}


@dataclass(frozen=True)
class SelectedCheckpoint:
    """``selected``: the chosen checkpoint and its evaluations (``EvaluationRun.to_dict()``)."""

    iteration: int
    weights: str
    valid: dict[str, Any]
    test: dict[str, Any] | None

    def evaluation(self, which: str, where: str) -> dict[str, Any]:
        """``{"n_images": N, **evaluation}`` of the ``valid`` or ``test`` run; UserError if absent."""
        run = self.valid if which == "valid" else self.test
        evaluation = run.get("evaluation") if isinstance(run, dict) else None
        if not isinstance(evaluation, dict) or not isinstance(run.get("n_images"), int):  # type: ignore[union-attr]
            raise UserError(f"{where}: selected.{which}.evaluation missing (was select run?)")
        return {"n_images": run["n_images"], **evaluation}  # type: ignore[index]


@dataclass(frozen=True)
class SelectionFile:
    """The whole ``selection.json`` (see the module doc)."""

    criterion: str
    data: str
    cfg: str
    backup: str
    names: list[str]
    conf_thresh: float
    selected: SelectedCheckpoint
    checkpoints: list[dict[str, Any]]
    map_by_iteration_png: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON object (key order as ``select`` always wrote it)."""
        return asdict(self)

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically as indented JSON; returns the path."""
        return write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, doc: object, *, where: str) -> SelectionFile:
        """Check and wrap a parsed document; :class:`UserError` names the first bad field."""
        top = Fields(where, "", doc, hint="not a selection file: was it written by `select`?")
        selected = top.required_child("selected")
        checkpoints = top.mappings("checkpoints")
        for entry in checkpoints:
            for key in _CHECKPOINT_FIELDS:
                entry.value(key, (int, float, str), "a number or a string")
        return cls(
            criterion=top.string("criterion", ""),
            data=top.string("data", ""),
            cfg=top.value("cfg", str, "a string"),
            backup=top.string("backup", ""),
            names=top.strings("names"),
            conf_thresh=top.number("conf_thresh", 0.25, high=1.0),
            selected=SelectedCheckpoint(
                iteration=selected.value("iteration", int, "an integer"),
                weights=selected.value("weights", str, "a string"),
                valid=selected.value("valid", dict, "an object"),
                test=selected.optional("test", dict, "an object"),
            ),
            checkpoints=[dict(entry.data) for entry in checkpoints],
            map_by_iteration_png=top.string("map_by_iteration_png", ""),
        )

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> SelectionFile:
        """Read and check ``path``; one-line errors for a missing file, bad JSON, a bad field."""
        doc = read_json(path, missing="selection file not found (run `select` first)")
        return cls.from_dict(doc, where=str(path))

    def metrics(self) -> dict[str, Any]:
        """What a bundle's manifest records: the criterion, the chosen iteration, and the scalar
        metrics (mAP, F1, precision, recall, ...) of its valid and test evaluations."""
        metrics: dict[str, Any] = {"criterion": self.criterion, "iteration": self.selected.iteration}
        if not self.criterion:
            del metrics["criterion"]
        for split, run in (("valid", self.selected.valid), ("test", self.selected.test)):
            evaluation = _scalars(run.get("evaluation")) if isinstance(run, dict) else {}
            if evaluation:
                metrics[split] = evaluation
        return metrics
