"""``metrics.csv``: one row per training iteration, kept across segments and resumes.

Columns are :data:`training_scripts.training.logparse.FIELDS`. The file only ever holds the
iterations of the current lineage of checkpoints: when training resumes from the checkpoint
of iteration ``K``, rows after ``K`` (from a segment that was cut short and will be trained
again) are dropped first, so an iteration never appears twice.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

from training_scripts.atomic import write_text
from training_scripts.errors import UserError
from training_scripts.training.logparse import FIELDS, IterationRecord

_INT_FIELDS = frozenset({"iteration", "images", "region_count"})


def _format(value: object) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def _row_text(records: list[IterationRecord], header: bool) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header:
        writer.writerow(FIELDS)
    for record in records:
        row = record.to_row()
        writer.writerow([_format(row[name]) for name in FIELDS])
    return buffer.getvalue()


def read_history(path: str | os.PathLike[str]) -> list[IterationRecord]:
    """All rows of ``path`` (an empty list when it does not exist), in file order."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"iteration", "loss", "avg_loss"} - set(reader.fieldnames or ())
        if missing:
            raise UserError(f"{path}: not a metrics.csv (missing columns: {', '.join(sorted(missing))})")
        for number, row in enumerate(reader, start=2):
            values: dict[str, object] = {}
            try:
                for name in FIELDS:
                    if name not in row or row[name] in (None, ""):
                        continue
                    values[name] = int(row[name]) if name in _INT_FIELDS else float(row[name])
                records.append(IterationRecord(**values))  # type: ignore[arg-type]
            except (TypeError, ValueError) as exc:
                raise UserError(f"{path}:{number}: bad metrics row ({exc})") from None
    return records


def truncate_history(path: str | os.PathLike[str], last_iteration: int) -> list[IterationRecord]:
    """Drop rows after ``last_iteration`` (atomically rewriting the file); return what is kept."""
    records = read_history(path)
    kept = [r for r in records if r.iteration <= last_iteration]
    if len(kept) != len(records):
        write_text(path, _row_text(kept, header=True))
    return kept


class HistoryWriter:
    """Appends records to ``metrics.csv`` one line at a time (flushed, so it can be tailed).

    Records whose iteration is not after the last written one are ignored, which keeps the
    file free of duplicates even if darknet re-prints an iteration.
    """

    def __init__(self, path: str | os.PathLike[str], last_iteration: int = 0) -> None:
        self.path = Path(path)
        self.last_iteration = last_iteration
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists() or self.path.stat().st_size == 0:
            write_text(self.path, _row_text([], header=True))

    def append(self, record: IterationRecord) -> bool:
        """Write ``record``; ``False`` when it was a duplicate and was skipped."""
        if record.iteration <= self.last_iteration:
            return False
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(_row_text([record], header=False))
            handle.flush()
        self.last_iteration = record.iteration
        return True
