"""Generate a Tiny-YOLOv2 cfg for a dataset, from code (not copied from darknet's files).

The layer structure is yolov2-tiny-voc's: eight 3x3 convolutions with batch norm and
leaky ReLU, a 2x2 max pool after each of the first six (stride 2 five times, then the
stride-1 pool that keeps the 13x13 grid before the last two 3x3 convolutions), a final
1x1 linear convolution with ``filters = (classes + 5) * num`` and a ``[region]`` layer.

Two profiles:

* ``gpu`` — the real model: 416x416, full width (16 ... 1024 filters), batch 64 in 8
  subdivisions (the seed run used batch 256 / subdivisions 8 on a 16 GB V100; 64/8 is
  AlexeyAB's recommendation and fits a 16 GB T4/A10G/L4 at 416), learning rate 0.001
  with 1000 burn-in batches, multi-scale training (``random=1``) and
  ``max_batches = max(6000, 2000 * classes, training images)`` (AlexeyAB README).
* ``cpu-smoke`` — the same topology shrunk to train on 2 CPU cores in minutes: 128x128
  input (a 4x4 grid), a quarter of the filters (4 ... 256), batch 16 in 1 subdivision,
  learning rate 0.005 with 20 burn-in batches, no multi-scale resizing (darknet's
  ``random=1`` jumps to 320-608 px), and ``max_batches`` 1000 unless given (16,000 images:
  about 5 minutes at the ~57 images/s measured on 2 lightly loaded cores).

Steps are at 80% and 90% of ``max_batches`` with scales .1,.1 in both profiles.
Anchors are in output-grid cells; the VOC defaults (for a 13x13 grid) are rescaled to the
grid of the chosen size when no anchors are given.

>>> from training_scripts.darknet.cfg import describe, parse_cfg, region_spec
>>> cfg = parse_cfg(generate_cfg(["a", "b", "c"], "gpu", train_images=100))
>>> region_spec(cfg).classes, describe(cfg)[-2].filters, cfg[0].options["max_batches"]
(3, 40, '6000')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edge_image.contract.decode import VOC_TINY_ANCHORS
from edge_image.contract.errors import UserError

PROFILE_NAMES: tuple[str, ...] = ("gpu", "cpu-smoke")
# yolov2-tiny-voc's eight 3x3 convolutions at full width
BASE_FILTERS: tuple[int, ...] = (16, 32, 64, 128, 256, 512, 1024, 1024)
NUM_ANCHORS = 5


@dataclass(frozen=True)
class Profile:
    """Training hyper-parameters that differ between the two profiles."""

    name: str
    size: int
    width_divisor: int
    batch: int
    subdivisions: int
    learning_rate: float
    burn_in: int
    random: int
    default_max_batches: int | None  # None: AlexeyAB's formula

    def filters(self) -> tuple[int, ...]:
        """The eight 3x3 convolutions' filter counts."""
        return tuple(max(1, f // self.width_divisor) for f in BASE_FILTERS)


PROFILES: dict[str, Profile] = {
    "gpu": Profile("gpu", 416, 1, 64, 8, 0.001, 1000, 1, None),
    "cpu-smoke": Profile("cpu-smoke", 128, 4, 16, 1, 0.005, 20, 0, 1000),
}


def recommended_max_batches(classes: int, train_images: int) -> int:
    """``max(6000, 2000 * classes, train_images)`` (AlexeyAB README "how to train").

    >>> recommended_max_batches(27, 1000), recommended_max_batches(2, 9000)
    (54000, 9000)
    """
    return max(6000, 2000 * classes, train_images)


def default_anchors(size: int) -> tuple[float, ...]:
    """VOC Tiny-YOLOv2 anchors rescaled from a 13x13 grid to the grid of ``size`` px.

    >>> default_anchors(416) == VOC_TINY_ANCHORS
    True
    """
    grid = size // 32
    return tuple(round(a * grid / 13, 4) for a in VOC_TINY_ANCHORS)


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def generate_cfg(
    names: Sequence[str],
    profile: str,
    size: int | None = None,
    anchors: Sequence[float] | None = None,
    train_images: int = 0,
    *,
    max_batches: int | None = None,
) -> str:
    """Cfg text for ``names`` (one class each) under ``profile`` (``gpu`` or ``cpu-smoke``).

    ``size`` (a multiple of 32, default per profile) sets width and height; ``anchors``
    are 5 w,h pairs in grid cells; ``train_images`` feeds the max_batches formula (gpu);
    ``max_batches`` overrides it (any profile: for smoke runs and demos).
    """
    if profile not in PROFILES:
        raise UserError(f"unknown profile {profile!r} (use one of {', '.join(PROFILE_NAMES)})")
    prof = PROFILES[profile]
    classes = len(names)
    if classes < 1:
        raise UserError("the class list is empty: nothing to detect")
    if len(set(names)) != classes:
        dup = sorted({n for n in names if list(names).count(n) > 1})
        raise UserError(f"duplicate class names: {', '.join(dup)}")
    size = prof.size if size is None else int(size)
    if size < 64 or size % 32:
        raise UserError(f"--size must be a multiple of 32 and at least 64, got {size}")
    if anchors is None:
        anchors = default_anchors(size)
    anchors = tuple(float(a) for a in anchors)
    if len(anchors) != 2 * NUM_ANCHORS or any(a <= 0 for a in anchors):
        raise UserError(
            f"anchors: need {NUM_ANCHORS} positive w,h pairs ({2 * NUM_ANCHORS} numbers), "
            f"got {len(anchors)}: {anchors}"
        )
    if max_batches is None:
        max_batches = prof.default_max_batches or recommended_max_batches(classes, train_images)
    if max_batches < 1:
        raise UserError(f"max_batches must be >= 1, got {max_batches}")
    steps = (max(1, int(max_batches * 0.8)), max(1, int(max_batches * 0.9)))

    lines = [
        f"# Tiny-YOLOv2 ({prof.name} profile), {classes} classes, generated by training_scripts cfg",
        "[net]",
        f"batch={prof.batch}",
        f"subdivisions={prof.subdivisions}",
        f"width={size}",
        f"height={size}",
        "channels=3",
        "momentum=0.9",
        "decay=0.0005",
        "angle=0",
        "saturation=1.5",
        "exposure=1.5",
        "hue=.1",
        f"learning_rate={_fmt(prof.learning_rate)}",
        f"burn_in={prof.burn_in}",
        f"max_batches={max_batches}",
        "policy=steps",
        f"steps={steps[0]},{steps[1]}",
        "scales=.1,.1",
    ]
    filters = prof.filters()
    for i, f in enumerate(filters):
        lines += [
            "",
            "[convolutional]",
            "batch_normalize=1",
            f"filters={f}",
            "size=3",
            "stride=1",
            "pad=1",
            "activation=leaky",
        ]
        if i < 6:  # five stride-2 pools, then the stride-1 pool before the last two 3x3 convs
            lines += ["", "[maxpool]", "size=2", f"stride={2 if i < 5 else 1}"]
    lines += [
        "",
        "[convolutional]",
        "size=1",
        "stride=1",
        "pad=1",
        f"filters={(classes + 5) * NUM_ANCHORS}",
        "activation=linear",
        "",
        "[region]",
        "anchors=" + ", ".join(_fmt(a) for a in anchors),
        "bias_match=1",
        f"classes={classes}",
        "coords=4",
        f"num={NUM_ANCHORS}",
        "softmax=1",
        "jitter=.2",
        "rescore=1",
        "object_scale=5",
        "noobject_scale=1",
        "class_scale=1",
        "coord_scale=1",
        "absolute=1",
        "thresh=.6",
        f"random={prof.random}",
    ]
    return "\n".join(lines) + "\n"
