"""Progress lines for long work: ``label: done/total (pct%)  rate unit/s  ETA 1m02s``.

The one progress reporter of the project (training, dataset writing and validation,
evaluation, the edge bench); standard library only, so the Pi package has it too. Printed
to stderr at most every ``interval`` seconds (and always for the last item), so logs in CI
stay short while an interactive user still sees movement; with ``quiet_s`` a loop that
finishes sooner prints nothing (small datasets and tests stay silent).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


def format_duration(seconds: float) -> str:
    """``3725`` → ``'1h02m05s'``; ``65`` → ``'1m05s'``; ``4.2`` → ``'4s'``.

    >>> [format_duration(s) for s in (4.2, 65, 3725)]
    ['4s', '1m05s', '1h02m05s']
    """
    if seconds != seconds or seconds == float("inf"):
        return "?"
    total = round(max(seconds, 0.0))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class Progress:
    """Rate and ETA for ``total`` items of work; call :meth:`update` with the count done.

    ``rate`` is items per second since the first update (or ``start``); ``extra`` lets the
    caller add text (e.g. the current loss).
    """

    def __init__(
        self,
        label: str,
        total: int,
        *,
        unit: str = "items",
        interval: float = 5.0,
        quiet_s: float = 0.0,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        start_done: int = 0,
    ) -> None:
        self.label = label
        self.total = max(int(total), 0)
        self.unit = unit
        self.interval = interval
        self.quiet_s = quiet_s
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.start_time = clock()
        self.start_done = start_done
        self.done = start_done
        self._last_print = -float("inf")
        self.shown = False

    def rate(self) -> float:
        """Items per second so far (0 before any progress)."""
        elapsed = self.clock() - self.start_time
        done = self.done - self.start_done
        return done / elapsed if elapsed > 0 and done > 0 else 0.0

    def eta(self) -> float:
        """Seconds left at the current rate (inf when unknown)."""
        r = self.rate()
        return (self.total - self.done) / r if r > 0 else float("inf")

    def line(self, extra: str = "") -> str:
        """The progress line for the current state."""
        pct = 100.0 * self.done / self.total if self.total else 100.0
        parts = [
            f"{self.label}: {self.done}/{self.total} ({pct:.1f}%)",
            f"{self.rate():.2f} {self.unit}/s",
            f"ETA {format_duration(self.eta())}",
        ]
        if extra:
            parts.append(extra)
        return "  ".join(parts)

    def update(self, done: int, extra: str = "", *, force: bool = False) -> None:
        """Record ``done`` items; print a line if ``interval`` passed, at the end, or ``force``
        (never within the first ``quiet_s`` seconds unless ``force``)."""
        self.done = done
        now = self.clock()
        if not force and now - self.start_time < self.quiet_s:
            return
        if force or done >= self.total or now - self._last_print >= self.interval:
            self._print(now, extra)

    def advance(self, steps: int = 1) -> None:
        """Count ``steps`` more items (for loops that do not know the running total)."""
        self.update(self.done + steps)

    def close(self) -> None:
        """Print the final line when a line was printed before and the last one was not final."""
        if self.shown and self.done < self.total:
            self._print(self.clock(), "")

    def _print(self, now: float, extra: str) -> None:
        self._last_print = now
        self.shown = True
        print(self.line(extra), file=self.stream, flush=True)
