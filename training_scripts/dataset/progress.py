"""A small progress line for long loops: percent, rate and ETA on stderr, at most every few seconds.

Quick loops (done in under ``quiet_s``) print nothing, so tests and small datasets stay silent.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_progress(label: str, done: int, total: int, elapsed: float, unit: str) -> str:
    """One progress line.

    >>> format_progress("write", 50, 200, 10.0, "img")
    'write: 25% (50/200) 5.0 img/s ETA 30s'
    """
    percent = 100 * done // total if total else 100
    rate = done / elapsed if elapsed > 0 else 0.0
    eta = (total - done) / rate if rate > 0 else 0.0
    return f"{label}: {percent}% ({done}/{total}) {rate:.1f} {unit}/s ETA {eta:.0f}s"


class Progress:
    """Count steps of a loop and report on ``stream`` every ``every_s`` seconds once it runs long."""

    def __init__(
        self,
        total: int,
        label: str,
        unit: str = "it",
        stream: TextIO | None = None,
        every_s: float = 2.0,
        quiet_s: float = 2.0,
    ) -> None:
        self.total = total
        self.label = label
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.every_s = every_s
        self.quiet_s = quiet_s
        self.done = 0
        self.start = time.monotonic()
        self.last = self.start
        self.shown = False

    def update(self, steps: int = 1) -> None:
        """Advance by ``steps`` and print a line if it is time to."""
        self.done += steps
        now = time.monotonic()
        if now - self.start >= self.quiet_s and now - self.last >= self.every_s:
            self._show(now)

    def close(self) -> None:
        """Print the final line if any line was printed before."""
        if self.shown:
            self._show(time.monotonic())

    def _show(self, now: float) -> None:
        self.last = now
        self.shown = True
        line = format_progress(self.label, self.done, self.total, now - self.start, self.unit)
        print(line, file=self.stream, flush=True)
