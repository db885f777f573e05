"""Box conversions and label I/O: property-based round trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from training_scripts.dataset.darknet_layout import format_label_line, label_path_for, read_labels
from training_scripts.dataset.model import (
    BoxCheck,
    check_box,
    corners_to_voc,
    corners_to_xywh,
    corners_to_yolo,
    voc_to_corners,
    xywh_to_corners,
    yolo_to_corners,
)
from training_scripts.dataset.validate import output_name

sizes = st.integers(1, 5000)
coords = st.floats(-1e4, 1e4, allow_nan=False)


@st.composite
def image_and_box(draw: st.DrawFn) -> tuple[int, int, float, float, float, float]:
    width, height = draw(sizes), draw(sizes)
    x1 = draw(st.floats(0, width - 0.5))
    y1 = draw(st.floats(0, height - 0.5))
    x2 = draw(st.floats(x1 + 0.1, width)) if x1 + 0.1 <= width else float(width)
    y2 = draw(st.floats(y1 + 0.1, height)) if y1 + 0.1 <= height else float(height)
    return width, height, x1, y1, x2, y2


@settings(deadline=None)  # shared CI cores: timing is not what is tested
@given(image_and_box())
def test_corners_yolo_round_trip(case: tuple[int, int, float, float, float, float]) -> None:
    width, height, *corners = case
    yolo = corners_to_yolo(*corners, width, height)
    assert all(0 <= v <= 1 + 1e-12 for v in yolo)
    assert yolo_to_corners(*yolo, width, height) == pytest.approx(corners, abs=1e-6 * max(width, height))


@settings(deadline=None)  # shared CI cores: timing is not what is tested
@given(coords, coords, st.floats(0, 1e4), st.floats(0, 1e4))
def test_coco_xywh_round_trip(x: float, y: float, w: float, h: float) -> None:
    assert corners_to_xywh(*xywh_to_corners(x, y, w, h)) == pytest.approx((x, y, w, h), abs=1e-6)


@settings(deadline=None)  # shared CI cores: timing is not what is tested
@given(st.integers(1, 5000), st.integers(1, 5000), st.integers(1, 5000), st.integers(1, 5000))
def test_voc_round_trip_is_exact_for_integers(a: int, b: int, c: int, d: int) -> None:
    assert corners_to_voc(*voc_to_corners(a, b, c, d)) == (a, b, c, d)


@settings(deadline=None)  # shared CI cores: timing is not what is tested
@given(sizes, sizes, coords, coords, coords, coords)
def test_check_box_invariants(width: int, height: int, x1: float, y1: float, x2: float, y2: float) -> None:
    status, (a, b, c, d) = check_box(x1, y1, x2, y2, width, height)
    if x2 <= x1 or y2 <= y1:
        assert status is BoxCheck.DEGENERATE
    elif x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
        assert status is BoxCheck.OUTSIDE
    else:
        assert status in (BoxCheck.OK, BoxCheck.CLIPPED)
        assert 0 <= a < c <= width and 0 <= b < d <= height
        inside = x1 >= 0 and y1 >= 0 and x2 <= width and y2 <= height
        assert (status is BoxCheck.OK) == inside or (
            not inside and max(-x1, -y1, x2 - width, y2 - height) <= 0.01
        )


@settings(deadline=None)  # shared CI cores: timing is not what is tested
@given(st.lists(st.tuples(st.integers(0, 80), *(st.floats(0, 1, allow_nan=False),) * 4), max_size=20))
def test_label_lines_read_back(rows: list[tuple[int, float, float, float, float]]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.txt"
        path.write_text("".join(format_label_line(*row) + "\n" for row in rows))
        back = read_labels(path)
    assert back.shape == (len(rows), 5)
    if rows:
        assert back == pytest.approx(np.array(rows, np.float64), abs=5e-7)


def test_label_path_rule_is_darknets() -> None:
    assert label_path_for("/d/images/x.jpg") == Path("/d/labels/x.txt")
    assert label_path_for("/d/JPEGImages/x.JPEG") == Path("/d/labels/x.txt")
    assert label_path_for("/d/images/x.png") == Path("/d/labels/x.txt")
    assert label_path_for("/d/raw/x.jpg") == Path("/d/labels/x.txt")
    assert label_path_for("/d/images/draw.jpg") == Path("/d/labels/dlabels.txt")  # why names are defused


@settings(deadline=None)  # shared CI cores: timing is not what is tested
@given(st.text(min_size=1, max_size=40))
def test_output_names_survive_darknets_rule(key: str) -> None:
    name = output_name(key)
    image = Path("/out/images") / f"{name}.jpg"
    assert label_path_for(image) == Path("/out/labels") / f"{name}.txt"
    assert "/" not in name and not name.startswith(".")
