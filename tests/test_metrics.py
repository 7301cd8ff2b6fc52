"""Metrics against confusion matrices and scores worked out by hand."""
import json
import math
import warnings

import numpy
import pytest

from fcnlite.metrics import (ConfusionMatrix, binary_metrics, confusion_matrix, format_metrics,
                             segmentation_metrics)

# Three classes; class 2 appears in neither the ground truth nor the predictions (the
# pixel labelled 255 is predicted 2, but void pixels are not counted).
#   pixel      0  1  2  3  4  5    6  7
LABELS = [0, 0, 0, 1, 1, 255, 0, 1]
PREDICTIONS = [0, 1, 0, 1, 0, 2, 0, 1]
# counted (truth -> prediction): 0->0 three times, 0->1 once, 1->1 twice, 1->0 once
HAND_MATRIX = [[3, 1, 0],
               [1, 2, 0],
               [0, 0, 0]]


def test_confusion_matrix_rows_are_truth_columns_prediction_and_void_is_left_out():
    matrix = confusion_matrix(numpy.array(LABELS), numpy.array(PREDICTIONS), n_classes=3)
    assert matrix.tolist() == HAND_MATRIX
    # HAND_MATRIX is symmetric, so it reads the same with rows and columns swapped: a pixel of class 0
    # predicted 2 (and none of class 2 predicted 0) tells them apart: row 0 (truth), column 2 (prediction)
    lopsided = confusion_matrix(numpy.array([0, 0, 1, 255]), numpy.array([2, 0, 1, 0]), n_classes=3)
    assert lopsided.tolist() == [[1, 0, 1],
                                 [0, 1, 0],
                                 [0, 0, 0]]


def test_confusion_matrix_of_images_is_the_sum_over_pixels():
    labels = numpy.array(LABELS).reshape(2, 4)
    predictions = numpy.array(PREDICTIONS).reshape(2, 4)
    assert confusion_matrix(labels, predictions, 3).tolist() == HAND_MATRIX


def test_confusion_matrix_rejects_labels_and_predictions_outside_the_classes():
    with pytest.raises(ValueError, match="label value 5 is not a class"):
        confusion_matrix(numpy.array([0, 5]), numpy.array([0, 0]), 3)
    with pytest.raises(ValueError, match="prediction value 3 is not a class"):
        confusion_matrix(numpy.array([0, 1]), numpy.array([0, 3]), 3)



def test_a_transposed_prediction_is_refused_naming_both_shapes(xp):
    labels = xp.zeros((6, 4), dtype=xp.uint8)
    predictions = xp.zeros((4, 6), dtype=xp.uint8)   # as many pixels, another layout
    with pytest.raises(ValueError, match=r"labels have shape \(6, 4\) but predictions \(4, 6\)"):
        ConfusionMatrix(3).update(labels, predictions)


def test_probabilities_given_as_predictions_are_refused_not_truncated(xp):
    foreground = xp.asarray([[0, 1], [1, 0]], dtype=xp.uint8)
    probabilities = xp.where(foreground == 1, 0.9, 0.1).astype(xp.float32)   # truncated, all class 0
    with pytest.raises(TypeError, match="predictions are float32: give class indices"):
        ConfusionMatrix(2).update(foreground, probabilities)


def test_float_labels_are_refused_not_truncated(xp):
    with pytest.raises(TypeError, match=r"labels are float64: give the class index of each pixel as integers "
                                        r"\(0\.\.2, 255 for void\)"):
        ConfusionMatrix(3).update(xp.full((2, 2), 1.7), xp.ones((2, 2), dtype=xp.int64))


def test_boolean_masks_count_as_classes_0_and_1():
    truth = numpy.array([[True, False], [True, True]])
    assert confusion_matrix(truth, numpy.ones((2, 2), dtype=bool), 2).tolist() == [[0, 1], [0, 3]]


def test_empty_arrays_count_nothing_whatever_their_dtype():
    # numpy.array([]) is float64: no pixel of it is a truncated class
    assert confusion_matrix(numpy.array([]), numpy.array([]), 2).tolist() == [[0, 0], [0, 0]]

def test_metrics_of_the_hand_example_with_an_absent_class():
    metrics = segmentation_metrics(numpy.array(HAND_MATRIX), ["background", "road", "car"])
    # 5 of the 7 counted pixels are right
    assert metrics["pixel_accuracy"] == pytest.approx(5 / 7)
    # accuracy per class: 3/4 and 2/3; class 2 has no pixels (0/0) and is left out of the mean
    assert metrics["mean_accuracy"] == pytest.approx((3 / 4 + 2 / 3) / 2)
    # IU = n_ii / (t_i + predicted_i - n_ii): 3/(4+4-3) and 2/(3+3-2); class 2 left out
    assert metrics["per_class_iu"] == {"background": pytest.approx(3 / 5), "road": pytest.approx(2 / 4), "car": None}
    assert metrics["mean_iu"] == pytest.approx((3 / 5 + 2 / 4) / 2)
    # frequency weighted: (4/7) * 3/5 + (3/7) * 2/4
    assert metrics["fwiu"] == pytest.approx(4 / 7 * 3 / 5 + 3 / 7 * 2 / 4)
    assert metrics["per_class_accuracy"]["car"] is None
    assert metrics["n_pixels"] == 7
    json.dumps(metrics)  # None, not NaN: JSON-safe


def test_a_class_predicted_but_absent_from_the_truth_counts_in_mean_iu_with_zero():
    matrix = confusion_matrix(numpy.array([0, 0, 1, 1]), numpy.array([0, 2, 1, 1]), 3)
    assert matrix.tolist() == [[1, 0, 1], [0, 2, 0], [0, 0, 0]]
    metrics = segmentation_metrics(matrix)
    assert metrics["pixel_accuracy"] == pytest.approx(3 / 4)
    assert metrics["mean_accuracy"] == pytest.approx((1 / 2 + 1) / 2)     # class 2: no truth, no accuracy
    assert metrics["per_class_iu"] == {"0": pytest.approx(1 / 2), "1": pytest.approx(1.0), "2": 0.0}
    assert metrics["mean_iu"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert metrics["fwiu"] == pytest.approx(2 / 4 * 1 / 2 + 2 / 4 * 1)


def test_an_empty_matrix_gives_nan_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics = segmentation_metrics(numpy.zeros((3, 3), dtype=numpy.int64))
    assert all(math.isnan(metrics[key]) for key in ("pixel_accuracy", "mean_accuracy", "mean_iu", "fwiu"))
    assert set(metrics["per_class_iu"].values()) == {None}


def test_accumulating_images_equals_one_matrix_of_all_pixels(xp):
    running = ConfusionMatrix(3)
    running.update(xp.asarray(LABELS[:4]), xp.asarray(PREDICTIONS[:4]))
    running.update(xp.asarray(LABELS[4:]), xp.asarray(PREDICTIONS[4:]))
    assert running.matrix.tolist() == HAND_MATRIX
    assert running.metrics()["mean_iu"] == pytest.approx(0.55)
    running.reset()
    assert running.matrix.sum() == 0


def test_binary_metrics_against_hand_counts():
    # 100 pixels: 50 background right, 10 background called road, 5 road missed, 35 road right
    matrix = numpy.array([[50, 10], [5, 35]])
    tp, fp, fn = 35, 10, 5
    scores = binary_metrics(matrix, beta=2.0)
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    assert (scores["tp"], scores["fp"], scores["fn"]) == (tp, fp, fn)
    assert scores["precision"] == pytest.approx(7 / 9)
    assert scores["recall"] == pytest.approx(7 / 8)
    assert scores["f1"] == pytest.approx(2 * precision * recall / (precision + recall))
    assert scores["f1"] == pytest.approx(70 / 85)
    assert scores["iou"] == pytest.approx(35 / 50)
    assert scores["fbeta"] == pytest.approx(245 / 287)   # (1 + 4) P R / (4 P + R)
    assert scores["beta"] == 2.0


def test_binary_metrics_with_more_classes_is_positive_against_the_rest():
    matrix = numpy.array([[5, 1, 0],
                          [2, 6, 1],
                          [0, 3, 4]])
    scores = binary_metrics(matrix, positive=1)
    # tp = 6, fp = column 1 without tp = 1 + 3, fn = row 1 without tp = 2 + 1
    assert (scores["tp"], scores["fp"], scores["fn"]) == (6, 4, 3)
    assert scores["iou"] == pytest.approx(6 / 13)
    assert scores["f1"] == scores["fbeta"] == pytest.approx(12 / 19)



@pytest.mark.parametrize("positive", [-1, 3, 1.0])
def test_binary_metrics_refuses_a_positive_class_that_is_not_a_class_index(positive):
    # -1 used to index from the end and score class 2 without a word
    with pytest.raises(ValueError, match=rf"positive is {positive!r}: give the index of the positive class, 0\.\.2"):
        binary_metrics(numpy.eye(3, dtype=numpy.int64), positive=positive)

def test_binary_metrics_undefined_values_are_none_and_quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nothing_positive = binary_metrics(numpy.array([[10, 0], [0, 0]]))
        all_wrong = binary_metrics(numpy.array([[0, 3], [4, 0]]))
    assert [nothing_positive[key] for key in ("precision", "recall", "f1", "iou", "fbeta")] == [None] * 5
    assert (all_wrong["precision"], all_wrong["recall"], all_wrong["f1"], all_wrong["iou"]) == (0.0, 0.0, 0.0, 0.0)
    assert all_wrong["fbeta"] == 0.0


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
def test_f_beta_is_defined_wherever_f1_is(beta):
    # nothing predicted as the class, some pixels of it missed: precision is 0/0, recall 0, F1 0
    missed = binary_metrics(numpy.array([[10, 0], [5, 0]]), beta=beta)
    assert missed["precision"] is None and missed["recall"] == 0.0
    assert missed["f1"] == 0.0 and missed["fbeta"] == 0.0


def test_format_metrics_lists_every_class_by_name():
    metrics = segmentation_metrics(numpy.array(HAND_MATRIX), ["background", "road", "car"])
    text = format_metrics(metrics)
    assert "mean IU         0.5500" in text
    lines = text.splitlines()
    assert any(line.startswith("road") and "0.5000" in line for line in lines)
    assert any(line.startswith("car") and "n/a" in line for line in lines)


def test_format_metrics_shows_foreground_scores_and_f_beta():
    metrics = segmentation_metrics(numpy.array([[50, 10], [5, 35]]), ["background", "road"])
    metrics.update(binary_metrics(numpy.array([[50, 10], [5, 35]]), beta=2.0))
    text = format_metrics(metrics)
    assert "iou             0.7000" in text
    assert "F2              0.8537" in text


def test_an_empty_confusion_matrix_says_why_it_counted_nothing():
    matrix = ConfusionMatrix(3)
    matrix.update(numpy.full((2, 2), 255), numpy.zeros((2, 2), numpy.int64))   # void throughout
    assert matrix.why_empty() == "its masks are void (255) throughout"
    matrix.skipped.append("a.png: cannot be decoded as an image")
    assert matrix.why_empty() == "every image was skipped as bad (the first: a.png: cannot be decoded as an image)"
    matrix.update(numpy.zeros((2, 2), numpy.int64), numpy.zeros((2, 2), numpy.int64))
    assert matrix.why_empty() is None
