"""``train-status``: where a training run of the train role stands.

Input: a run directory made by the role (``run.json``, and as training goes ``metrics.csv``
written by ``python -m training_scripts train``, checkpoints ``*.weights``, ``loss.png``,
``train.done`` when finished). Output: a few lines for people, or with ``--json`` one JSON
object ``{"state", "iteration", "max_batches", "percent", "loss", "avg_loss",
"seconds_per_iteration", "eta_seconds", "loss_png", "checkpoints", ...}`` for the play's
wait loop. ``state`` is ``complete``, ``failed`` (the systemd unit failed), ``running``,
``pending`` (nothing trained yet) or ``stopped``.

It runs on the training host, next to the run; the role installs ``train-status`` there as
``python -m training_scripts train-status``, so the cfg and ``metrics.csv`` are read by the
same code that training uses.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import time
from pathlib import Path

from edge_image.contract.errors import UserError, read_json
from edge_image.contract.progress import format_duration
from training_scripts.darknet.cfg import net_section, parse_cfg
from training_scripts.training.history import read_history
from training_scripts.training.logparse import IterationRecord

RECENT_ROWS = 20  # iterations averaged for the speed estimate
FRESH_SECONDS = 900  # metrics written this recently mean a foreground run is still going


def cfg_max_batches(cfg: Path) -> int | None:
    """``max_batches`` of the cfg's ``[net]`` section, or None when absent or unreadable.

    The cfg is read by :func:`~training_scripts.darknet.cfg.parse_cfg`, as training reads it;
    a status report never fails on it, so its errors become None.
    """
    try:
        value = net_section(parse_cfg(cfg)).get_int("max_batches", 0)
    except (OSError, UserError):
        return None
    return value or None


def read_metrics(path: Path) -> list[IterationRecord]:
    """Rows of ``metrics.csv`` (empty when it does not exist yet); a last row being written
    while we read (or torn by a crash) is left out, as the next training start drops it."""
    return read_history(path, skip_torn_last=True)


def unit_state(unit: str) -> str | None:
    """``systemctl is-active`` of the unit, or None without a unit or systemd."""
    if not unit or shutil.which("systemctl") is None:
        return None
    result = subprocess.run(
        ["systemctl", "is-active", unit], capture_output=True, text=True, check=False, timeout=30
    )
    return result.stdout.strip() or None


def run_status(run_dir: Path, now: float | None = None) -> dict[str, object]:
    """Everything known about the run in ``run_dir`` (see the module docstring)."""
    now = time.time() if now is None else now
    info = read_json(run_dir / "run.json")
    if not isinstance(info, dict):
        raise UserError(f"{run_dir / 'run.json'}: not a JSON object")
    metrics = run_dir / "metrics.csv"
    rows = read_metrics(metrics)
    total = cfg_max_batches(Path(info["cfg"]))
    last = rows[-1] if rows else None
    iteration = last.iteration if last else 0
    recent = [r.seconds for r in rows[-RECENT_ROWS:] if math.isfinite(r.seconds) and r.seconds >= 0]
    per_iteration = sum(recent) / len(recent) if recent else None
    eta = (
        max(0, total - iteration) * per_iteration if total is not None and per_iteration is not None else None
    )
    unit = str(info.get("unit") or "")
    active = unit_state(unit)
    if (run_dir / "train.done").exists():
        state = "complete"
    elif active == "failed":
        state = "failed"
    elif active in ("active", "activating", "reloading"):
        state = "running"
    elif not rows:
        state = "pending"
    elif not unit and now - metrics.stat().st_mtime < FRESH_SECONDS:
        state = "running"
    else:
        state = "stopped"
    loss_png = run_dir / "loss.png"
    return {
        "run": info.get("run"),
        "state": state,
        "unit": unit or None,
        "unit_state": active,
        "iteration": iteration,
        "max_batches": total,
        "percent": round(100.0 * iteration / total, 1) if total else None,
        "loss": last.loss if last else None,
        "avg_loss": last.avg_loss if last else None,
        "seconds_per_iteration": per_iteration,
        "eta_seconds": 0.0 if state == "complete" else eta,
        "checkpoints": sorted(p.name for p in run_dir.glob("*.weights")),
        "metrics_csv": str(metrics),
        "loss_png": str(loss_png) if loss_png.exists() else None,
        "run_dir": str(run_dir),
    }


def _duration(seconds: object) -> str:
    return format_duration(seconds) if isinstance(seconds, (int, float)) else "?"


def format_text(status: dict[str, object]) -> str:
    """The human summary of :func:`run_status`."""
    total = status["max_batches"] if status["max_batches"] is not None else "?"
    percent = f" ({status['percent']}%)" if status["percent"] is not None else ""
    lines = [f"run {status['run']}: {status['state']}" + (f" ({status['unit']})" if status["unit"] else "")]
    lines.append(f"iteration {status['iteration']}/{total}{percent}")
    if status["loss"] is not None:
        lines.append(f"loss {status['loss']:.4g}, avg loss {status['avg_loss']:.4g}")
    speed = status["seconds_per_iteration"]
    if speed is not None:
        lines.append(f"{speed:.3g} s/iteration, ETA {_duration(status['eta_seconds'])}")
    lines.append(f"checkpoints: {len(status['checkpoints'])}")  # type: ignore[arg-type]
    lines.append(f"loss plot: {status['loss_png'] or 'not drawn yet'}")
    lines.append(f"metrics: {status['metrics_csv']}")
    return "\n".join(lines)
