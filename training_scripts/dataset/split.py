"""Train/valid/test splits of validated samples.

``stratified`` (default): image-disjoint, stratified by class, seeded. Each image belongs to
the stratum of its rarest class (fewest images; ties by name; images without boxes form
their own stratum). Strata are laid end to end (rarest first), each shuffled by the seeded
generator, and positions are dealt to the lists by smooth weighted round-robin, so every
stratum, and the whole, is split in the requested proportions (±1 image per list).

``seed-subset6``: the seed project's rule, kept for comparison only: train on every image
with a box in Flickr27 subsets 1..5, validate and test on subset 6, which holds every box,
so valid/test overlap train. The report flags the overlap.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from edge_image.contract.errors import UserError
from training_scripts.dataset.formats import SPLIT_RULES
from training_scripts.dataset.model import Sample

LISTS = ("train", "valid", "test")
RULES = SPLIT_RULES


def parse_split(text: str) -> tuple[float, float, float]:
    """Parse ``TRAIN,VALID,TEST`` (any positive scale) into fractions summing to 1.

    >>> parse_split("80,10,10")
    (0.8, 0.1, 0.1)
    """
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3:
        raise UserError(f"--split: expected TRAIN,VALID,TEST, got {text!r}")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise UserError(f"--split: expected three numbers, got {text!r}") from None
    return normalize_split(values)


def normalize_split(values: Sequence[float]) -> tuple[float, float, float]:
    """Scale three non-negative weights to fractions; train must be positive."""
    if len(values) != 3 or any(not np.isfinite(v) or v < 0 for v in values) or values[0] <= 0:
        raise UserError(f"--split: need three non-negative numbers with TRAIN > 0, got {list(values)}")
    total = float(sum(values))
    a, b, c = (float(v) / total for v in values)
    return (round(a, 12), round(b, 12), round(c, 12))


def smooth_round_robin(n: int, fractions: Sequence[float], phase: Sequence[float]) -> list[int]:
    """Deal ``n`` positions to lists in proportion to ``fractions`` (smooth weighted round-robin).

    Every prefix holds each list within ±1 (+ phase) of its share. ``phase`` (each in [0, 1))
    shifts where the small lists' turns fall.

    >>> smooth_round_robin(10, (0.8, 0.1, 0.1), (0, 0, 0))
    [0, 0, 0, 1, 0, 0, 2, 0, 0, 0]
    """
    current = [float(p) * f for p, f in zip(phase, fractions, strict=True)]
    out: list[int] = []
    for _ in range(n):
        current = [c + f for c, f in zip(current, fractions, strict=True)]
        best = max(range(len(current)), key=lambda j: (current[j], -j))
        current[best] -= 1.0
        out.append(best)
    return out


def stratified_split(
    samples: Sequence[Sample], fractions: Sequence[float], seed: int
) -> dict[str, list[Sample]]:
    """Image-disjoint stratified split; deterministic for the same samples and seed."""
    rng = np.random.default_rng(seed)
    image_count: Counter[str] = Counter(c for s in samples for c in s.classes)

    def stratum(sample: Sample) -> tuple[int, str]:
        if not sample.classes:
            return (0, "")
        return min((image_count[c], c) for c in sample.classes)

    strata: dict[tuple[int, str], list[Sample]] = {}
    for sample in sorted(samples, key=lambda s: s.name):
        strata.setdefault(stratum(sample), []).append(sample)
    ordered: list[Sample] = []
    for key in sorted(strata):
        members = strata[key]
        ordered += [members[i] for i in rng.permutation(len(members))]
    phase = rng.random(3)
    assignment = smooth_round_robin(len(ordered), fractions, phase)
    result: dict[str, list[Sample]] = {name: [] for name in LISTS}
    for sample, index in zip(ordered, assignment, strict=True):
        result[LISTS[index]].append(sample)
    return {name: sorted(items, key=lambda s: s.name) for name, items in result.items()}


def subset6_split(samples: Sequence[Sample]) -> dict[str, list[Sample]]:
    """The seed's leaky rule: train = subsets 1..5, valid = test = subset 6 (Flickr27 only)."""
    if not any(s.subsets for s in samples):
        raise UserError("--split-rule seed-subset6 needs Flickr27 subsets (use it with 'prepare flickr27')")
    ordered = sorted(samples, key=lambda s: s.name)
    train = [s for s in ordered if any(n <= 5 for n in s.subsets)]
    six = [s for s in ordered if 6 in s.subsets]
    return {"train": train, "valid": list(six), "test": list(six)}


def overlap(split: dict[str, list[Sample]]) -> dict[str, int]:
    """Images shared between each pair of lists (all zero for an image-disjoint split).

    >>> overlap({"train": [], "valid": [], "test": []})
    {'train&valid': 0, 'train&test': 0, 'valid&test': 0}
    """
    names = {k: {s.name for s in v} for k, v in split.items()}
    pairs = (("train", "valid"), ("train", "test"), ("valid", "test"))
    return {f"{a}&{b}": len(names[a] & names[b]) for a, b in pairs}


def make_split(
    samples: Sequence[Sample], fractions: Sequence[float], seed: int, rule: str
) -> dict[str, list[Sample]]:
    """Dispatch on ``rule`` (one of :data:`RULES`)."""
    if rule == "stratified":
        return stratified_split(samples, fractions, seed)
    if rule == "seed-subset6":
        return subset6_split(samples)
    raise UserError(f"--split-rule: expected one of {', '.join(RULES)}, got {rule!r}")
