"""The end-of-demo summary: what was trained, how good it is on held-out data, how fast the
edge service runs it, and where to look.

Inputs: the ``latest.json`` the publish role writes (``{"path": BUNDLE, "version", ...}``),
the bundle's ``extra/selection.json`` (written by ``select``) and, optionally, a running edge
service's ``/healthz`` and ``/metrics``. Output: a :class:`Summary` (printable, JSON-ready).
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edge_image.contract.errors import UserError, read_json
from training_scripts.evaluation.selection_file import SelectionFile
from training_scripts.published import LatestPointer

_FRAMES = re.compile(r"^edge_frames_total(?:\{[^}]*\})?\s+([0-9.eE+-]+)$", re.MULTILINE)
_TOTAL = re.compile(r'^edge_stage_seconds_(sum|count)\{stage="total"\}\s+([0-9.eE+-]+)$', re.MULTILINE)


@dataclass(frozen=True)
class Summary:
    """The numbers the demo prints."""

    model: str
    version: str
    bundle: str
    selected_iteration: int
    selected_weights: str
    valid_images: int
    valid_map50: float
    valid_map50_11pt: float
    test_images: int
    test_map50: float
    test_map50_11pt: float
    report_html: str
    edge_url: str | None = None
    edge_backend: str | None = None
    edge_fps: float | None = None
    edge_capacity_fps: float | None = None

    def format(self) -> str:
        """Human-readable lines (what ``make demo`` prints at the end)."""
        lines = [
            f"model        {self.model} {self.version} ({self.bundle})",
            f"checkpoint   iteration {self.selected_iteration}: {self.selected_weights}",
            f"held-out     valid mAP@0.5 = {self.valid_map50:.4f} (11-point {self.valid_map50_11pt:.4f}) "
            f"on {self.valid_images} images — used to pick the checkpoint",
            f"test         mAP@0.5 = {self.test_map50:.4f} (11-point {self.test_map50_11pt:.4f}) "
            f"on {self.test_images} images — measured once, on the winner only",
            f"report       {self.report_html}",
        ]
        if self.edge_url:
            fps, capacity = self.edge_fps or 0.0, self.edge_capacity_fps or 0.0
            lines.append(
                f"edge         {self.edge_url}  backend {self.edge_backend}: serving {fps:.1f} FPS, "
                f"{capacity:.1f} FPS capacity (1 / mean per-frame latency)"
            )
        return "\n".join(lines)


def read_training(latest_json: Path) -> dict[str, Any]:
    """Model facts from a published bundle: ``latest.json`` → manifest → selection.json."""
    latest = LatestPointer.read(latest_json)
    bundle = Path(latest.path)
    manifest = read_json(bundle / "manifest.json", missing="bundle manifest not found")
    selection_path = bundle / "extra" / "selection.json"
    selection = SelectionFile.read(selection_path)
    valid = selection.selected.evaluation("valid", str(selection_path))
    test = selection.selected.evaluation("test", str(selection_path))
    return {
        "model": str(manifest.get("name", "")),
        "version": str(manifest.get("version", "")),
        "bundle": str(bundle),
        "selected_iteration": selection.selected.iteration,
        "selected_weights": selection.selected.weights,
        "valid_images": valid["n_images"],
        "valid_map50": float(valid["map"]),
        "valid_map50_11pt": float(valid["map11"]),
        "test_images": test["n_images"],
        "test_map50": float(test["map"]),
        "test_map50_11pt": float(test["map11"]),
        "report_html": str(bundle / "extra" / "report.html"),
    }


def _get(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode("utf-8")


def edge_fps(url: str, *, seconds: float = 10.0, wait: float = 60.0) -> tuple[str, float, float]:
    """Wait until ``url``/healthz is ok, then count frames over ``seconds``.

    Returns ``(backend, served_fps, capacity_fps)``: frames per second the service delivered
    (bounded by the source's rate or ``fps_limit``) and ``1 / mean per-frame latency`` (capture
    to decoded detections) from ``/metrics``.
    """
    deadline = time.monotonic() + wait
    health: dict[str, Any] = {}
    while True:
        try:
            health = json.loads(_get(f"{url}/healthz"))
            if health.get("ok"):
                break
        except (urllib.error.URLError, OSError, json.JSONDecodeError):
            pass
        if time.monotonic() > deadline:
            raise UserError(
                f"{url}/healthz: edge service not healthy after {wait:.0f} s ({health or 'no answer'})"
            )
        time.sleep(1.0)

    def frames() -> float:
        match = _FRAMES.search(_get(f"{url}/metrics"))
        if not match:
            raise UserError(f"{url}/metrics: no edge_frames_total")
        return float(match.group(1))

    first, started = frames(), time.monotonic()
    time.sleep(seconds)
    fps = (frames() - first) / (time.monotonic() - started)
    totals = {kind: float(value) for kind, value in _TOTAL.findall(_get(f"{url}/metrics"))}
    capacity = totals["count"] / totals["sum"] if totals.get("sum") else 0.0
    backend = f"{health.get('backend')} ({health.get('device')})"
    return backend, fps, capacity


def summarize(latest_json: Path, edge_url: str | None = None, *, seconds: float = 10.0) -> Summary:
    """Everything :class:`Summary` holds; the edge part only when ``edge_url`` is given."""
    facts = read_training(latest_json)
    if edge_url:
        backend, fps, capacity = edge_fps(edge_url.rstrip("/"), seconds=seconds)
        facts |= {
            "edge_url": edge_url,
            "edge_backend": backend,
            "edge_fps": fps,
            "edge_capacity_fps": capacity,
        }
    return Summary(**facts)


def to_json(summary: Summary) -> str:
    """Stable JSON text of ``summary``."""
    return json.dumps(asdict(summary), indent=2, sort_keys=True) + "\n"
