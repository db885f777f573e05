"""Evaluator numbers on planted detections, checked against values worked out by hand."""

from __future__ import annotations

import pytest

from training_scripts.evaluation.metrics import (
    ImagePredictions,
    ImageTruth,
    ap_11point,
    ap_area,
    evaluate_detections,
    format_darknet,
    match_image,
    pr_curve,
)

NAMES = ["a", "b", "c"]

# image 0: two "a" boxes; image 1: one "a" and one "b"; no "c" anywhere
TRUTHS = [
    ImageTruth.of([[0, 0, 0.2, 0.2], [0.5, 0.5, 0.7, 0.7]], [0, 0]),
    ImageTruth.of([[0.1, 0.1, 0.3, 0.3], [0.6, 0.6, 0.9, 0.9]], [0, 1]),
]
PREDS = [
    ImagePredictions.of(
        [
            [0, 0, 0.2, 0.2],  # a .9  TP (G1)
            [0.01, 0.0, 0.2, 0.2],  # a .8  FP: duplicate of G1
            [0.8, 0.0, 0.95, 0.1],  # a .6  FP: nothing there
            [0.5, 0.5, 0.7, 0.7],  # a .3  TP (G2)
            [0.6, 0.6, 0.9, 0.9],  # b .5  FP: the "b" is in the other image
            [0.0, 0.0, 0.2, 0.2],  # c .4  FP: class without ground truth
        ],
        [0.9, 0.8, 0.6, 0.3, 0.5, 0.4],
        [0, 0, 0, 0, 1, 2],
    ),
    ImagePredictions.of(
        [
            [0.1, 0.1, 0.3, 0.3],  # a .7  TP (G3)
            [0.4, 0.4, 0.5, 0.5],  # a .1  FP, below conf_thresh
            [0.6, 0.6, 0.9, 0.85],  # b .95 TP, IoU .075/.09 = .8333
        ],
        [0.7, 0.1, 0.95],
        [0, 0, 1],
    ),
]

# class "a" in score order: TP FP TP FP TP FP with 3 truths
#   precision 1, 1/2, 2/3, 1/2, 3/5, 1/2 ; recall 1/3, 1/3, 2/3, 2/3, 1, 1
#   area: 1/3 * 1 + 1/3 * 2/3 + 1/3 * 3/5 = 34/45
#   11-point: r in 0..0.3 -> 1 (4x), 0.4..0.6 -> 2/3 (3x), 0.7..1 -> 3/5 (4x) => 8.4 / 11
AP_A = 34 / 45
AP11_A = 8.4 / 11


def test_planted_detections_per_class_ap():
    ev = evaluate_detections(PREDS, TRUTHS, NAMES, conf_thresh=0.25)
    a, b, c = ev.classes
    assert a.ap == pytest.approx(AP_A) and a.ap11 == pytest.approx(AP11_A)
    assert (a.n_truth, a.n_detections, a.tp, a.fp) == (3, 6, 3, 2)
    assert b.ap == pytest.approx(1.0) and b.ap11 == pytest.approx(1.0)
    assert (b.n_truth, b.tp, b.fp) == (1, 1, 1)
    assert c.ap is None and c.ap11 is None and (c.tp, c.fp) == (0, 1)
    assert ev.map == pytest.approx((AP_A + 1.0) / 2)  # the class without truth is left out
    assert ev.map11 == pytest.approx((AP11_A + 1.0) / 2)
    assert a.precision == pytest.approx([1, 1 / 2, 2 / 3, 1 / 2, 3 / 5, 1 / 2], abs=1e-6)
    assert a.recall == pytest.approx([1 / 3, 1 / 3, 2 / 3, 2 / 3, 1, 1], abs=1e-6)


def test_planted_detections_at_conf_thresh():
    ev = evaluate_detections(PREDS, TRUTHS, NAMES, conf_thresh=0.25)
    # above .25: a: TP FP FP TP + TP(img1) ; b: TP FP ; c: FP  -> TP 4, FP 4, FN 0
    assert (ev.tp, ev.fp, ev.fn) == (4, 4, 0)
    assert ev.precision == pytest.approx(0.5) and ev.recall == pytest.approx(1.0)
    assert ev.f1 == pytest.approx(2 / 3)
    # IoU of TPs (1, 1, 1, .8333), FPs count 0, over 8 detections
    assert ev.average_iou == pytest.approx((3 + 0.075 / 0.09) / 8)
    high = evaluate_detections(PREDS, TRUTHS, NAMES, conf_thresh=0.75)
    assert (high.tp, high.fp, high.fn) == (2, 1, 2)  # a .9 TP, a .8 dup FP, b .95 TP
    assert high.map == pytest.approx(ev.map), "AP does not depend on conf_thresh"


def test_darknet_style_lines():
    text = format_darknet(evaluate_detections(PREDS, TRUTHS, NAMES, conf_thresh=0.25))
    lines = text.splitlines()
    assert lines[0] == "class_id = 0, name = a, ap = 75.56%, ap11 = 76.36%   (TP = 3, FP = 2)"
    assert lines[1] == "class_id = 1, name = b, ap = 100.00%, ap11 = 100.00%   (TP = 1, FP = 1)"
    assert lines[2] == "class_id = 2, name = c, ap = n/a (no ground truth)   (TP = 0, FP = 1)"
    assert " for conf_thresh = 0.25, precision = 0.50, recall = 1.00, F1-score = 0.67" in lines
    assert " for conf_thresh = 0.25, TP = 4, FP = 4, FN = 0, average IoU = 47.92 %" in lines
    assert " mean average precision (mAP@0.50) = 0.877778, or 87.78 %  (area under curve)" in lines
    assert " mean average precision (mAP@0.50) = 0.881818, or 88.18 %  (VOC2007 11-pt)" in lines


def test_no_detections_at_all():
    empty = [ImagePredictions.of([], [], []), ImagePredictions.of([], [], [])]
    ev = evaluate_detections(empty, TRUTHS, NAMES)
    assert [c.ap for c in ev.classes] == [0.0, 0.0, None]
    assert [c.ap11 for c in ev.classes] == [0.0, 0.0, None]
    assert (ev.map, ev.map11, ev.tp, ev.fp, ev.fn) == (0.0, 0.0, 0, 0, 4)
    assert (ev.precision, ev.recall, ev.f1, ev.average_iou) == (0.0, 0.0, 0.0, 0.0)


def test_no_ground_truth_at_all():
    truths = [ImageTruth.of([], []), ImageTruth.of([], [])]
    ev = evaluate_detections(PREDS, truths, NAMES)
    assert all(c.ap is None for c in ev.classes)
    assert ev.map == 0.0 and ev.tp == 0 and ev.fn == 0 and ev.fp == 8


def test_iou_must_be_above_threshold_and_classes_must_agree():
    truth = ImageTruth.of([[0, 0, 1, 1]], [0])
    exactly_half = ImagePredictions.of([[0, 0, 1, 0.5]], [0.9], [0])
    just_above = ImagePredictions.of([[0, 0, 1, 0.51]], [0.9], [0])
    wrong_class = ImagePredictions.of([[0, 0, 1, 1], [0, 0, 1, 1]], [0.9, 0.8], [1, 0])
    assert match_image(exactly_half, truth)[0].tolist() == [0.0]  # darknet and VOC use ">"
    assert match_image(just_above, truth)[0].tolist() == [1.0]
    # the class-1 box does not take the class-0 truth, so the class-0 box is still a TP
    assert match_image(wrong_class, truth)[0].tolist() == [0.0, 1.0]


def test_duplicates_are_false_positives_whatever_the_input_order():
    truth = ImageTruth.of([[0, 0, 1, 1]], [0])
    preds = ImagePredictions.of([[0, 0, 1, 0.9], [0, 0, 1, 1], [0, 0, 0.95, 1]], [0.6, 0.9, 0.7], [0, 0, 0])
    tp, iou = match_image(preds, truth)
    assert tp.tolist() == [0.0, 1.0, 0.0]
    assert iou.round(3).tolist() == [0.9, 1.0, 0.95]


def test_greedy_by_score_takes_best_iou_truth():
    # two truths side by side; the higher-scored detection overlaps both, more the right one
    truth = ImageTruth.of([[0, 0, 0.5, 1], [0.5, 0, 1, 1]], [0, 0])
    preds = ImagePredictions.of([[0.3, 0, 1, 1], [0.5, 0, 1, 1]], [0.9, 0.8], [0, 0])
    tp, _ = match_image(preds, truth)
    # the first takes the right truth (IoU .714); the second finds it taken: duplicate, FP
    assert tp.tolist() == [1.0, 0.0]


def test_ap_functions_on_textbook_curves():
    precision, recall = pr_curve([1.0, 1.0, 1.0], 3)
    assert ap_area(precision, recall) == pytest.approx(1.0)
    assert ap_11point(precision, recall) == pytest.approx(1.0)
    precision, recall = pr_curve([0.0, 1.0], 2)  # FP then TP: p = 0, .5 ; r = 0, .5
    assert ap_area(precision, recall) == pytest.approx(0.25)
    assert ap_11point(precision, recall) == pytest.approx(6 * 0.5 / 11)
    precision, recall = pr_curve([], 5)
    assert ap_area(precision, recall) == 0.0 and ap_11point(precision, recall) == 0.0
