"""Build and render ``report.html``: a self-contained model card.

Inputs are the prepared data set (``report.json`` for the data statistics, the test list
for sample pictures), ``selection.json`` (checkpoint scores, the selected checkpoint's
valid and test evaluations with PR curves) and, found through it, the cfg, the weights and
the backup directory's ``metrics.csv``. Every picture is a PNG/JPEG embedded as a base64
``data:`` URI, so the one file can be mailed or archived as it is.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import os
from pathlib import Path
from typing import Any

from edge_image.contract.atomic import write_text
from edge_image.contract.errors import UserError, read_json
from training_scripts.darknet.cfg import describe, net_section, parse_cfg, region_spec, total_gflops
from training_scripts.evaluation.selection_file import SelectionFile
from training_scripts.training.data import DataConfig, load_data_config

TEMPLATE = Path(__file__).with_name("template.html.j2")
STRIDE = 32  # Tiny-YOLOv2: five stride-2 pools, anchors are in units of 32 input pixels
NET_KEYS = (
    "width",
    "height",
    "batch",
    "subdivisions",
    "learning_rate",
    "burn_in",
    "max_batches",
    "policy",
    "steps",
    "scales",
    "momentum",
    "decay",
    "saturation",
    "exposure",
    "hue",
)


def data_uri(data: bytes, mime: str) -> str:
    """``data:<mime>;base64,...`` for embedding.

    >>> data_uri(b"hi", "text/plain")
    'data:text/plain;base64,aGk='
    """
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _read_json(path: Path) -> dict[str, Any] | None:
    return read_json(path) if path.is_file() else None


def dataset_context(data: DataConfig) -> dict[str, Any]:
    """Data set statistics from ``report.json`` (``present`` False when it is missing)."""
    report = _read_json(data.root / "report.json")
    if report is None:
        return {"present": False, "path": str(data.root / "report.json")}
    classes = list(report.get("classes", data.names))
    split_boxes = report.get("split_boxes_per_class", {})
    lists = list(split_boxes) or list(report.get("split", {}))
    rows = [
        {
            "name": c,
            "boxes": report.get("boxes_per_class", {}).get(c, ""),
            "images": report.get("images_per_class", {}).get(c, ""),
            "per_list": [split_boxes.get(name, {}).get(c, "") for name in lists],
        }
        for c in classes
    ]
    png = data.root / "report.png"
    return {
        "present": True,
        "path": str(data.root / "report.json"),
        "format": report.get("format", ""),
        "images": report.get("images", ""),
        "boxes": report.get("boxes", ""),
        "negative_images": report.get("negative_images", ""),
        "split": report.get("split", {}),
        "split_rule": report.get("split_rule", ""),
        "seed": report.get("seed", ""),
        "lists": lists,
        "rows": rows,
        "dropped": report.get("dropped", {}),
        "clipped": report.get("clipped", 0),
        "box_size": report.get("box_size", {}),
        "query": report.get("query"),
        "leaky_split": report.get("leaky_split", False),
        "png": data_uri(png.read_bytes(), "image/png") if png.is_file() else None,
    }


def model_context(cfg: Path, weights: Path) -> dict[str, Any]:
    """Cfg summary: [net] hyper-parameters, anchors (grid and pixels), layer table, GFLOPs."""
    sections = parse_cfg(cfg)
    layers = describe(sections)
    net = net_section(sections)
    spec = region_spec(sections)
    anchors = [
        {"w": w, "h": h, "w_px": w * STRIDE, "h_px": h * STRIDE}
        for w, h in zip(spec.anchors[0::2], spec.anchors[1::2], strict=True)
    ]
    rows = []
    for info in layers:
        if info.kind == "convolutional":
            what = f"conv {info.filters} {info.size}x{info.size}/{info.stride}"
            detail = ("bn, " if info.batch_normalize else "") + info.activation
        elif info.kind == "maxpool":
            what, detail = f"maxpool {info.size}x{info.size}/{info.stride}", ""
        else:
            what, detail = info.kind, f"{spec.classes} classes, {spec.num} anchors"
        rows.append(
            {
                "index": info.index,
                "what": what,
                "detail": detail,
                "input": f"{info.in_w}x{info.in_h}x{info.in_c}",
                "output": f"{info.out_w}x{info.out_h}x{info.out_c}",
                "bflops": f"{info.flops / 1e9:.3f}",
                "params": info.n_params,
            }
        )
    return {
        "cfg": str(cfg),
        "weights": str(weights),
        "weights_mb": weights.stat().st_size / 1e6 if weights.is_file() else None,
        "net": [(k, net.options[k]) for k in NET_KEYS if k in net.options],
        "anchors": anchors,
        "layers": rows,
        "gflops": total_gflops(layers),
        "params": sum(i.n_params for i in layers),
        "grid": f"{layers[-1].out_w}x{layers[-1].out_h}",
    }


def training_context(backup: Path) -> dict[str, Any]:
    """Loss curve and run facts from ``metrics.csv`` (``present`` False without it)."""
    from training_scripts.training.history import read_history
    from training_scripts.training.plots import loss_png

    records = read_history(backup / "metrics.csv")
    if not records:
        return {"present": False, "path": str(backup / "metrics.csv")}
    last = records[-1]
    return {
        "present": True,
        "iterations": last.iteration,
        "images": last.images,
        "final_loss": last.loss,
        "final_avg_loss": last.avg_loss,
        "darknet_seconds": sum(r.seconds for r in records),
        "png": data_uri(loss_png(records), "image/png"),
    }


def selection_context(selection: SelectionFile) -> dict[str, Any]:
    """Checkpoint table, mAP-by-iteration picture, per-class AP bars and PR curves."""
    from training_scripts.evaluation.plots import ap_bars_png, map_by_iteration_png, pr_curves_png
    from training_scripts.evaluation.select import CheckpointScore

    scores = [
        CheckpointScore(
            int(c["iteration"]),
            Path(c["weights"]),
            float(c["map"]),
            float(c["map11"]),
            float(c["f1"]),
            float(c["precision"]),
            float(c["recall"]),
            float(c["average_iou"]),
        )
        for c in selection.checkpoints
    ]
    chosen = selection.selected
    best = next(s for s in scores if s.iteration == chosen.iteration)
    valid = chosen.valid["evaluation"]
    test = chosen.test["evaluation"] if chosen.test else None
    return {
        "criterion": selection.criterion,
        "iteration": best.iteration,
        "weights": chosen.weights,
        "scores": scores,
        "valid": valid,
        "test": test,
        "valid_run": chosen.valid,
        "test_run": chosen.test,
        "map_png": data_uri(
            map_by_iteration_png(scores, best, test_map=test["map"] if test else None), "image/png"
        ),
        "ap_png": data_uri(
            ap_bars_png(test or valid, "Per-class AP@0.5 on " + ("test" if test else "valid")), "image/png"
        ),
        "pr_png": data_uri(
            pr_curves_png(test or valid, "Precision-recall on " + ("test" if test else "valid")), "image/png"
        ),
        "darknet_text": _darknet_text(test or valid),
    }


def _darknet_text(evaluation: dict[str, Any]) -> str:
    from training_scripts.evaluation.metrics import ClassResult, Evaluation, format_darknet

    classes = [
        ClassResult(
            c["class_id"],
            c["name"],
            c["n_truth"],
            c["n_detections"],
            c["ap"],
            c["ap11"],
            c["tp"],
            c["fp"],
            [],
            [],
        )
        for c in evaluation["classes"]
    ]
    fields = {
        k: evaluation[k]
        for k in (
            "conf_thresh",
            "iou_thresh",
            "tp",
            "fp",
            "fn",
            "precision",
            "recall",
            "f1",
            "average_iou",
            "map",
            "map11",
            "n_images",
        )
    }
    return format_darknet(Evaluation(classes=classes, **fields))


def samples_context(
    data: DataConfig, cfg: Path, weights: Path, count: int, thresh: float
) -> list[dict[str, str]]:
    """``count`` test images (the first of the test list) with the model's detections drawn."""
    from training_scripts.darknet.forward import DarknetModel
    from training_scripts.evaluation.evaluate import load_truths, read_images, resolve_list
    from training_scripts.report.samples import render_samples

    if count <= 0:
        return []
    images = read_images(data, resolve_list(data, "test"))[:count]
    model = DarknetModel.load(cfg, weights)
    truths = load_truths(images, len(data.names))
    return [
        {"uri": data_uri(s.jpeg, "image/jpeg"), "caption": s.caption}
        for s in render_samples(model, images, truths, data.names, thresh)
    ]


def build_context(
    data: str | os.PathLike[str], selection_path: str | os.PathLike[str], *, samples: int = 8
) -> dict[str, Any]:
    """Everything the template shows."""
    selection = SelectionFile.read(selection_path)
    data_cfg = load_data_config(data)
    cfg = Path(selection.cfg)
    weights = Path(selection.selected.weights)
    if not cfg.is_file():
        raise UserError(f"{selection_path}: cfg {cfg} not found")
    if not weights.is_file():
        raise UserError(f"{selection_path}: selected weights {weights} not found")
    thresh = selection.conf_thresh
    sel = selection_context(selection)
    return {
        "title": f"{cfg.stem} — model card",
        "generated": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "names": data_cfg.names,
        "data_path": str(data_cfg.obj_data),
        "selection_path": str(Path(selection_path).resolve()),
        "thresh": thresh,
        "dataset": dataset_context(data_cfg),
        "model": model_context(cfg, weights),
        "training": training_context(Path(selection.backup)),
        "selection": sel,
        "samples": samples_context(data_cfg, cfg, weights, samples, thresh),
    }


def render_html(context: dict[str, Any]) -> str:
    """The HTML page for ``context`` (Jinja2, autoescaped)."""
    import jinja2

    env = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    env.filters["pct"] = lambda v: "n/a" if v is None else f"{100 * float(v):.2f} %"
    env.filters["num"] = lambda v, digits=3: "n/a" if v is None else f"{float(v):.{digits}f}"
    return env.from_string(TEMPLATE.read_text(encoding="utf-8")).render(**context, escape=html.escape)


def write_report(
    data: str | os.PathLike[str],
    selection_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    samples: int = 8,
) -> Path:
    """Build, render and atomically write ``report.html``; return its path."""
    return write_text(out, render_html(build_context(data, selection_path, samples=samples)))
