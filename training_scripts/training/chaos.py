"""Fault injection for the training driver: crash ``train`` on purpose, resume, count the loss.

Each trial starts ``python -m training_scripts train`` on one backup directory, waits, and
crashes it, then the next trial's start is the resume under test:

- ``sigkill`` trials kill the driver and darknet with SIGKILL once training is a random
  number of iterations (1 to 1.5 checkpoint intervals) past where it resumed, plus a random
  0-0.3 s so the kill lands anywhere in an iteration, a segment start or a checkpoint save;
- ``power`` trials simulate a power cut while a checkpoint was being written: SIGKILL the
  moment a new checkpoint appears, then damage what a cut leaves unwritten: the newest
  checkpoint is truncated or its tail zero-filled (as a file system that had not flushed it
  leaves it), and the last ``metrics.csv`` row is torn (cut short, or NUL-filled).

A trial *resumed* when the next start trained on, without an error, from the newest intact
checkpoint the crash left (for a power cut: the one before the damaged checkpoint). Its *lost
iterations* are the iterations it had reached (the last ``metrics.csv`` row before the damage)
minus the iteration the next start resumed from; every trial must lose at most one checkpoint
interval. After the last trial a clean run finishes the training, and its final checkpoint's
mAP@0.5 on the validation list is compared with an uninterrupted run of the same cfg
(``final_map_ok``: not lower by more than ``map_tolerance``, since darknet seeds its data
augmentation from the clock and two clean runs already differ).

Inputs: :class:`ChaosOptions`. Output: :class:`ChaosResult`, whose :meth:`ChaosResult.line`
is the one-line summary ``make chaos`` prints.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from edge_image.contract.errors import UserError
from training_scripts.darknet.cfg import net_section, parse_cfg
from training_scripts.training.checkpoints import checkpoint_name, list_checkpoints
from training_scripts.training.driver import METRICS_CSV

_RESUMING = re.compile(r"train: resuming from \S+ \(iteration (\d+)\)")
_STARTING = "train: starting from"
POLL_S = 0.02


@dataclass(frozen=True)
class ChaosOptions:
    """Inputs of :func:`run_chaos`.

    ``data``/``cfg``/``darknet``: as for ``train`` (from scratch, no initial weights);
    ``backup``: a new directory for the crashed run; ``segment``: the checkpoint interval;
    ``power_every``: every that many trials is a ``power`` trial (the others ``sigkill``);
    ``reference_map``: the uninterrupted run's mAP (None: :func:`run_chaos` trains one in
    ``<backup>-reference`` beside ``backup``), measured on the data set's ``map_list``
    (``valid``; a short run on a tiny data set may pass ``train`` for a larger list).
    """

    data: Path
    cfg: Path
    backup: Path
    darknet: Path
    trials: int = 10
    segment: int = 30
    power_every: int = 3
    seed: int = 0
    reference_map: float | None = None
    map_tolerance: float = 0.1
    map_list: str = "valid"
    trial_timeout_s: float = 300.0
    log: Callable[[str], None] = field(default=lambda text: print(f"chaos: {text}", flush=True))


@dataclass
class Trial:
    """One crash: what kind, where the run had resumed from, how far it got, what was damaged."""

    index: int
    kind: str  # "sigkill" | "power"
    started_at: int
    reached: int = 0
    damage: str = ""
    expected: int = 0  # the newest intact checkpoint the crash left (0: none)
    resumed_to: int | None = None  # where the next start resumed (None: it did not start)

    @property
    def lost(self) -> int:
        """Iterations trained before the crash that the resume had to train again."""
        return self.reached - (self.resumed_to or 0)


@dataclass(frozen=True)
class ChaosResult:
    """What :func:`run_chaos` measured."""

    trials: list[Trial]
    checkpoint_interval: int
    max_batches: int
    final_map: float
    reference_map: float
    map_tolerance: float
    metrics_complete: bool

    @property
    def resumed(self) -> int:
        """Trials after which training resumed from the newest intact checkpoint."""
        return sum(1 for t in self.trials if t.resumed_to == t.expected)

    @property
    def max_lost(self) -> int:
        return max((t.lost for t in self.trials), default=0)

    @property
    def final_map_ok(self) -> bool:
        return self.final_map >= self.reference_map - self.map_tolerance

    @property
    def ok(self) -> bool:
        """Every trial resumed, none lost more than an interval, and the result is as good."""
        return (
            self.resumed == len(self.trials)
            and self.max_lost <= self.checkpoint_interval
            and self.final_map_ok
            and self.metrics_complete
        )

    def line(self) -> str:
        """The summary line of the issue's acceptance list."""
        return (
            f"chaos: trials={len(self.trials)} resumed={self.resumed} max_lost_iterations={self.max_lost} "
            f"checkpoint_interval={self.checkpoint_interval} final_map_ok={self.final_map_ok}"
        )


def _descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (read from ``/proc``; darknet runs in its own session)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill_all(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``proc`` and everything under it at once, as a power cut would stop them."""
    for pid in [*_descendants(proc.pid), proc.pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()


def last_row_iteration(metrics_csv: Path) -> int:
    """The iteration of the last complete row of ``metrics_csv`` (0 when there is none)."""
    try:
        data = metrics_csv.read_bytes().rstrip(b"\0")
    except FileNotFoundError:
        return 0
    lines = data.split(b"\n")[:-1]  # the part after the last newline is not a complete row
    for line in reversed(lines):
        head = line.split(b",", 1)[0]
        if head.isdigit():
            return int(head)
    return 0


def _damage_checkpoint(path: Path, rng: random.Random) -> str:
    """Truncate ``path`` or zero its tail (what a cut leaves of an unflushed file)."""
    size = path.stat().st_size
    if rng.random() < 0.5:
        keep = rng.randint(size // 10, size - 1)
        os.truncate(path, keep)
        return f"{path.name} truncated to {keep} of {size} bytes"
    start = rng.randint(size // 10, size - 4096)
    with path.open("r+b") as handle:
        handle.seek(start)
        handle.write(bytes(size - start))
    return f"{path.name} zero-filled from byte {start} of {size}"


def _tear_metrics(path: Path, rng: random.Random) -> str:
    """Cut the last row of ``path`` short, and sometimes append NUL bytes after it."""
    data = path.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    row = len(data) - last
    cut = last + rng.randint(1, max(row - 2, 1))
    nuls = rng.choice((0, 512))
    path.write_bytes(data[:cut] + bytes(nuls))
    tail = f" + {nuls} NUL bytes" if nuls else ""
    return f"metrics.csv last row cut to {cut - last} of {row} bytes{tail}"


class _Run:
    """One ``train`` child: output to ``log``, the resume point it announced."""

    def __init__(self, options: ChaosOptions, backup: Path, log: Path) -> None:
        cmd = [
            sys.executable,
            "-m",
            "training_scripts",
            "train",
            "--data",
            str(options.data),
            "--cfg",
            str(options.cfg),
            "--weights",
            "none",
            "--backup",
            str(backup),
            "--darknet",
            str(options.darknet),
            "--segment",
            str(options.segment),
            "--progress-every",
            "60",
        ]
        self.log = log
        self.offset = log.stat().st_size if log.exists() else 0
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=Path(__file__).resolve().parents[2],
            )

    def output(self) -> str:
        with self.log.open("rb") as handle:
            handle.seek(self.offset)
            return handle.read().decode("utf-8", errors="replace")

    def resumed_from(self) -> int | None:
        """The iteration the run announced it resumes from (0 when it started afresh), if yet."""
        text = self.output()
        match = _RESUMING.search(text)
        if match:
            return int(match[1])
        return 0 if _STARTING in text else None

    def failure(self) -> str:
        lines = [line for line in self.output().splitlines() if line.strip()]
        return f"train exited {self.proc.returncode}: {lines[-1] if lines else '(no output)'}"


def _wait(run: _Run, until: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not until():
        if run.proc.poll() is not None:
            raise UserError(f"chaos: {what}: {run.failure()}")
        if time.monotonic() > deadline:
            _kill_all(run.proc)
            raise UserError(f"chaos: {what}: nothing after {timeout_s:.0f} s; see {run.log}")
        time.sleep(POLL_S)


def _train_clean(options: ChaosOptions, backup: Path, log: Path, what: str) -> int:
    """Run ``train`` to completion in ``backup``; returns the iteration it resumed from."""
    run = _Run(options, backup, log)
    run.proc.wait()
    if run.proc.returncode != 0:
        raise UserError(f"chaos: {what}: {run.failure()}")
    resumed = run.resumed_from()
    return resumed or 0


def _announced(run: _Run) -> bool:
    return run.resumed_from() is not None


def _row_reached(metrics: Path, iteration: int) -> bool:
    return last_row_iteration(metrics) >= iteration


def _checkpoint_after(backup: Path, name: str, iteration: int) -> bool:
    found = list_checkpoints(backup, name)
    return bool(found) and found[-1][0] > iteration


def _map(options: ChaosOptions, backup: Path) -> float:
    from training_scripts.evaluation.evaluate import evaluate

    newest = list_checkpoints(backup, checkpoint_name(options.cfg))[-1][1]
    run = evaluate(options.data, options.cfg, newest, options.map_list)
    assert run.evaluation is not None
    return run.evaluation.map


def run_chaos(options: ChaosOptions) -> ChaosResult:
    """Run the trials, finish the training, compare its mAP (see the module doc)."""
    from training_scripts.training.history import read_history

    rng = random.Random(options.seed)
    sections = parse_cfg(options.cfg)
    max_batches = net_section(sections).get_int("max_batches", 0)
    name = checkpoint_name(options.cfg)
    backup = options.backup
    if backup.exists() and any(backup.iterdir()):
        raise UserError(f"{backup}: not empty (chaos starts from scratch)")
    backup.mkdir(parents=True, exist_ok=True)
    log = backup.parent / f"{backup.name}.log"
    log.write_bytes(b"")
    metrics = backup / METRICS_CSV
    trials: list[Trial] = []
    started_at = 0
    for index in range(options.trials):
        kind = "power" if index % options.power_every == options.power_every - 1 else "sigkill"
        if started_at + options.segment * 3 // 2 >= max_batches:
            raise UserError(
                f"{options.cfg}: max_batches={max_batches} leaves no room for trial {index + 1} "
                f"(training is at {started_at}): raise it"
            )
        run = _Run(options, backup, log)
        _wait(
            run, lambda run=run: run.resumed_from() is not None, options.trial_timeout_s, f"trial {index + 1}"
        )
        resumed = run.resumed_from()
        assert resumed is not None
        if trials:
            trials[-1].resumed_to = resumed
        started_at = resumed
        trial = Trial(index + 1, kind, started_at)
        if kind == "sigkill":
            target = started_at + rng.randint(1, max(options.segment * 3 // 2, 1))
            _wait(run, partial(_row_reached, metrics, target), options.trial_timeout_s, f"trial {index + 1}")
            time.sleep(rng.uniform(0.0, 0.3))
            _kill_all(run.proc)
            trial.reached = last_row_iteration(metrics)
            newest = list_checkpoints(backup, name)
            newest_at = trial.expected = newest[-1][0] if newest else 0
            trial.damage = f"SIGKILL at iteration {trial.reached} (newest checkpoint {newest_at})"
        else:
            after = partial(_checkpoint_after, backup, name, started_at)
            _wait(run, after, options.trial_timeout_s, f"trial {index + 1}")
            _kill_all(run.proc)
            trial.reached = last_row_iteration(metrics)
            *older, (_, newest_path) = list_checkpoints(backup, name)
            trial.expected = older[-1][0] if older else 0
            trial.damage = f"power cut: {_damage_checkpoint(newest_path, rng)}; {_tear_metrics(metrics, rng)}"
        trials.append(trial)
        options.log(f"trial {trial.index}/{options.trials} {kind}: from {started_at}, {trial.damage}")
    trials[-1].resumed_to = _train_clean(options, backup, log, "final run") if trials else None
    for trial in trials:
        options.log(
            f"trial {trial.index}: resumed at {trial.resumed_to} "
            f"(newest intact checkpoint {trial.expected}), lost {trial.lost} iterations"
        )
    rows = [r.iteration for r in read_history(metrics)]
    complete = rows == list(range(1, max_batches + 1))
    if not complete:
        options.log(f"metrics.csv holds iterations {rows[:3]}...{rows[-3:]}, not 1..{max_batches} once each")
    final_map = _map(options, backup)
    reference_map = options.reference_map
    if reference_map is None:
        reference = backup.parent / f"{backup.name}-reference"
        options.log(f"training an uninterrupted reference run in {reference}")
        _train_clean(options, reference, backup.parent / f"{reference.name}.log", "reference run")
        reference_map = _map(options, reference)
    options.log(
        f"final mAP@0.5 {final_map:.4f} (uninterrupted run {reference_map:.4f}, "
        f"tolerance {options.map_tolerance})"
    )
    return ChaosResult(
        trials=trials,
        checkpoint_interval=options.segment,
        max_batches=max_batches,
        final_map=final_map,
        reference_map=reference_map,
        map_tolerance=options.map_tolerance,
        metrics_complete=complete,
    )
