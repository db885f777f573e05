#!/usr/bin/env python3
"""train-status: where a training run of the train role stands.

Input: a run directory made by the role (``run.json``, and as training goes ``metrics.csv``
written by ``python -m training_scripts train``, checkpoints ``*.weights``, ``loss.png``,
``train.done`` when finished). Output: a few lines for people, or with ``--json`` one JSON
object ``{"state", "iteration", "max_batches", "percent", "loss", "avg_loss",
"seconds_per_iteration", "eta_seconds", "loss_png", "checkpoints", ...}`` for the play's
wait loop. ``state`` is ``complete``, ``failed`` (the systemd unit failed), ``running``,
``pending`` (nothing trained yet) or ``stopped``.

Standard library only: it runs on the training host next to the run.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

RECENT_ROWS = 20  # iterations averaged for the speed estimate
FRESH_SECONDS = 900  # metrics written this recently mean a foreground run is still going


def cfg_max_batches(cfg: Path) -> int | None:
    """``max_batches`` of the cfg's ``[net]`` section, or None when absent/unreadable.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.cfg"
    >>> _ = p.write_text("[net]\\nbatch=8\\nmax_batches = 300\\n[convolutional]\\nmax_batches=1\\n")
    >>> cfg_max_batches(p)
    300
    """
    try:
        lines = cfg.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    section = None
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if line.startswith("["):
            section = line.strip("[]").strip()
        elif section in ("net", "network") and "=" in line:
            key, value = (part.strip() for part in line.split("=", 1))
            if key == "max_batches":
                try:
                    return int(value)
                except ValueError:
                    return None
    return None


def read_metrics(path: Path) -> list[dict[str, str]]:
    """Rows of ``metrics.csv`` (empty when it does not exist yet)."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return [row for row in csv.DictReader(handle) if row.get("iteration")]


def _float(value: str | None) -> float:
    try:
        return float(value) if value not in (None, "") else math.nan
    except ValueError:
        return math.nan


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
    info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    metrics = run_dir / "metrics.csv"
    rows = read_metrics(metrics)
    total = cfg_max_batches(Path(info["cfg"]))
    last = rows[-1] if rows else {}
    iteration = int(last["iteration"]) if last else 0
    recent = [_float(r.get("seconds")) for r in rows[-RECENT_ROWS:]]
    recent = [s for s in recent if math.isfinite(s) and s >= 0]
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
        "loss": _float(last.get("loss")) if last else None,
        "avg_loss": _float(last.get("avg_loss")) if last else None,
        "seconds_per_iteration": per_iteration,
        "eta_seconds": 0.0 if state == "complete" else eta,
        "checkpoints": sorted(p.name for p in run_dir.glob("*.weights")),
        "metrics_csv": str(metrics),
        "loss_png": str(loss_png) if loss_png.exists() else None,
        "run_dir": str(run_dir),
    }


def format_duration(seconds: float | None) -> str:
    """``3h05m``, ``4m10s``, ``12s`` or ``?``.

    >>> format_duration(11100), format_duration(250), format_duration(None)
    ('3h05m', '4m10s', '?')
    """
    if seconds is None or not math.isfinite(seconds):
        return "?"
    whole = round(seconds)
    if whole >= 3600:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    if whole >= 60:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole}s"


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
        lines.append(f"{speed:.3g} s/iteration, ETA {format_duration(status['eta_seconds'])}")
    lines.append(f"checkpoints: {len(status['checkpoints'])}")  # type: ignore[arg-type]
    lines.append(f"loss plot: {status['loss_png'] or 'not drawn yet'}")
    lines.append(f"metrics: {status['metrics_csv']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="train-status", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--run",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "current",
        help="run directory (default: the train root's `current` link)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object instead of text")
    args = parser.parse_args(argv)
    if not (args.run / "run.json").is_file():
        print(f"error: {args.run}: no run.json (not a run directory of the train role)", file=sys.stderr)
        return 2
    status = run_status(args.run.resolve())
    print(json.dumps(status, sort_keys=True) if args.json else format_text(status))
    return 0


if __name__ == "__main__":
    sys.exit(main())
