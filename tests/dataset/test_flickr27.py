"""Every Flickr Logos 27 fact of issue 2, on hand-made files shaped like the real ones."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from edge_image.contract.errors import UserError
from tests.dataset.builders import all_files, cumulative, flickr27_source
from training_scripts.__main__ import main
from training_scripts.dataset.darknet_layout import read_data_file, read_labels, read_list
from training_scripts.dataset.flickr27 import QUERY_FILE, TRAINING_FILE
from training_scripts.dataset.prepare import prepare_dataset

SIZES = {
    "a.jpg": (200, 100),
    "b.jpg": (120, 120),
    "c.jpg": (150, 150),
    "d.jpg": (100, 100),
    "e.jpg": (90, 90),
}
QUERY_SIZES = {"q1.jpg": (64, 64), "q2.jpg": (64, 64), "q3.jpg": (64, 64), "q4.jpg": (64, 64)}
ZERO_WIDTH = [
    "a.jpg Adidas 6 30 10 30 50",
    "b.jpg Apple 6 7 5 7 60",
    "c.jpg Apple 6 20 0 20 30",
    "e.jpg BMW 5 10 10 10 80",
    "e.jpg BMW 6 10 10 10 80",
]
QUERY = ["q1.jpg\tAdidas", "q2.jpg\tnone", "q3.jpg\tApple", "q4.jpg\tnone"]


def lines() -> list[str]:
    """26 lines: 6 distinct boxes repeated over cumulative subsets (20 lines) + 5 zero-width."""
    return [
        *cumulative("a.jpg", "Adidas", 1, (10, 10, 60, 50)),
        *cumulative("a.jpg", "Adidas", 4, (100, 20, 150, 80)),
        *cumulative("b.jpg", "Apple", 2, (5, 5, 50, 60)),
        *cumulative("b.jpg", "Adidas", 6, (60, 60, 110, 110)),  # b.jpg: two classes
        *cumulative("c.jpg", "Apple", 3, (0, 0, 30, 30)),
        *cumulative("d.jpg", "BMW", 6, (10, 10, 90, 90)),  # only in subset 6
        *ZERO_WIDTH,
    ]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return flickr27_source(tmp_path / "src", lines(), SIZES | QUERY_SIZES, QUERY)


def test_annotation_file_is_shaped_like_the_real_one(source: Path) -> None:
    data = (source / TRAINING_FILE).read_bytes()
    assert data.count(b"\r\n") == 25 and data.endswith(b" \r\n") and b"50 \r\n" in data
    assert all(len(line.split()) == 7 for line in data.decode().splitlines())


def test_cumulative_subsets_zero_width_two_classes_and_query(source: Path, tmp_path: Path) -> None:
    report = prepare_dataset("flickr27", source, tmp_path / "out")
    assert report["classes"] == ["Adidas", "Apple", "BMW"]
    assert report["images"] == 4  # e.jpg had only zero-width boxes
    assert report["boxes"] == 6  # distinct (image, class, box) triples
    assert report["dropped"] == {"degenerate": 5, "duplicate": 14, "no_boxes_left": 1}
    assert report["boxes_per_class"] == {"Adidas": 3, "Apple": 2, "BMW": 1}
    assert report["multi_class_images"] == {"count": 1, "names": ["b"]}
    assert report["source"] == {
        "annotation_lines": 25,
        "lines_per_subset": {"1": 1, "2": 2, "3": 3, "4": 4, "5": 5, "6": 10},
    }
    assert report["query"] == 4 and report["query_with_class"] == 2 and report["query_none"] == 2
    assert report["query_labels"] == {"q1": "Adidas", "q2": None, "q3": "Apple", "q4": None}
    out = tmp_path / "out"
    assert (out / "obj.names").read_text() == "Adidas\nApple\nBMW\n"
    assert [p.name for p in read_list(out / "query.txt")] == ["q1.jpg", "q2.jpg", "q3.jpg", "q4.jpg"]
    assert all(p.parent == out.resolve() / "query" and p.is_file() for p in read_list(out / "query.txt"))
    assert not (out / "labels" / "q1.txt").exists() and not (out / "images" / "q1.jpg").exists()
    b = read_labels(out / "labels" / "b.txt")
    assert b[:, 0].tolist() == [0.0, 1.0]  # Adidas and Apple in one image
    assert b[0, 1:] == pytest.approx([85 / 120, 85 / 120, 50 / 120, 50 / 120], abs=1e-6)
    a = (out / "labels" / "a.txt").read_text().splitlines()
    assert a == ["0 0.175000 0.300000 0.250000 0.400000", "0 0.625000 0.500000 0.250000 0.600000"]


def test_class_ids_do_not_depend_on_line_order(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    prepare_dataset("flickr27", source, out, seed=3)
    first = all_files(out)
    shuffled = lines()
    random.Random(7).shuffle(shuffled)
    other = flickr27_source(tmp_path / "shuffled", shuffled, SIZES | QUERY_SIZES, QUERY)
    prepare_dataset("flickr27", other, out, seed=3)
    assert all_files(out) == first


def test_lf_files_without_trailing_space_read_the_same(tmp_path: Path) -> None:
    crlf = flickr27_source(tmp_path / "crlf", lines(), SIZES)
    lf = flickr27_source(tmp_path / "lf", lines(), SIZES, crlf_trailing_space=False)
    assert prepare_dataset("flickr27", crlf, tmp_path / "o1") == prepare_dataset(
        "flickr27", lf, tmp_path / "o2"
    )


def test_default_split_is_image_disjoint(source: Path, tmp_path: Path) -> None:
    report = prepare_dataset("flickr27", source, tmp_path / "out")
    lists = {
        n: {p.name for p in read_list(tmp_path / "out" / f"{n}.txt")} for n in ("train", "valid", "test")
    }
    assert report["overlap"] == {"train&valid": 0, "train&test": 0, "valid&test": 0}
    assert report["leaky_split"] is False
    assert not (
        lists["train"] & lists["valid"] or lists["train"] & lists["test"] or lists["valid"] & lists["test"]
    )
    assert lists["train"] | lists["valid"] | lists["test"] == {"a.jpg", "b.jpg", "c.jpg", "d.jpg"}


def test_seed_subset6_rule_reproduces_the_leak_and_flags_it(source: Path, tmp_path: Path) -> None:
    report = prepare_dataset("flickr27", source, tmp_path / "out", rule="seed-subset6")
    assert report["split"] == {"train": 3, "valid": 4, "test": 4}
    assert report["overlap"] == {"train&valid": 3, "train&test": 3, "valid&test": 4}
    assert report["leaky_split"] is True
    assert report["split_rule"] == "seed-subset6"
    test_names = [p.name for p in read_list(tmp_path / "out" / "test.txt")]
    assert test_names == ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]


def test_obj_data_and_lists_use_final_absolute_paths(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    prepare_dataset("flickr27", source, out)
    data = read_data_file(out / "obj.data")
    final = out.resolve()
    assert data["classes"] == "3"
    assert data["train"] == str(final / "train.txt") and data["valid"] == str(final / "valid.txt")
    assert data["names"] == str(final / "obj.names") and data["backup"] == str(final / "backup")
    assert (final / "backup").is_dir()
    for name in ("train", "valid", "test"):
        for image in read_list(out / f"{name}.txt"):
            assert image.is_absolute() and image.parent == final / "images" and image.is_file()
    assert sorted(p.name for p in out.parent.iterdir()) == ["out", "src"]  # no temp dir left over


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("a.jpg Adidas 1 10 10 60", "expected 7 columns 'filename class subset x1 y1 x2 y2', got 6"),
        ("a.jpg Adidas 7 10 10 60 50", "subset must be 1..6, got 7"),
        ("a.jpg Adidas one 10 10 60 50", "subset must be an integer 1..6, got 'one'"),
        ("a.jpg Adidas 1 10 10 sixty 50", "box corners must be numbers, got '10 10 sixty 50'"),
    ],
)
def test_malformed_line_is_one_error_line_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad_line: str, message: str
) -> None:
    rows = lines()
    rows.insert(2, bad_line)
    src = flickr27_source(tmp_path / "src", rows, SIZES)
    code = main(["prepare", "flickr27", "--src", str(src), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"error: {src / TRAINING_FILE}:3: {message}\n"
    assert not (tmp_path / "out").exists()


def test_query_set_errors_name_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = flickr27_source(
        tmp_path / "src", lines(), SIZES | QUERY_SIZES, ["q1.jpg\tAdidas", "q2.jpg\tToyota"]
    )
    assert main(["prepare", "flickr27", "--src", str(src), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {src / QUERY_FILE}:2: unknown class 'Toyota' (not among the training classes)\n"


def test_query_image_also_in_training_is_dropped_and_counted(tmp_path: Path) -> None:
    src = flickr27_source(tmp_path / "src", lines(), SIZES | QUERY_SIZES, ["a.jpg\tAdidas", *QUERY])
    report = prepare_dataset("flickr27", src, tmp_path / "out")
    assert report["dropped"]["query_in_training"] == 1 and report["query"] == 4


def test_synth_source_reproduces_the_file_quirks(synth_source: Path) -> None:
    data = (synth_source / TRAINING_FILE).read_bytes()
    rows = data.decode().split("\r\n")[:-1]
    assert all(row.endswith(" ") for row in rows)  # trailing space before CR, every line
    parsed = [row.split() for row in rows]
    zero_width = [p for p in parsed if p[3] == p[5]]
    assert len(zero_width) == 5
    boxes = [p for p in parsed if p[3] != p[5]]
    by_triple: dict[tuple[str, ...], set[int]] = {}
    for p in boxes:
        by_triple.setdefault((p[0], p[1], *p[3:]), set()).add(int(p[2]))
    assert all(s == set(range(min(s), 7)) for s in by_triple.values())  # cumulative, always has 6
    assert len(boxes) > len(by_triple)  # so there is something to dedupe
    query = (synth_source / QUERY_FILE).read_bytes().decode().splitlines()
    assert all("\t" in q for q in query) and sum(q.endswith("\tnone") for q in query) == len(query) // 2


def test_synth_dataset_report(synth_dataset: Path) -> None:
    report = json.loads((synth_dataset / "report.json").read_text())
    assert report["classes"] == ["blue-triangle", "green-square", "red-circle"]
    assert report["images"] == 150 and report["dropped"]["degenerate"] == 5
    assert report["split"] == {"train": 120, "valid": 15, "test": 15}
    assert report["query"] == 16 and report["leaky_split"] is False
    assert (synth_dataset / "report.png").read_bytes().startswith(b"\x89PNG")


def test_archived_pictures_are_pointed_out(tmp_path: Path) -> None:  # no "images" in a tmp_path name
    src = flickr27_source(tmp_path / "src", lines(), {})
    (src / "flickr_logos_27_dataset_images.tar.gz").write_bytes(b"")
    with pytest.raises(
        UserError, match=r"images still archived; run `tar xzf flickr_logos_27_dataset_images\.tar\.gz`"
    ):
        prepare_dataset("flickr27", src, tmp_path / "out")
