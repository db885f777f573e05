"""System benchmark: one run, one Markdown table of what this machine does at 416x416.

Measures, on the full-width Tiny-YOLOv2 of the reference workload (27 classes, 160
output filters, 416x416, random darknet weights — speed does not depend on the values):

* sgemm GFLOP/s (numpy float32, all cores) and the roofline FPS it implies;
* cfg-to-bundle export time (pb, ONNX, OpenVINO FP32/FP16, each parity-checked);
* edge end-to-end FPS per backend (``edge_image bench``) against darknet's CPU forward;
* decode + NMS frames per CPU-second;
* evaluation images/s of our evaluator against ``darknet detector valid`` on the same images.

Inputs: an output directory. Outputs: ``OUT/bench.md`` (the table), ``OUT/bench.json``,
``OUT/edge.png`` (per-stage latency chart of the edge backends).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_image.contract import atomic

Log = Callable[[str], None]


@dataclass
class BenchResult:
    """Named measurements in display order: ``(what, value, unit, note)``."""

    rows: list[tuple[str, float, str, str]] = field(default_factory=list)

    def add(self, what: str, value: float, unit: str, note: str = "") -> None:
        """Append one measurement."""
        self.rows.append((what, float(value), unit, note))

    def value(self, what: str) -> float:
        """The value recorded under ``what`` (KeyError when absent)."""
        for name, value, _unit, _note in self.rows:
            if name == what:
                return value
        raise KeyError(what)

    def markdown(self, title: str) -> str:
        """A Markdown table of every row.

        >>> r = BenchResult(); r.add("sgemm", 25.04, "GFLOP/s", "numpy")
        >>> print(r.markdown("t"))
        ## t
        <BLANKLINE>
        | measurement | value | unit | note |
        | --- | ---: | --- | --- |
        | sgemm | 25.04 | GFLOP/s | numpy |
        <BLANKLINE>
        """
        lines = [f"## {title}", "", "| measurement | value | unit | note |", "| --- | ---: | --- | --- |"]
        lines += [f"| {w} | {v:.2f} | {u} | {n} |" for w, v, u, n in self.rows]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``{what: {"value", "unit", "note"}}``."""
        return {w: {"value": round(v, 4), "unit": u, "note": n} for w, v, u, n in self.rows}


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def make_workload(
    work: Path, *, classes: int, size: int, images: int, frames: int, seed: int
) -> dict[str, Path]:
    """Synthetic data (``images`` at ``size``²), a ``frames``-frame video, the gpu-profile
    cfg for ``classes`` and random weights. Returns paths: data, cfg, weights, names, video."""
    from training_scripts.darknet.cfg import parse_cfg
    from training_scripts.darknet.profiles import generate_cfg
    from training_scripts.darknet.weights import random_weights, write_weights
    from training_scripts.dataset.darknet_layout import read_names
    from training_scripts.dataset.prepare import prepare_dataset
    from training_scripts.dataset.synth import make_synthetic

    video = work / "video.mp4"
    source = make_synthetic(
        work / "source",
        classes,
        images,
        seed,
        size=(size, size),
        video=video,
        frames=frames,
        video_size=(640, 480),
    )
    data = work / "data"
    prepare_dataset("flickr27", source, data, split=(70, 10, 20), seed=seed)
    names = read_names(data / "obj.names")
    cfg = work / "model.cfg"
    atomic.write_text(cfg, generate_cfg(names, "gpu", size, None, images))
    weights = work / "model.weights"
    write_weights(weights, random_weights(parse_cfg(cfg), seed=seed))
    return {"data": data, "cfg": cfg, "weights": weights, "names": data / "obj.names", "video": video}


def run(
    out: Path, *, classes: int, size: int, images: int, frames: int, darknet: str | None, seed: int
) -> BenchResult:
    """Run every measurement, write ``OUT/bench.md`` and ``OUT/bench.json``; return the rows."""
    from edge_image.bench import (
        decode_rate,
        plot_stages,
        read_frames,
        render_table,
        sgemm_gflops,
        synthetic_outputs,
        time_backend,
        time_darknet,
    )
    from edge_image.contract.decode import RegionSpec
    from edge_image.contract.manifest import load_bundle
    from training_scripts.darknet.cfg import describe, parse_cfg, total_gflops
    from training_scripts.darknet.valid import run_darknet_valid
    from training_scripts.dataset.darknet_layout import read_list, read_names
    from training_scripts.evaluation.evaluate import Evaluator
    from training_scripts.export.bundle import export_bundle
    from training_scripts.training.data import load_data_config
    from training_scripts.training.driver import resolve_darknet

    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = out / "work"
    result = BenchResult()
    print(f"bench: [1/6] workload ({classes} classes, {size}x{size}, {images} images)", flush=True)
    paths = make_workload(work, classes=classes, size=size, images=images, frames=frames, seed=seed)
    gflop = total_gflops(describe(parse_cfg(paths["cfg"])))

    print("bench: [2/6] sgemm", flush=True)
    gemm = sgemm_gflops(seconds=2.0)
    result.add(
        "sgemm (numpy float32 1024³)", gemm, "GFLOP/s", f"{os.cpu_count()} cores, {platform.machine()}"
    )
    result.add("model cost", gflop, "GFLOP/frame", f"tiny-yolov2 {size}², {classes} classes")
    result.add("roofline", gemm / gflop, "FPS", "sgemm ÷ model cost")

    print("bench: [3/6] export cfg → bundle (pb, onnx, openvino, openvino-fp16 + parity)", flush=True)
    bundle = work / "bundle"
    _, export_s = _timed(
        lambda: export_bundle(
            paths["cfg"],
            paths["weights"],
            paths["names"],
            bundle,
            name="bench",
            version="bench",
            log=lambda _m: None,
        )
    )
    result.add("export cfg → bundle", export_s, "s", "4 formats, each parity-checked against numpy darknet")

    print("bench: [4/6] edge end-to-end per backend vs darknet CPU", flush=True)
    loaded = load_bundle(bundle)
    frames_bgr, capture_ms = read_frames(paths["video"], frames)
    rows = [time_backend(kind, loaded, frames_bgr, capture_ms)[0] for kind in ("openvino", "opencv")]
    binary = None if darknet == "none" else resolve_darknet(darknet)
    if binary is not None:
        rows.append(time_darknet(binary, loaded, frames_bgr, capture_ms)[0])
    for row in rows:
        if row.note:
            result.add(f"edge end-to-end: {row.backend}", 0.0, "FPS", row.note)
        else:
            result.add(
                f"edge end-to-end: {row.backend}", row.fps, "FPS", f"{row.device}, {row.frames} frames"
            )
    edge_table = render_table(rows, gemm / gflop)
    plot_stages(rows, out / "edge.png")

    print("bench: [5/6] decode + NMS", flush=True)
    rate = decode_rate(synthetic_outputs(), RegionSpec(27), seconds=2.0)
    result.add("decode + NMS (13x13x160)", rate, "frames/CPU-s", "target >= 2000")

    print("bench: [6/6] evaluation vs darknet detector valid", flush=True)
    data_cfg = load_data_config(paths["data"])
    evaluator = Evaluator(data_cfg, paths["cfg"], "test")
    n_images = len(evaluator.images)
    _, ours_s = _timed(lambda: evaluator.run(paths["weights"]))
    result.add(
        "evaluate (ours, numpy forward + mAP)", n_images / ours_s, "images/s", f"{n_images} test images"
    )
    if binary is not None:
        images = read_list(paths["data"] / "test.txt")
        _, dn_s = _timed(
            lambda: run_darknet_valid(
                binary, paths["cfg"], paths["weights"], images, read_names(paths["names"]), work / "valid"
            )
        )
        result.add("evaluate (darknet detector valid)", n_images / dn_s, "images/s", f"{binary}")
    title = f"bench — {platform.node()} — {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC"
    text = result.markdown(title) + "\n### edge stages (ms per frame)\n\n" + edge_table + "\n"
    atomic.write_text(out / "bench.md", text)
    atomic.write_text(out / "bench.json", json.dumps(result.to_dict(), indent=2, sort_keys=True) + "\n")
    return result
