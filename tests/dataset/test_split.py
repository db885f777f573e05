"""Split: image-disjoint, stratified by class, seeded, proportions as asked."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_image.contract.errors import UserError
from training_scripts.dataset.darknet_layout import label_path_for, read_labels, read_list
from training_scripts.dataset.model import Box, Sample
from training_scripts.dataset.split import parse_split, smooth_round_robin, stratified_split, subset6_split


def sample(name: str, *classes: str) -> Sample:
    return Sample(name, Path(f"/src/{name}.jpg"), 100, 100, tuple(Box(c, 0, 0, 10, 10) for c in classes))


def many_samples() -> list[Sample]:
    """300 images: 5 classes with 20..100 images each, some with two classes."""
    samples = []
    for i in range(300):
        cls = "abcde"[i % 15 % 5] if i % 15 < 10 else "abcde"[i % 3]
        extra = ("e",) if i % 17 == 0 else ()
        samples.append(sample(f"img{i:03d}", cls, *extra))
    return samples


def test_synth_dataset_lists_are_disjoint_and_stratified(synth_dataset: Path) -> None:
    lists = {n: read_list(synth_dataset / f"{n}.txt") for n in ("train", "valid", "test")}
    names = {n: {p.name for p in v} for n, v in lists.items()}
    assert not (names["train"] & names["valid"]) and not (names["train"] & names["test"])
    assert not (names["valid"] & names["test"])
    assert len(names["train"]) + len(names["valid"]) + len(names["test"]) == 150
    for name in ("valid", "test"):
        classes = Counter(int(row[0]) for p in lists[name] for row in read_labels(label_path_for(p)))
        assert set(classes) == {0, 1, 2}, (name, classes)  # every class in every list


def test_stratified_split_proportions_per_class() -> None:
    samples = many_samples()
    split = stratified_split(samples, (0.8, 0.1, 0.1), seed=0)
    assert {k: len(v) for k, v in split.items()} == {"train": 240, "valid": 30, "test": 30}
    total = Counter(c for s in samples for c in s.classes)
    for name, fraction in (("train", 0.8), ("valid", 0.1), ("test", 0.1)):
        per_class = Counter(c for s in split[name] for c in s.classes)
        for cls, n in total.items():
            assert abs(per_class[cls] - fraction * n) <= 3, (name, cls, per_class[cls], n)


def test_split_depends_on_seed_only() -> None:
    samples = many_samples()
    a = stratified_split(samples, (0.8, 0.1, 0.1), seed=1)
    b = stratified_split(list(reversed(samples)), (0.8, 0.1, 0.1), seed=1)
    c = stratified_split(samples, (0.8, 0.1, 0.1), seed=2)
    assert a == b
    assert a["valid"] != c["valid"]


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 200),
    weights=st.tuples(st.integers(1, 10), st.integers(0, 10), st.integers(0, 10)),
    seed=st.integers(0, 2**32 - 1),
)
def test_split_is_a_partition_with_requested_sizes(n: int, weights: tuple[int, int, int], seed: int) -> None:
    samples = [sample(f"s{i}", "xyz"[i % 3]) for i in range(n)]
    total = sum(weights)
    split = stratified_split(samples, [w / total for w in weights], seed)
    names = [s.name for part in split.values() for s in part]
    assert sorted(names) == sorted(s.name for s in samples)  # each image exactly once
    for part, w in zip(split.values(), weights, strict=True):
        assert abs(len(part) - n * w / total) <= 1.5


def test_smooth_round_robin_spreads_small_lists() -> None:
    assert Counter(smooth_round_robin(1000, (0.8, 0.1, 0.1), (0.3, 0.6, 0.9))) == {0: 800, 1: 100, 2: 100}


def test_subset6_rule_needs_subsets() -> None:
    with pytest.raises(UserError, match="needs Flickr27 subsets"):
        subset6_split([sample("a", "x")])


@pytest.mark.parametrize(
    ("text", "expected"),
    [("80,10,10", (0.8, 0.1, 0.1)), ("8, 1, 1", (0.8, 0.1, 0.1)), ("1,0,0", (1.0, 0.0, 0.0))],
)
def test_parse_split(text: str, expected: tuple[float, float, float]) -> None:
    assert parse_split(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["80,20", "a,b,c", "80,-1,21", "0,50,50", "nan,1,1"])
def test_parse_split_rejects(text: str) -> None:
    with pytest.raises(UserError, match="--split"):
        parse_split(text)
