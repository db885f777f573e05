"""Parsing darknet training output (pjreddie and AlexeyAB) and the metrics.csv store."""

from __future__ import annotations

import math

import pytest

from edge_image.contract.errors import UserError
from training_scripts.training.history import HistoryWriter, read_history, truncate_history
from training_scripts.training.logparse import IterationRecord, LogParser, NaNLossError, parse_lines

# pjreddie 61c9d02e (Debian), cpu-smoke cfg with subdivisions=2: two region lines per iteration
PJREDDIE_LOG = """\
model
layer     filters    size              input                output
    0 conv      4  3 x 3 / 1   128 x 128 x   3   ->   128 x 128 x   4  0.004 BFLOPs
   15 detection
mask_scale: Using default '1.000000'
Loading weights from /b/model_8.weights...Done!
Learning Rate: 0.005, Momentum: 0.9, Decay: 0.0005
Loaded: 0.013049 seconds
Region Avg IOU: 0.236574, Class: 0.453864, Obj: 0.368855, No Obj: 0.501010, Avg Recall: 0.086957,  count: 23
Region Avg IOU: 0.300000, Class: 0.500000, Obj: 0.400000, No Obj: 0.499000, Avg Recall: 0.200000,  count: 17
9: 35.780586, 35.780586 avg, 0.000000 rate, 5.244726 seconds, 144 images
Loaded: 0.000042 seconds
Region Avg IOU: nan, Class: nan, Obj: nan, No Obj: 0.499198, Avg Recall: nan,  count: 0
Region Avg IOU: 0.200203, Class: 0.434198, Obj: 0.413363, No Obj: 0.497198, Avg Recall: 0.000000,  count: 22
10: 41.437153, 36.346245 avg, 0.000003 rate, 2.665786 seconds, 160 images
Saving weights to /b/.darknet-work.x/model_final.weights
"""

# AlexeyAB (2020+): blank line and a leading space before the iteration line, "avg loss", ETA
ALEXEYAB_LOG = """\
 CUDA-version: 11080 (12020), cuDNN: 8.9.2, GPU count: 1
 OpenCV version: 4.5.4
 compute_capability = 860, cudnn_half = 0
   layer   filters  size/strd(dil)      input                output
   0 conv     16       3 x 3/ 1    416 x 416 x   3 ->  416 x 416 x  16 0.150 BF
 Tensor Cores are disabled until the first 3000 iterations are reached.
Region Avg IOU: 0.612345, Class: 0.701234, Obj: 0.523456, No Obj: 0.004321, Avg Recall: 0.750000,  count: 8

 1201: 2.345678, 2.456789 avg loss, 0.001000 rate, 3.123456 seconds, 76864 images, 4.567890 hours left
Loaded: 0.000037 seconds
Region Avg IOU: 0.650000, Class: 0.710000, Obj: 0.530000, No Obj: 0.004000, Avg Recall: 0.800000,  count: 10

 1202: 2.100000, 2.421110 avg loss, 0.001000 rate, 3.010000 seconds, 76928 images, 4.561234 hours left
"""


def test_pjreddie_lines_become_records_with_folded_region_stats():
    records = parse_lines(PJREDDIE_LOG.splitlines())
    assert [r.iteration for r in records] == [9, 10]
    first = records[0]
    assert (first.loss, first.avg_loss, first.rate, first.images) == (35.780586, 35.780586, 0.0, 144)
    assert first.seconds == pytest.approx(5.244726)
    assert math.isnan(first.hours_left)
    # count-weighted: (0.236574*23 + 0.3*17) / 40
    assert first.region_iou == pytest.approx((0.236574 * 23 + 0.3 * 17) / 40)
    assert first.region_recall == pytest.approx((0.086957 * 23 + 0.2 * 17) / 40)
    assert first.region_no_obj == pytest.approx((0.501010 + 0.499) / 2)
    assert first.region_count == 40
    # a count-0 line (nan averages) is left out of the weighted means but not of No Obj
    second = records[1]
    assert second.region_iou == pytest.approx(0.200203)
    assert second.region_no_obj == pytest.approx((0.499198 + 0.497198) / 2)
    assert second.region_count == 22
    assert second.rate == pytest.approx(3e-6)


def test_alexeyab_lines_become_records_with_eta():
    records = parse_lines(ALEXEYAB_LOG.splitlines())
    assert [r.iteration for r in records] == [1201, 1202]
    assert records[0].avg_loss == pytest.approx(2.456789)
    assert records[0].hours_left == pytest.approx(4.56789)
    assert records[0].images == 76864
    assert records[0].region_iou == pytest.approx(0.612345)
    assert records[1].region_count == 10


def test_iteration_without_region_lines_has_nan_region_fields():
    (record,) = parse_lines(["5: 1.0, 1.0 avg, 0.001 rate, 0.5 seconds, 80 images"])
    assert math.isnan(record.region_iou) and record.region_count == 0


@pytest.mark.parametrize("loss", ["-nan", "nan", "inf", "-inf"])
def test_nan_loss_is_a_clear_error(loss):
    parser = LogParser("run.log")
    parser.feed("Loaded: 0.000042 seconds")
    with pytest.raises(
        NaNLossError, match=rf"run.log: line 2: loss is {loss} at iteration 77: training diverged"
    ):
        parser.feed(f"77: {loss}, {loss} avg, 0.001000 rate, 0.100000 seconds, 1232 images")
    assert issubclass(NaNLossError, UserError)


def test_nan_in_region_line_is_not_an_error():
    parser = LogParser()
    assert (
        parser.feed("Region Avg IOU: -nan, Class: -nan, Obj: -nan, No Obj: 0.5, Avg Recall: -nan,  count: 0")
        is None
    )


def test_other_lines_are_ignored():
    ignored = [
        "Resizing",
        "608",
        "Loaded: 0.000042 seconds",
        "Saving weights to x_final.weights",
        " 1201: something else",
        "12: 3.5 avg",
    ]
    assert parse_lines(ignored) == []


def _rec(i: int, loss: float = 1.0) -> IterationRecord:
    return IterationRecord(iteration=i, loss=loss, avg_loss=loss, rate=0.001, seconds=0.5, images=16 * i)


def test_history_round_trip_dedup_and_truncate(tmp_path):
    path = tmp_path / "metrics.csv"
    writer = HistoryWriter(path)
    assert writer.append(_rec(1)) and writer.append(_rec(2))
    assert not writer.append(_rec(2, loss=9.0)), "a repeated iteration is skipped"
    assert writer.append(_rec(3))
    rows = read_history(path)
    assert [(r.iteration, r.loss) for r in rows] == [(1, 1.0), (2, 1.0), (3, 1.0)]
    assert math.isnan(rows[0].region_iou)
    kept = truncate_history(path, 2)
    assert [r.iteration for r in kept] == [1, 2]
    assert [r.iteration for r in read_history(path)] == [1, 2]
    resumed = HistoryWriter(path, last_iteration=2)
    resumed.append(_rec(3, loss=0.5))
    assert [(r.iteration, r.loss) for r in read_history(path)] == [(1, 1.0), (2, 1.0), (3, 0.5)]


def test_history_rejects_foreign_csv(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(UserError, match=r"not a metrics\.csv"):
        read_history(path)
    path.write_text("iteration,loss,avg_loss\n1,x,2\n")
    with pytest.raises(UserError, match=r"metrics.csv:2: bad metrics row"):
        read_history(path)
