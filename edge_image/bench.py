"""``bench``: per-stage latency and FPS of each backend on the same frames, darknet CPU for
comparison, and the roofline (measured sgemm GFLOP/s ÷ the model's GFLOP per frame).

Stages are the service's: capture (decode the video frame), preprocess (resize, RGB, /255),
infer (backend), decode (region decode + NMS). darknet's time is its own ``Predicted in``
figure from ``darknet detector test`` (forward pass only, letterboxed input), fed the same
frames as JPEG files through stdin. Output is a Markdown table; ``--plot`` adds a PNG.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge_image.backends import BackendError, movidius_present, open_backend
from edge_image.config import BackendConfig
from edge_image.contract.decode import Layout, RegionSpec, decode
from edge_image.contract.errors import UserError
from edge_image.contract.manifest import Bundle, load_bundle
from edge_image.contract.progress import Progress
from edge_image.detector import DETECT_STAGES, Detector
from edge_image.synthetic import trained_like_output

log = logging.getLogger(__name__)

STAGES = ("capture", *DETECT_STAGES)
_PREDICTED = re.compile(r"Predicted in ([0-9.]+) seconds")
_BFLOPS = re.compile(r"([0-9.]+) BFLOPs")


@dataclass
class Row:
    """One line of the table: mean milliseconds per stage, or why the backend was not run."""

    backend: str
    device: str = ""
    ms: dict[str, float] = field(default_factory=dict)
    frames: int = 0
    detections: float = 0.0
    note: str = ""

    @property
    def total_ms(self) -> float:
        return sum(self.ms.values())

    @property
    def fps(self) -> float:
        return 1000.0 / self.total_ms if self.total_ms else 0.0


def read_frames(source: Path, limit: int) -> tuple[list[np.ndarray], float]:
    """Up to ``limit`` BGR frames from a video file or an image folder, and mean capture ms."""
    frames: list[np.ndarray] = []
    started = time.perf_counter()
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp"))
        for path in files[:limit]:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None:
                frames.append(image)
    else:
        if not source.is_file():
            raise UserError(f"{source}: video file not found")
        cap = cv2.VideoCapture(str(source))
        try:
            while len(frames) < limit:
                ok, image = cap.read()
                if not ok:
                    break
                frames.append(image)
        finally:
            cap.release()
    if not frames:
        raise UserError(f"{source}: no frames could be read")
    return frames, (time.perf_counter() - started) * 1000.0 / len(frames)


def sgemm_gflops(n: int = 1024, seconds: float = 1.0) -> float:
    """Best measured float32 matrix multiply rate (numpy → its BLAS, all threads), GFLOP/s."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    a @ b  # warm-up (thread pool, caches)
    best = float("inf")
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2.0 * n**3 / best / 1e9


def model_gflop(bundle: Bundle) -> float:
    """Multiply-add FLOPs per frame of the model's convolutions and matmuls (2 per MAC), GFLOP.

    Read from the bundle's ONNX or IR through OpenVINO, so it is the graph that actually runs
    (darknet counts the same way: ``2 * n * size² * c / groups * out_h * out_w`` per conv).
    """
    import openvino as ov

    kind = next((k for k in ("onnx", "openvino") if bundle.has(k)), None)
    if kind is None:
        raise UserError(f"{bundle.root}: no onnx or openvino artifact to count FLOPs from")
    model = ov.Core().read_model(str(bundle.path(kind)))
    h, w, c = bundle.input_size
    if model.inputs[0].get_partial_shape().is_dynamic:
        model.reshape({model.inputs[0].get_any_name(): [1, h, w, c]})
    flops = 0
    for op in model.get_ordered_ops():
        kind_name = op.get_type_name()
        if kind_name in ("Convolution", "GroupConvolution"):
            weights = [int(d) for d in op.input(1).get_shape()]
            out = [int(d) for d in op.output(0).get_shape()]
            if kind_name == "GroupConvolution":  # (groups, out/g, in/g, kh, kw)
                groups, per_out, per_in = weights[0], weights[1], weights[2]
                macs = groups * per_out * per_in * int(np.prod(weights[3:]))
            else:  # (out, in, kh, kw)
                macs = int(np.prod(weights))
            flops += 2 * macs * int(np.prod(out[2:]))
        elif kind_name == "MatMul":
            a = [int(d) for d in op.input(0).get_shape()]
            out = [int(d) for d in op.output(0).get_shape()]
            flops += 2 * int(np.prod(out)) * a[-1]
    return flops / 1e9


def _available(kinds: Sequence[str] | None, bundle: Bundle) -> list[str]:
    if kinds:
        return list(kinds)
    found = []
    if bundle.has("ncs_graph") and movidius_present():
        found.append("mvnc")
    with contextlib.suppress(ImportError):
        import openvino  # noqa: F401

        found.append("openvino")
    found.append("opencv")
    return found


def time_backend(
    kind: str, bundle: Bundle, frames: list[np.ndarray], capture_ms: float
) -> tuple[Row, list[tuple[np.ndarray, Layout]]]:
    """Mean per-stage latency of ``kind`` over ``frames`` (3 warm-up frames first); raw outputs too."""
    try:
        backend = open_backend(kind, BackendConfig(kind=kind), bundle)
    except (UserError, BackendError, RuntimeError, OSError) as exc:
        return Row(kind, note=f"not available: {str(exc).splitlines()[0]}"), []
    detector = Detector(backend, bundle.spec)
    stages: dict[str, list[float]] = {s: [] for s in DETECT_STAGES}
    outputs: list[tuple[np.ndarray, Layout]] = []
    n_dets = 0
    try:
        for image in frames[:3]:
            detector.detect(image)  # warm-up
        progress = Progress(f"bench {kind}", len(frames), unit="frames", interval=2.0, quiet_s=2.0)
        for i, image in enumerate(frames, 1):
            result = detector.detect(image)
            for stage, seconds in result.stages.items():
                stages[stage].append(seconds)
            outputs.append((result.raw, backend.output_layout))
            n_dets += len(result.detections)
            progress.update(i)
    finally:
        backend.close()
    ms = {"capture": capture_ms} | {s: statistics.fmean(v) * 1000.0 for s, v in stages.items()}
    return Row(kind, backend.device, ms, len(frames), n_dets / len(frames)), outputs


def decode_rate(outputs: list[tuple[np.ndarray, Layout]], spec: RegionSpec, seconds: float = 1.0) -> float:
    """Decode + NMS frames per CPU-second over real raw outputs (cycled for ``seconds``).

    Process CPU time, not wall time: the decoder is single-threaded, so this is its cost
    even when other programs share the cores.
    """
    if not outputs:
        return 0.0
    count = 0
    started = time.process_time()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for raw, layout in outputs:
            decode(raw, spec, layout=layout)
            count += 1
    return count / max(time.process_time() - started, 1e-9)


def synthetic_outputs(count: int = 100, seed: int = 0) -> list[tuple[np.ndarray, Layout]]:
    """13x13x160 NHWC outputs like a trained 27-class Tiny-YOLOv2's, 0-5 objects each."""
    rng = np.random.default_rng(seed)
    spec = RegionSpec(27)
    return [(trained_like_output(rng, spec, objects=int(k)), "hwc") for k in rng.integers(0, 6, count)]


def find_darknet(explicit: str | None) -> Path | None:
    """``--darknet``, else ``$DARKNET_BIN``, else ``darknet`` on PATH; ``none`` → None (skip).

    The edge package does not know the repository's build cache: ``make bench`` (and the
    training side's bench, through :func:`training_scripts.training.driver.resolve_darknet`)
    pass the binary they built.
    """
    if explicit == "none":
        return None
    found = explicit or os.environ.get("DARKNET_BIN") or shutil.which("darknet")
    if not found:
        raise UserError("--darknet: no darknet binary (set DARKNET_BIN or put it on PATH; 'none' skips it)")
    candidate = Path(found)
    if not (candidate.is_file() and os.access(candidate, os.X_OK)):
        raise UserError(f"--darknet: {candidate} is not an executable darknet binary ('none' skips darknet)")
    return candidate


def _labels_dir(binary: Path) -> Path | None:
    """darknet's ``data/labels`` (glyphs ``detector test`` loads from the working directory)."""
    candidates = [binary.parent / "data/labels", *sorted(binary.parent.glob("src/darknet-*/data/labels"))]
    candidates.append(Path("/usr/share/darknet/data/labels"))
    return next((c for c in candidates if (c / "32_0.png").is_file()), None)


def time_darknet(
    binary: Path, bundle: Bundle, frames: list[np.ndarray], capture_ms: float
) -> tuple[Row, float]:
    """darknet's forward time on the same frames; also the BFLOPs darknet itself prints."""
    for kind in ("darknet_cfg", "darknet_weights", "names"):
        if not bundle.has(kind):
            return Row("darknet", "CPU", note=f"bundle has no {kind}"), 0.0
    labels = _labels_dir(binary)
    if labels is None:
        return Row("darknet", "CPU", note="darknet data/labels not found next to the binary"), 0.0
    with tempfile.TemporaryDirectory(prefix="edge-bench-") as tmp:
        work = Path(tmp)
        (work / "data").mkdir()
        (work / "data/labels").symlink_to(labels)
        names = [str(work / f"frame{i:05d}.jpg") for i in range(len(frames))]
        for name, image in zip(names, frames, strict=True):
            cv2.imwrite(name, image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        (work / "bench.data").write_text(f"classes={len(bundle.classes)}\nnames={bundle.path('names')}\n")
        cmd = [str(binary), "detector", "test", "bench.data", str(bundle.path("darknet_cfg")),
               str(bundle.path("darknet_weights")), "-thresh", "0.25"]  # fmt: skip
        log.info("darknet: %s (%d frames via stdin)", " ".join(cmd), len(frames))
        proc = subprocess.run(
            cmd,
            cwd=work,
            input="\n".join(names) + "\n",
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
    times = [float(t) for t in _PREDICTED.findall(proc.stdout)]
    bflops = sum(float(v) for v in _BFLOPS.findall(proc.stderr))
    if proc.returncode != 0 or not times:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return Row("darknet", "CPU", note=f"darknet failed (exit {proc.returncode}): {tail}"), bflops
    ms = {"capture": capture_ms, "infer": statistics.fmean(times[1:] or times) * 1000.0}
    return Row("darknet", f"CPU ({os.cpu_count()} cores, OpenMP)", ms, len(times)), bflops


def render_table(rows: list[Row], roofline_fps: float) -> str:
    """The Markdown table (one row per backend; not-run backends say why)."""
    head = (
        "| backend | device | capture ms | preprocess ms | infer ms | decode ms | total ms "
        "| FPS | % of roofline | dets/frame |"
    )
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        if r.note:
            lines.append(f"| {r.backend} | {r.device or '—'} | {r.note} |" + " |" * 7)
            continue
        cells = [f"{r.ms[s]:.2f}" if s in r.ms else "—" for s in STAGES]
        pct = f"{100.0 * r.fps / roofline_fps:.0f}%" if roofline_fps else "—"
        dets = f"{r.detections:.2f}" if r.backend != "darknet" else "—"
        lines.append(
            f"| {r.backend} | {r.device} | {' | '.join(cells)} | {r.total_ms:.2f} | {r.fps:.1f} "
            f"| {pct} | {dets} |"
        )
    return "\n".join(lines)


def plot_stages(rows: list[Row], path: Path) -> None:
    """Stacked horizontal bars of per-stage milliseconds per backend (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if not r.note]
    fig, ax = plt.subplots(figsize=(8, 1.0 + 0.6 * len(done)))
    left = np.zeros(len(done))
    for stage in STAGES:
        values = np.array([r.ms.get(stage, 0.0) for r in done])
        ax.barh([r.backend for r in done], values, left=left, label=stage)
        left += values
    for y, r in enumerate(done):
        ax.text(left[y], y, f"  {r.fps:.1f} FPS", va="center")
    ax.set_xlabel("milliseconds per frame")
    ax.set_title("edge_image bench: per-stage latency")
    ax.legend(loc="lower right")
    ax.set_xlim(0, max(left) * 1.25 if len(left) else 1)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def run_bench(
    *,
    bundle_dir: Path,
    source: Path,
    backends: Sequence[str] | None,
    frames: int,
    darknet: str | None,
    plot: Path | None = None,
    output: Path | None = None,
) -> int:
    """The whole benchmark; prints the Markdown report and returns 0."""
    if frames < 4:
        raise UserError(f"--frames: must be at least 4, got {frames}")
    bundle = load_bundle(bundle_dir)
    darknet_bin = find_darknet(darknet)
    images, capture_ms = read_frames(source, frames)
    gemm_before = sgemm_gflops()
    rows: list[Row] = []
    outputs: list[tuple[np.ndarray, Layout]] = []
    for kind in _available(backends, bundle):
        row, raw = time_backend(kind, bundle, images, capture_ms)
        rows.append(row)
        outputs = outputs or raw
    darknet_bflops = 0.0
    if darknet_bin is not None:
        row, darknet_bflops = time_darknet(darknet_bin, bundle, images, capture_ms)
        rows.append(row)
    gemm = max(gemm_before, sgemm_gflops())
    gflop = model_gflop(bundle)
    roofline = gemm / gflop if gflop else 0.0
    h, w, _ = bundle.input_size
    report = [
        f"## edge_image bench — {bundle.manifest['name']} {bundle.manifest['version']}, "
        f"{len(images)} frames of {source.name} ({images[0].shape[1]}x{images[0].shape[0]} → {w}x{h})",
        "",
        render_table(rows, roofline),
        "",
        f"- decode + NMS alone: {decode_rate(outputs, bundle.spec):.0f} frames per CPU-second "
        f"on this model's real outputs; {decode_rate(synthetic_outputs(), RegionSpec(27)):.0f} on "
        "13x13x160 outputs shaped like a trained 27-class model's (target >= 2000)",
        f"- sgemm (numpy float32 1024³, {os.cpu_count()} cores): {gemm:.1f} GFLOP/s",
        f"- model: {gflop:.3f} GFLOP per frame (convolutions, from the graph)"
        + (f"; darknet reports {darknet_bflops:.3f} BFLOPs" if darknet_bflops else ""),
        f"- roofline: {gemm:.1f} / {gflop:.3f} = {roofline:.2f} FPS (compute bound at sgemm speed; "
        "best of two sgemm runs, before and after the backends, as the CPU may be shared)",
    ]
    text = "\n".join(report) + "\n"
    print(text)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(f".{output.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, output)
    if plot is not None:
        plot_stages(rows, plot)
    return 0
