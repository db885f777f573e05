"""Parse darknet training output (pjreddie and AlexeyAB) into one record per iteration.

Lines understood (both forks print them with ``printf``; values may be ``nan``/``-nan``):

- pjreddie ``examples/detector.c``::

      123: 4.123456, 4.567890 avg, 0.001000 rate, 1.234567 seconds, 7872 images

- AlexeyAB ``src/detector.c`` (a leading space, ``avg loss``, and an ETA)::

       123: 4.123456, 4.567890 avg loss, 0.001000 rate, 1.234567 seconds, 7872 images, 2.345678 hours left

- both forks' ``src/region_layer.c`` (once per sub-batch, *before* its iteration line)::

      Region Avg IOU: 0.512, Class: 0.601, Obj: 0.402, No Obj: 0.005, Avg Recall: 0.550,  count: 20

Region lines seen since the previous iteration line are folded into that iteration:
IoU, class, objectness and recall are averaged weighted by ``count`` (their per-line
averages are over ``count`` boxes), ``No Obj`` is a plain mean, counts are summed.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields

from edge_image.contract.errors import UserError

_NUM = r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|nan|inf)"
ITERATION_RE = re.compile(
    rf"^\s*(?P<iteration>\d+):\s*(?P<loss>{_NUM}),\s*(?P<avg>{_NUM}) avg(?: loss)?,"
    rf"\s*(?P<rate>{_NUM}) rate,\s*(?P<seconds>{_NUM}) seconds,\s*(?P<images>\d+) images"
    rf"(?:,\s*(?P<hours_left>{_NUM}) hours left)?",
    re.IGNORECASE,
)
REGION_RE = re.compile(
    rf"Region Avg IOU:\s*(?P<iou>{_NUM}),\s*Class:\s*(?P<cls>{_NUM}),\s*Obj:\s*(?P<obj>{_NUM}),"
    rf"\s*No Obj:\s*(?P<no_obj>{_NUM}),\s*Avg Recall:\s*(?P<recall>{_NUM}),\s*count:\s*(?P<count>\d+)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class IterationRecord:
    """One training iteration. ``avg_loss`` is darknet's running average as printed;
    ``hours_left`` only AlexeyAB prints (else ``nan``); region fields are ``nan`` when the
    iteration had no region line with objects."""

    iteration: int
    loss: float
    avg_loss: float
    rate: float
    seconds: float
    images: int
    hours_left: float = math.nan
    region_iou: float = math.nan
    region_class: float = math.nan
    region_obj: float = math.nan
    region_no_obj: float = math.nan
    region_recall: float = math.nan
    region_count: int = 0

    def to_row(self) -> dict[str, object]:
        """Dict for ``csv.DictWriter`` (field order of the dataclass)."""
        return asdict(self)


FIELDS: tuple[str, ...] = tuple(f.name for f in fields(IterationRecord))


class NaNLossError(UserError):
    """darknet reported a NaN/inf loss: training diverged."""


def _float(text: str) -> float:
    return float(text)  # Python accepts "nan", "-nan", "inf"


class LogParser:
    """Incremental parser: feed lines, get :class:`IterationRecord` on iteration lines.

    >>> p = LogParser()
    >>> p.feed("Region Avg IOU: 0.5, Class: 0.5, Obj: 0.2, No Obj: 0.01, Avg Recall: 0.5,  count: 2")
    >>> r = p.feed("12: 3.5, 4.0 avg, 0.001 rate, 1.5 seconds, 384 images")
    >>> (r.iteration, r.loss, r.avg_loss, r.region_iou, r.region_count)
    (12, 3.5, 4.0, 0.5, 2)
    """

    def __init__(self, source: str = "darknet output") -> None:
        self.source = source
        self._regions: list[tuple[float, float, float, float, float, int]] = []
        self.lines = 0

    def feed(self, line: str) -> IterationRecord | None:
        """Consume one line; return a record when it was an iteration line.

        Raises :class:`NaNLossError` when the loss is NaN or infinite.
        """
        self.lines += 1
        region = REGION_RE.search(line)
        if region:
            g = region.groupdict()
            self._regions.append(
                (
                    _float(g["iou"]),
                    _float(g["cls"]),
                    _float(g["obj"]),
                    _float(g["no_obj"]),
                    _float(g["recall"]),
                    int(g["count"]),
                )
            )
            return None
        match = ITERATION_RE.match(line)
        if not match:
            return None
        g = match.groupdict()
        loss = _float(g["loss"])
        iteration = int(g["iteration"])
        if not math.isfinite(loss):
            raise NaNLossError(
                f"{self.source}: line {self.lines}: loss is {g['loss']} at iteration {iteration}: "
                "training diverged (lower learning_rate or raise burn_in in the cfg)"
            )
        record = IterationRecord(
            iteration=iteration,
            loss=loss,
            avg_loss=_float(g["avg"]),
            rate=_float(g["rate"]),
            seconds=_float(g["seconds"]),
            images=int(g["images"]),
            hours_left=_float(g["hours_left"]) if g["hours_left"] else math.nan,
            **self._fold_regions(),
        )
        self._regions = []
        return record

    def _fold_regions(self) -> dict[str, float | int]:
        rows = self._regions
        counted = [r for r in rows if r[5] > 0 and all(math.isfinite(v) for v in r[:5])]
        no_obj = [r[3] for r in rows if math.isfinite(r[3])]
        total = sum(r[5] for r in counted)
        out: dict[str, float | int] = {
            "region_no_obj": sum(no_obj) / len(no_obj) if no_obj else math.nan,
            "region_count": sum(r[5] for r in rows),
        }
        for k, key in enumerate(("region_iou", "region_class", "region_obj")):
            out[key] = sum(r[k] * r[5] for r in counted) / total if total else math.nan
        out["region_recall"] = sum(r[4] * r[5] for r in counted) / total if total else math.nan
        return out


def parse_lines(lines: list[str] | tuple[str, ...], source: str = "darknet output") -> list[IterationRecord]:
    """Parse a whole log; see :class:`LogParser`."""
    parser = LogParser(source)
    records = []
    for line in lines:
        record = parser.feed(line)
        if record is not None:
            records.append(record)
    return records
