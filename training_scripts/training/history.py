"""``metrics.csv``: one row per training iteration, kept across segments and resumes.

Columns are :data:`training_scripts.training.logparse.FIELDS`. The file only ever holds the
iterations of the current lineage of checkpoints: when training resumes from the checkpoint
of iteration ``K``, rows after ``K`` (from a segment that was cut short and will be trained
again) are dropped first, so an iteration never appears twice.

Rows are appended and fsynced one at a time. A crash can still leave the end of the file torn
(a row cut short, or NUL bytes where a file system had extended the file but not written it):
:func:`repair_history` drops that debris with a warning before training resumes. Anything
wrong before the end is not crash debris and stays an error naming the line.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

from edge_image.contract.atomic import write_bytes, write_text
from edge_image.contract.errors import UserError
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


def read_history(path: str | os.PathLike[str], *, skip_torn_last: bool = False) -> list[IterationRecord]:
    """All rows of ``path`` (an empty list when it does not exist), in file order.

    A bad row is a :class:`UserError` naming its line; with ``skip_torn_last`` a bad *last*
    row (one a live run is writing as we read, or a crash tore) is left out instead: readers
    beside a running training use it, training itself repairs the file (:func:`repair_history`).
    """
    path = Path(path)
    if not path.exists():
        return []
    records = []
    with path.open(encoding="utf-8", newline="") as handle:
        text = handle.read()
    # a crash can leave NUL bytes where the file system extended the file but wrote nothing
    lines = (text.rstrip("\0") if skip_torn_last else text).splitlines(keepends=True)
    reader = csv.DictReader(lines)
    missing = {"iteration", "loss", "avg_loss"} - set(reader.fieldnames or ())
    if missing:
        raise UserError(f"{path}: not a metrics.csv (missing columns: {', '.join(sorted(missing))})")
    rows = list(reader)
    for number, row in enumerate(rows, start=2):
        values: dict[str, object] = {}
        try:
            for name in FIELDS:
                if name not in row or row[name] in (None, ""):
                    continue
                values[name] = int(row[name]) if name in _INT_FIELDS else float(row[name])
            records.append(IterationRecord(**values))  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            if skip_torn_last and number == len(rows) + 1:
                break
            raise UserError(f"{path}:{number}: bad metrics row ({exc})") from None
    return records


def repair_history(path: str | os.PathLike[str]) -> str | None:
    """Drop a torn last row and trailing NUL bytes from ``path`` (atomic rewrite).

    Returns a one-line description of what was dropped, or None when the file is whole.
    NUL bytes before the last line are not what an append leaves: :class:`UserError`.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    body = data.rstrip(b"\0")
    nuls = len(data) - len(body)
    if b"\0" in body:
        line = body[: body.index(b"\0")].count(b"\n") + 1
        raise UserError(f"{path}:{line}: NUL bytes inside the file (not a torn last row): fix or remove it")
    cut = len(body) - (body.rfind(b"\n") + 1)  # bytes after the last newline: a row cut short
    if not nuls and not cut:
        return None
    kept = body[: len(body) - cut]
    write_bytes(path, kept)
    parts = []
    if cut:
        parts.append(f"a torn last row ({body[len(body) - cut :][:40]!r})")
    if nuls:
        parts.append(f"{nuls} NUL bytes")
    return f"{path}: dropped {' and '.join(parts)} left by a crash"


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
            os.fsync(handle.fileno())  # a power cut loses at most the row being written
        self.last_iteration = record.iteration
        return True
