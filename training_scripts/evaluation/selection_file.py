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

_CHECKPOINT_FIELDS = ("iteration", "weights", "map", "map11", "f1", "precision", "recall", "average_iou")


def _field(doc: object, key: str, kind: type | tuple[type, ...], where: str, path: str) -> Any:
    """``doc[key]`` when it is a ``kind``; else :class:`UserError` naming ``path``."""
    if not isinstance(doc, dict) or key not in doc:
        raise UserError(f"{where}: not a selection file (no '{path}'; was it written by `select`?)")
    value = doc[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise UserError(f"{where}: '{path}' has the wrong type ({type(value).__name__})")
    return value


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
        selected = _field(doc, "selected", dict, where, "selected")
        test = selected.get("test")
        if test is not None and not isinstance(test, dict):
            raise UserError(f"{where}: 'selected.test' has the wrong type ({type(test).__name__})")
        checkpoints = _field(doc, "checkpoints", list, where, "checkpoints")
        for number, entry in enumerate(checkpoints):
            for key in _CHECKPOINT_FIELDS:
                _field(entry, key, (int, float, str), where, f"checkpoints[{number}].{key}")
        names = _field(doc, "names", list, where, "names")
        if not all(isinstance(n, str) for n in names):
            raise UserError(f"{where}: 'names' must list strings")
        return cls(
            criterion=str(doc.get("criterion", "")),  # type: ignore[union-attr]
            data=str(doc.get("data", "")),  # type: ignore[union-attr]
            cfg=_field(doc, "cfg", str, where, "cfg"),
            backup=str(doc.get("backup", "")),  # type: ignore[union-attr]
            names=list(names),
            conf_thresh=float(doc.get("conf_thresh", 0.25)),  # type: ignore[union-attr]
            selected=SelectedCheckpoint(
                iteration=_field(selected, "iteration", int, where, "selected.iteration"),
                weights=_field(selected, "weights", str, where, "selected.weights"),
                valid=_field(selected, "valid", dict, where, "selected.valid"),
                test=test,
            ),
            checkpoints=checkpoints,
            map_by_iteration_png=str(doc.get("map_by_iteration_png", "")),  # type: ignore[union-attr]
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
