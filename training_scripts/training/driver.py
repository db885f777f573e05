"""Run real darknet training in segments, with resume, a time limit and a metrics log.

darknet (pjreddie) saves ``<cfg>_N.weights`` only at N % 100 == 0 up to 1000 and every
10000 after, ``<cfg>.backup`` every 100, and ``<cfg>_final.weights`` when
``get_current_batch(net) >= max_batches`` (examples/detector.c ``train_detector``). The
iteration is ``seen / batch`` where ``seen`` is read from the weights header
(src/parser.c ``load_weights_upto``) and zeroed by ``-clear`` (src/network.c
``load_network``); the learning-rate schedule (``burn_in``, ``steps``, ``policy``) is a
function of that iteration (src/network.c ``get_current_rate``). AlexeyAB's fork behaves
the same way for these points.

So the driver runs darknet in *segments*: a copy of the cfg whose only change is
``max_batches = <segment end>``, started from the newest checkpoint; when darknet exits,
its ``_final.weights`` is renamed (atomically, same filesystem) to
``BACKUP/<name>_<segment end>.weights``. The learning-rate schedule is the one of the real
cfg because it depends on ``seen`` only; the cfg's own ``max_batches`` is where training
ends. This gives checkpoints at any cadence, resume after any stop, and a clean stop
before a time limit. What a segment boundary loses is darknet's in-memory SGD momentum
(it is not stored in ``.weights``; every darknet resume loses it too), so segments should
be much longer than ~10 iterations except in smoke tests.

Everything darknet needs is given as absolute paths, and its ``backup=`` points into a
private work directory inside BACKUP, so the run does not depend on the current directory.
"""

from __future__ import annotations

import math
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

from edge_image.contract.atomic import fsync_dir, fsync_file
from edge_image.contract.errors import UserError
from edge_image.contract.progress import Progress, format_duration
from training_scripts.darknet.cfg import Section, check_classes, net_section, parse_cfg, render_cfg
from training_scripts.darknet.weights import expected_size, header_size
from training_scripts.dataset.darknet_layout import read_list
from training_scripts.training.checkpoints import (
    checkpoint_name,
    checkpoint_path,
    damage,
    list_checkpoints,
    move_aside,
    read_ledger,
    record_checkpoint,
)
from training_scripts.training.data import DataConfig, load_data_config
from training_scripts.training.history import HistoryWriter, read_history, repair_history, truncate_history
from training_scripts.training.logparse import IterationRecord, LogParser, NaNLossError

METRICS_CSV = "metrics.csv"
LOSS_PNG = "loss.png"
DARKNET_LOG = "darknet.log"
LOCK_FILE = ".train.lock"
# Seconds darknet may take past the deadline to finish the segment it is in before it is
# stopped (the segment is then lost and the previous checkpoint is the result).
DEADLINE_GRACE_S = 5.0
# loss.png is redrawn after a segment when it is older than this (and always at the end).
LOSS_PNG_EVERY_S = 60.0
# Under a time limit the first segment is at most this long, to measure the speed before
# sizing the next segments to fit.
CALIBRATION_ITERATIONS = 10


class DarknetFailedError(UserError):
    """darknet itself failed (a crash, a signal, out of memory): possibly transient, so the exit code
    is 1, which the training unit restarts (``RestartPreventExitStatus=2`` stops restarts only for
    bad input and NaN loss, which would fail the same way again)."""

    exit_code = 1


@dataclass(frozen=True)
class TrainResult:
    """What a :func:`train` call left in the backup directory."""

    backup: Path
    name: str
    checkpoints: list[tuple[int, Path]]
    last_iteration: int
    max_batches: int
    stopped: str  # "complete" | "time limit"
    metrics_csv: Path
    loss_png: Path | None


@dataclass
class TrainOptions:
    """Inputs of :func:`train` (the ``train`` command's flags)."""

    data: Path
    cfg: Path
    init_weights: Path | None
    backup: Path
    darknet: Path
    max_minutes: float | None = None
    segment: int = 1000
    gpus: str | None = None
    flavor: str = "auto"  # "auto" | "pjreddie" | "alexeyab"
    progress_interval: float = 5.0
    grace_s: float = DEADLINE_GRACE_S
    stream: TextIO = field(default_factory=lambda: sys.stderr)


def detect_flavor(darknet: Path) -> str:
    """``"alexeyab"`` when the binary knows ``-dont_show`` (only AlexeyAB's fork has it), else pjreddie."""
    try:
        blob = darknet.read_bytes()
    except OSError as exc:
        raise UserError(f"{darknet}: cannot read darknet binary ({exc.strerror})") from None
    return "alexeyab" if b"-dont_show" in blob else "pjreddie"


# `make darknet` builds the patched CPU darknet here (Debian's /usr/bin/darknet cannot learn
# YOLOv2 on the CPU, see README), so it comes before PATH.
REPO_DARKNET = Path(__file__).resolve().parents[2] / ".cache" / "darknet" / "darknet"


def resolve_darknet(darknet: str | os.PathLike[str] | None) -> Path:
    """The darknet binary: ``darknet`` if given, else ``$DARKNET_BIN``, else the one
    ``make darknet`` built (``.cache/darknet/darknet``), else ``darknet`` on PATH."""
    candidate = (
        str(darknet)
        if darknet
        else os.environ.get("DARKNET_BIN")
        or (str(REPO_DARKNET) if REPO_DARKNET.is_file() else None)
        or shutil.which("darknet")
    )
    if not candidate:
        raise UserError(
            "no darknet binary: pass --darknet BIN or set DARKNET_BIN (`make darknet` builds one)"
        )
    path = Path(candidate)
    if not path.is_file() or not os.access(path, os.X_OK):
        found = shutil.which(candidate)
        if not found:
            raise UserError(f"{candidate}: darknet binary not found or not executable")
        path = Path(found)
    return path.resolve()


def _cfg_numbers(sections: list[Section]) -> tuple[int, int]:
    """``(max_batches, images per iteration)`` from ``[net]``."""
    net = net_section(sections)
    max_batches = net.get_int("max_batches", 0)
    batch = net.get_int("batch", 1)
    subdivisions = net.get_int("subdivisions", 1)
    if max_batches < 1:
        raise UserError(f"{net.where}: [net] needs max_batches >= 1 to train")
    if batch < 1 or subdivisions < 1 or batch % subdivisions:
        raise UserError(
            f"{net.where}: [net] batch={batch} must be a positive multiple of subdivisions={subdivisions}"
        )
    return max_batches, batch


def segment_cfg_text(sections: list[Section], end: int) -> str:
    """The cfg text with ``[net] max_batches`` set to ``end`` (nothing else changes)."""
    copy = [replace(s, options=dict(s.options)) for s in sections]
    copy[0].options["max_batches"] = str(end)
    return render_cfg(copy)


def _check_checkpoint(path: Path, sections: list[Section]) -> None:
    """A resume checkpoint must have exactly the size the cfg implies (20-byte header)."""
    size = path.stat().st_size
    expected = expected_size(sections)
    if size != expected:
        raise UserError(
            f"{path}: {size} bytes, but {sections[0].source} needs {expected} "
            f"({header_size(0, 2)}-byte header): a checkpoint of another cfg? use another --backup"
        )


def _check_train_list(data: DataConfig) -> int:
    """Number of training images; errors when the list is empty or its first image is missing."""
    images = read_list(data.train_list)
    if not images:
        raise UserError(f"{data.train_list}: no training images")
    first = images[0] if images[0].is_absolute() else data.root / images[0]
    if not first.is_file():
        raise UserError(f"{data.train_list}:1: image {images[0]} not found")
    return len(images)


class _DarknetProcess:
    """A darknet child process whose merged stdout/stderr is read line by line in a thread."""

    def __init__(self, cmd: list[str], cwd: Path, log: TextIO) -> None:
        stdbuf = shutil.which("stdbuf")
        # darknet printf()s to a pipe: without line buffering its lines arrive in 4 KiB bursts
        full = [stdbuf, "-oL", "-eL", *cmd] if stdbuf else cmd
        self.log = log
        self.proc = subprocess.Popen(
            full,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            start_new_session=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.tail: list[str] = []
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def read(self, timeout: float) -> Iterator[str]:
        """Lines as they come; returns after ``timeout`` seconds without a line or at EOF."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                return
            if line is None:
                self.lines.put(None)
                return
            self.log.write(line + "\n")
            self.tail = [*self.tail[-19:], line]
            yield line

    @property
    def finished(self) -> bool:
        return self.proc.poll() is not None and not self._thread.is_alive() and self._drained()

    def _drained(self) -> bool:
        try:
            head = self.lines.get_nowait()
        except queue.Empty:
            return True
        self.lines.put(head)
        return head is None

    def stop(self) -> None:
        """Terminate darknet (and anything it started), then kill it if it lingers."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._thread.join(timeout=5)


@dataclass
class _Timing:
    """Running estimates used to size segments under a time limit."""

    per_iteration: float | None = None
    overhead: float | None = None

    def observe(self, per_iteration: float, overhead: float) -> None:
        """Fold in one segment: seconds per iteration and the rest of its wall time (start-up,
        saving, drawing ``loss.png``)."""
        if self.per_iteration is None:
            self.per_iteration, self.overhead = per_iteration, overhead
        else:
            self.per_iteration = 0.5 * self.per_iteration + 0.5 * per_iteration
            self.overhead = 0.5 * (self.overhead or 0.0) + 0.5 * overhead

    def iterations_within(self, seconds: float) -> int | None:
        """Iterations that fit in ``seconds`` with a 10% margin (None before any measurement)."""
        if self.per_iteration is None:
            return None
        usable = 0.9 * seconds - (self.overhead or 0.0)
        return max(int(usable // max(self.per_iteration, 1e-6)), 0)


def _segment_end(current: int, segment: int, max_batches: int) -> int:
    """End of the segment starting at ``current``: the next multiple of ``segment`` (capped).

    >>> _segment_end(0, 10, 25), _segment_end(10, 10, 25), _segment_end(20, 10, 25), _segment_end(13, 10, 25)
    (10, 20, 25, 20)
    """
    return min(max_batches, (current // segment + 1) * segment)


@dataclass
class _SegmentResult:
    checkpoint: Path | None  # None: stopped at the time limit before the segment's end
    records: list[IterationRecord]
    per_iteration: float  # measured between iteration lines (nan without two of them)


class _Trainer:
    """State of one :func:`train` call: the metrics writer, progress, running average."""

    def __init__(self, options: TrainOptions, clock: Callable[[], float]) -> None:
        self.options = options
        self.clock = clock
        self.start = clock()
        self.deadline = self.start + 60.0 * options.max_minutes if options.max_minutes else None
        if options.segment < 1:
            raise UserError(f"--segment must be >= 1, got {options.segment}")
        self.data = load_data_config(options.data)
        cfg_path = Path(options.cfg).resolve()
        self.sections = parse_cfg(cfg_path)
        check_classes(self.sections, self.data.names, names_source=str(self.data.names_file))
        self.max_batches, self.batch = _cfg_numbers(self.sections)
        self.n_train = _check_train_list(self.data)
        self.darknet = resolve_darknet(options.darknet)
        self.flavor = detect_flavor(self.darknet) if options.flavor == "auto" else options.flavor
        self.name = checkpoint_name(cfg_path)
        self.backup = Path(options.backup).resolve()
        self.backup.mkdir(parents=True, exist_ok=True)
        self.metrics_csv = self.backup / METRICS_CSV
        self.out = options.stream
        self.avg_loss = -1.0
        self.timing = _Timing()
        self.drawn_at = self.clock()

    def say(self, text: str) -> None:
        print(f"train: {text}", file=self.out, flush=True)

    def run(self) -> TrainResult:
        """Train under an exclusive lock on the backup directory (one trainer per directory)."""
        import fcntl

        with (self.backup / LOCK_FILE).open("a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UserError(
                    f"{self.backup}: another `train` is running on this backup directory"
                ) from None
            for stale in self.backup.glob(".darknet-work.*"):  # left by a killed run
                shutil.rmtree(stale, ignore_errors=True)
            return self._run()

    def _run(self) -> TrainResult:
        weights: Path | None
        resume = self._resume_point()
        if resume is not None:
            current, weights = resume
            clear = False
            self.say(f"resuming from {weights.name} (iteration {current})")
        else:
            current, weights, clear = 0, self.options.init_weights, True
            if weights is not None and not Path(weights).is_file():
                raise UserError(
                    f"{weights}: initial weights not found (use --weights none to start from scratch)"
                )
            self.say(f"starting from {Path(weights).name if weights else 'random initialization'}")
        repaired = repair_history(self.metrics_csv)
        if repaired:
            self.say(f"warning: {repaired}")
        kept = truncate_history(self.metrics_csv, current)
        self.avg_loss = kept[-1].avg_loss if kept else -1.0
        self.writer = HistoryWriter(self.metrics_csv, last_iteration=kept[-1].iteration if kept else 0)
        self.say(
            f"{self.name}: iterations {current} -> {self.max_batches}, batch {self.batch}, "
            f"{self.n_train} training images, darknet {self.darknet} ({self.flavor}), "
            f"segments of {self.options.segment}"
        )
        self.progress = Progress(
            "train",
            self.max_batches,
            unit="it",
            interval=self.options.progress_interval,
            stream=self.out,
            clock=self.clock,
            start_done=current,
        )
        stopped = "complete"
        self.work = Path(tempfile.mkdtemp(prefix=".darknet-work.", dir=self.backup))
        try:
            with (self.backup / DARKNET_LOG).open("a", encoding="utf-8") as log:
                while current < self.max_batches:
                    end = self._next_end(current)
                    if end is None:
                        stopped = "time limit"
                        break
                    began = self.clock()
                    seg = self._segment(log, weights, clear, current, end)
                    if seg.checkpoint is None:
                        stopped = "time limit"
                        break
                    current, weights, clear = end, seg.checkpoint, False
                    self.progress.update(current, f"saved {seg.checkpoint.name}", force=True)
                    if self.clock() - self.drawn_at >= LOSS_PNG_EVERY_S:
                        _draw_loss(self.metrics_csv, self.backup / LOSS_PNG, self.max_batches)
                        self.drawn_at = self.clock()
                    if seg.records and not math.isnan(seg.per_iteration):
                        wall = self.clock() - began
                        n = len(seg.records)
                        self.timing.observe(seg.per_iteration, max(wall - n * seg.per_iteration, 0.0))
        finally:
            shutil.rmtree(self.work, ignore_errors=True)
        loss_png = _draw_loss(self.metrics_csv, self.backup / LOSS_PNG, self.max_batches)
        final = list_checkpoints(self.backup, self.name)
        elapsed = format_duration(self.clock() - self.start)
        newest = final[-1][1].name if final else "no checkpoint yet"
        if stopped == "time limit" and not final:
            raise UserError(
                f"--max-minutes {self.options.max_minutes:g}: the time limit passed after {elapsed}, before "
                f"the first checkpoint (the first segment ends at iteration "
                f"{min(CALIBRATION_ITERATIONS, self.max_batches)}); nothing usable was written: "
                "raise --max-minutes"
            )
        if stopped == "time limit":
            self.say(f"stopped at the time limit after {elapsed}; newest checkpoint: {newest}")
        else:
            self.say(f"done in {elapsed}; newest checkpoint: {newest}")
        return TrainResult(
            backup=self.backup,
            name=self.name,
            checkpoints=final,
            last_iteration=final[-1][0] if final else 0,
            max_batches=self.max_batches,
            stopped=stopped,
            metrics_csv=self.metrics_csv,
            loss_png=loss_png,
        )

    def _resume_point(self) -> tuple[int, Path] | None:
        """The newest intact checkpoint ``(iteration, path)``, or None to start afresh.

        Checkpoints a crash damaged after the driver wrote them (their bytes no longer match
        ``checkpoints.sha256``) are moved to ``damaged/`` with a warning and the next newest
        is tried. An intact checkpoint whose size does not fit the cfg is the user's mistake
        (another cfg's weights): :class:`UserError`, as before.
        """
        ledger = read_ledger(self.backup)
        expected = expected_size(self.sections)
        for iteration, path in reversed(list_checkpoints(self.backup, self.name)):
            problem = damage(path, ledger.get(path.name), expected)
            if problem is None:
                _check_checkpoint(path, self.sections)
                return iteration, path
            moved = move_aside(self.backup, path)
            self.say(f"warning: {path.name}: {problem}; moved to {moved.relative_to(self.backup)}")
        return None

    def _next_end(self, current: int) -> int | None:
        """End of the next segment, shortened to fit the time limit; None when nothing fits."""
        end = _segment_end(current, self.options.segment, self.max_batches)
        if self.deadline is None:
            return end
        remaining = self.deadline - self.clock()
        if remaining <= 0:
            return None
        fit = self.timing.iterations_within(remaining)
        if fit is None:
            return min(end, current + CALIBRATION_ITERATIONS)
        # a segment much shorter than the calibration one is mostly start-up: stop instead
        return min(end, current + fit) if fit >= min(CALIBRATION_ITERATIONS, end - current) else None

    def _command(self, weights: Path | None, clear: bool, end: int) -> list[str]:
        seg_cfg = self.work / f"{self.name}.cfg"  # darknet names its outputs after the cfg file
        seg_cfg.write_text(segment_cfg_text(self.sections, end), encoding="utf-8")
        seg_data = self.work / "obj.data"
        seg_data.write_text(_data_text(self.data, self.work), encoding="utf-8")
        cmd = [str(self.darknet), "detector", "train", str(seg_data), str(seg_cfg)]
        if weights is not None:
            cmd.append(str(Path(weights).resolve()))
        if clear:
            cmd.append("-clear")  # start the schedule at iteration 0 whatever 'seen' the init weights carry
        if self.options.gpus:
            cmd += ["-gpus", self.options.gpus]
        if self.flavor == "alexeyab":
            cmd.append("-dont_show")
        return cmd

    def _segment(
        self, log: TextIO, weights: Path | None, clear: bool, current: int, end: int
    ) -> _SegmentResult:
        """Run darknet from ``current`` to ``end``; rename its final weights to a checkpoint."""
        for stale in self.work.glob("*.weights"):
            stale.unlink()
        cmd = self._command(weights, clear, end)
        log.write(f"### segment {current} -> {end}: {' '.join(cmd)}\n")
        log.flush()
        first_at: float | None = None
        records: list[IterationRecord] = []
        parser = LogParser("darknet output")
        proc = _DarknetProcess(cmd, self.data.root, log)
        try:
            while not proc.finished:
                for line in proc.read(timeout=0.5):
                    record = parser.feed(line)
                    if record is None:
                        continue
                    first_at = first_at if first_at is not None else self.clock()
                    records.append(self._record(record))
                if self._past_deadline() and proc.proc.poll() is None:
                    proc.stop()
                    log.write(f"### segment {current} -> {end} stopped at the time limit\n")
                    truncate_history(self.metrics_csv, current)
                    self.writer.last_iteration = current
                    return _SegmentResult(None, records, _per_iteration(records, first_at, self.clock()))
        except NaNLossError as exc:
            proc.stop()
            log.write(f"### {exc}\n")
            newest = list_checkpoints(self.backup, self.name)
            keep = f"; newest good checkpoint: {newest[-1][1]}" if newest else ""
            raise NaNLossError(f"{exc}{keep}") from None
        except BaseException:
            proc.stop()
            raise
        proc.stop()
        return self._finish(proc, records, current, end, first_at)

    def _record(self, record: IterationRecord) -> IterationRecord:
        """Continue darknet's running average across launches, log and report the record."""
        # darknet's "avg" restarts at every launch (avg_loss = -1 in train_detector)
        loss = record.loss
        self.avg_loss = loss if self.avg_loss < 0 else 0.9 * self.avg_loss + 0.1 * loss
        record = replace(record, avg_loss=self.avg_loss)
        self.writer.append(record)
        self.progress.update(
            record.iteration,
            f"{self.progress.rate() * self.batch:.1f} img/s  loss {loss:.3f}  avg {self.avg_loss:.3f}  "
            f"lr {record.rate:g}",
        )
        return record

    def _past_deadline(self) -> bool:
        return self.deadline is not None and self.clock() > self.deadline + self.options.grace_s

    def _finish(
        self,
        proc: _DarknetProcess,
        records: list[IterationRecord],
        current: int,
        end: int,
        first_at: float | None,
    ) -> _SegmentResult:
        code = proc.proc.returncode
        final = self.work / f"{self.name}_final.weights"
        tail = " | ".join(line.strip() for line in proc.tail[-4:] if line.strip())
        # pjreddie's file_error() exits 0, so a missing final file is the real failure signal
        if code != 0 or not final.is_file():
            raise DarknetFailedError(
                f"darknet training failed (exit code {code}, no {final.name}); its last output: {tail}"
            )
        if not records:
            raise UserError(
                f"darknet ran no iteration from {current} to {end}: the start weights' 'seen' counter "
                f"says a later iteration (a checkpoint of another run?); its last output: {tail}"
            )
        if records[-1].iteration != end:
            raise UserError(
                f"darknet stopped at iteration {records[-1].iteration}, expected {end}; last output: {tail}"
            )
        target = checkpoint_path(self.backup, self.name, end)
        # data on disk, then its checksum in the ledger, then the rename (and the directory's
        # entry on disk): whatever a power cut interrupts, a checkpoint under its final name is
        # either complete or recognisably damaged (see checkpoints.damage)
        fsync_file(final)
        record_checkpoint(self.backup, final, target.name)
        os.replace(final, target)
        fsync_dir(self.backup)
        return _SegmentResult(target, records, _per_iteration(records, first_at, self.clock()))


def train(options: TrainOptions, *, clock: Callable[[], float] = time.monotonic) -> TrainResult:
    """Train until the cfg's ``max_batches`` or the time limit; see the module docstring.

    Raises :class:`UserError` for bad inputs, a darknet failure (with the tail of its output)
    or a NaN loss (:class:`NaNLossError`; the newest good checkpoint is kept).
    """
    return _Trainer(options, clock).run()


def _data_text(data: DataConfig, work: Path) -> str:
    """A private ``obj.data``: absolute paths, ``backup`` in the work directory."""
    lines = [f"classes={len(data.names)}", f"train={data.train_list}", f"names={data.names_file}"]
    if data.valid_list is not None:
        lines.append(f"valid={data.valid_list}")
    lines.append(f"backup={work}")
    return "\n".join(lines) + "\n"


def _per_iteration(records: list[IterationRecord], first_at: float | None, now: float) -> float:
    """Wall seconds per iteration between the first and the last iteration line (nan if < 2)."""
    if len(records) < 2 or first_at is None:
        return math.nan
    return max((now - first_at) / (len(records) - 1), 1e-6)


def _draw_loss(metrics_csv: Path, out: Path, max_batches: int) -> Path | None:
    """Draw ``loss.png`` from ``metrics.csv`` (None when there is nothing to draw)."""
    from training_scripts.training.plots import plot_loss

    records = read_history(metrics_csv)
    if not records:
        return None
    return plot_loss(records, out, max_batches=max_batches)
