"""The GPU host check (``make gpu-check``): train the reference model on the GPU darknet build and
report what the GPU did.

Steps: ask ``nvidia-smi`` which GPU this is (name, compute capability, driver, memory); make a
synthetic 27-class dataset at 416², the ``gpu``-profile cfg with ``max_batches`` = ``iterations``;
train it with the given darknet (``-gpus 0``) while a sampler reads GPU utilisation and memory from
``nvidia-smi`` every second; export the newest checkpoint to a parity-checked bundle.

Inputs: an output directory, the darknet binary, the sizes. Outputs: ``OUT/gpu-check.json`` and
``OUT/gpu-check.md`` (one table: GPU, images/s, memory, utilisation, parity per format), the run in
``OUT/work`` (``metrics.csv``, ``loss.png``, the bundle).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edge_image.contract import atomic
from edge_image.contract.errors import UserError

Runner = Callable[[Sequence[str]], str]
GPU_FIELDS = ("name", "compute_cap", "driver_version", "memory.total")
SAMPLE_FIELDS = ("utilization.gpu", "memory.used")
# Iterations left out of the images/s figure: darknet's first ones include cuDNN autotuning.
WARMUP_ITERATIONS = 20


def nvidia_smi(fields: Sequence[str], *, gpu: int = 0, run: Runner | None = None) -> list[str]:
    """One ``nvidia-smi --query-gpu`` row for ``gpu``: the values of ``fields``, in order."""
    argv = ["nvidia-smi", f"--id={gpu}", f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"]
    try:
        out = (run or _run)(argv)
    except FileNotFoundError:
        raise UserError(
            "nvidia-smi: not found: make gpu-check needs a host with an NVIDIA GPU and driver"
        ) from None
    except subprocess.CalledProcessError as exc:
        raise UserError(
            f"nvidia-smi: exit {exc.returncode}: {(exc.stderr or exc.stdout or '').strip()[:200]}"
        ) from None
    values = [v.strip() for v in out.strip().splitlines()[0].split(",")] if out.strip() else []
    if len(values) != len(fields):
        raise UserError(
            f"nvidia-smi: expected {len(fields)} values ({', '.join(fields)}), got {out.strip()!r}"
        )
    return values


def _run(argv: Sequence[str]) -> str:
    return subprocess.run(list(argv), capture_output=True, text=True, check=True, timeout=30).stdout


@dataclass
class GpuInfo:
    """What the check ran on."""

    name: str
    compute_cap: str
    driver: str
    memory_total_mib: float


def gpu_info(*, gpu: int = 0, run: Runner | None = None) -> GpuInfo:
    """The GPU's name, compute capability ("7.0"), driver version and memory (MiB)."""
    name, cap, driver, total = nvidia_smi(GPU_FIELDS, gpu=gpu, run=run)
    return GpuInfo(name, cap, driver, float(total))


@dataclass
class Sampler:
    """Reads utilisation (%) and memory used (MiB) on entry, every ``interval`` s in a thread, and on exit."""

    gpu: int = 0
    interval: float = 1.0
    run: Runner | None = None
    utilization: list[float] = field(default_factory=list)
    memory_mib: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> None:
        """Take one reading (ignored when nvidia-smi answers badly: the check reports what it got)."""
        try:
            util, used = nvidia_smi(SAMPLE_FIELDS, gpu=self.gpu, run=self.run)
            self.utilization.append(float(util))
            self.memory_mib.append(float(used))
        except (UserError, ValueError):
            pass

    def __enter__(self) -> Sampler:
        self.sample()

        def loop() -> None:
            while not self._stop.wait(self.interval):
                self.sample()

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()  # the end of training, where memory peaks

    def summary(self) -> dict[str, float]:
        """Mean and peak utilisation, peak memory, sample count (zeros when nothing was read)."""
        if not self.utilization:
            return {"samples": 0, "utilization_mean": 0.0, "utilization_max": 0.0, "memory_max_mib": 0.0}
        return {
            "samples": len(self.utilization),
            "utilization_mean": statistics.fmean(self.utilization),
            "utilization_max": max(self.utilization),
            "memory_max_mib": max(self.memory_mib),
        }


def images_per_second(metrics_csv: Path, batch: int, *, warmup: int = WARMUP_ITERATIONS) -> float:
    """Median training throughput from darknet's per-iteration seconds, after ``warmup`` iterations
    (all of them when the run is shorter)."""
    from training_scripts.training.history import read_history

    seconds = [r.seconds for r in read_history(metrics_csv) if r.seconds > 0]
    steady = seconds[warmup:] or seconds
    if not steady:
        raise UserError(f"{metrics_csv}: no timed iterations")
    return batch / statistics.median(steady)


def run_check(
    out: Path,
    darknet: Path,
    *,
    classes: int = 27,
    size: int = 416,
    images: int = 256,
    iterations: int = 300,
    profile: str = "gpu",
    gpus: str | None = "0",
    smi: Runner | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, object]:
    """Run the check (module docstring); write ``OUT/gpu-check.{json,md}``; return the JSON record.
    ``gpus=None`` trains without ``-gpus`` (a CPU darknet: the tests)."""
    from training_scripts.darknet.cfg import parse_cfg
    from training_scripts.darknet.profiles import generate_cfg
    from training_scripts.dataset.darknet_layout import read_names
    from training_scripts.dataset.prepare import prepare_dataset
    from training_scripts.dataset.synth import make_synthetic
    from training_scripts.export.bundle import export_bundle
    from training_scripts.training.driver import TrainOptions, train

    out = out.resolve()
    work = out / "work"
    info = gpu_info(run=smi)
    log(
        f"gpu-check: [1/4] {info.name} (compute {info.compute_cap}, driver {info.driver}, "
        f"{info.memory_total_mib:.0f} MiB)"
    )
    log(f"gpu-check: [2/4] synthetic data: {classes} classes, {images} images at {size}x{size}")
    source = make_synthetic(work / "source", classes, images, 0, size=(size, size))
    data = work / "data"
    prepare_dataset("flickr27", source, data, split=(80, 10, 10), seed=0)
    names = read_names(data / "obj.names")
    cfg = work / "model.cfg"
    atomic.write_text(cfg, generate_cfg(names, profile, size, None, images, max_batches=iterations))
    batch = int(parse_cfg(cfg)[0].options["batch"])

    log(f"gpu-check: [3/4] train {iterations} iterations (batch {batch}) with {darknet}")
    backup = work / "run"
    started = time.monotonic()
    with Sampler(run=smi) as sampler:
        result = train(
            TrainOptions(
                data=data,
                cfg=cfg,
                init_weights=None,
                backup=backup,
                darknet=darknet,
                segment=iterations,
                gpus=gpus,
            )
        )
    wall = time.monotonic() - started
    if result.stopped != "complete" or not result.checkpoints:
        raise UserError(f"{backup}: training stopped ({result.stopped}) at iteration {result.last_iteration}")
    rate = images_per_second(result.metrics_csv, batch)

    log("gpu-check: [4/4] export the newest checkpoint (parity-checked against the numpy reference)")
    exported = export_bundle(
        cfg, result.checkpoints[-1][1], data / "obj.names", work / "bundle", log=lambda _m: None
    )
    record: dict[str, object] = {
        "gpu": asdict(info),
        "darknet": str(darknet),
        "cfg": {
            "classes": classes,
            "size": size,
            "batch": batch,
            "iterations": result.last_iteration,
            "profile": profile,
        },
        "train_seconds": round(wall, 1),
        "images_per_second": round(rate, 1),
        "nvidia_smi": {k: round(v, 1) for k, v in sampler.summary().items()},
        "parity": exported.parity,
        "loss_png": str(result.loss_png) if result.loss_png else None,
    }
    atomic.write_text(out / "gpu-check.json", json.dumps(record, indent=2) + "\n")
    atomic.write_text(out / "gpu-check.md", markdown(record))
    return record


def markdown(record: dict[str, object]) -> str:
    """The check as one Markdown table (what the README quotes)."""
    gpu, cfg, smi = record["gpu"], record["cfg"], record["nvidia_smi"]
    assert isinstance(gpu, dict) and isinstance(cfg, dict) and isinstance(smi, dict)
    rows = [
        ("GPU", f"{gpu['name']} (compute {gpu['compute_cap']}, driver {gpu['driver']})"),
        (
            "model",
            f"tiny-yolov2 {cfg['size']}², {cfg['classes']} classes, batch {cfg['batch']}, "
            f"{cfg['profile']} profile",
        ),
        ("iterations", f"{cfg['iterations']} in {record['train_seconds']} s"),
        ("training images/s", f"{record['images_per_second']} (median after {WARMUP_ITERATIONS} iterations)"),
        (
            "GPU utilisation",
            f"mean {smi['utilization_mean']} %, peak {smi['utilization_max']} % ({smi['samples']} samples)",
        ),
        ("GPU memory", f"peak {smi['memory_max_mib']} MiB of {gpu['memory_total_mib']:.0f} MiB"),
    ]
    for entry in record["parity"]:  # type: ignore[union-attr]
        verdict = "ok" if entry["ok"] else "FAILED"
        rows.append(
            (f"parity: {entry['kind']}", f"max abs {entry['max_abs']:.2e} (allowed {entry['allowed']:.1e}), "
             f"{entry['export_boxes']}/{entry['reference_boxes']} boxes: {verdict}")
        )  # fmt: skip
    lines = ["| check | result |", "| --- | --- |"] + [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines) + "\n"
