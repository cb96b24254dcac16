"""ELEVATER metrics as vision-evaluation 0.2.9 computes them (microsoft/vision-evaluation
``vision_evaluation/evaluators.py``): 11-point mAP and ROC-AUC against hand-computed cases, mean-per-class
against scikit-learn's balanced accuracy over the classes present."""
import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from raykd.eval.elevater.metrics import (accuracy, get_metric, interpolated_average_precision, map_11_points,
                                         mean_per_class, roc_auc, score)


def test_11_point_ap_hand_computed():
    # ranks: +(P 1, R .5), -(P .5, R .5), +(P 2/3, R 1), -(P .5, R 1)
    # recall levels 0 .. .5 -> 1 (6 levels); .6 .. 1 -> 2/3 (5 levels)
    ap = interpolated_average_precision(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.6]))
    assert ap == pytest.approx((6 * 1 + 5 * 2 / 3) / 11)  # 28/33


def test_11_point_ap_the_recall_zero_level_is_always_one():
    # the only positive is ranked last: precision 1/3 at recall 1; the level 0 takes the curve's end point (R 0, P 1)
    ap = interpolated_average_precision(np.array([0, 0, 1]), np.array([0.9, 0.8, 0.7]))
    assert ap == pytest.approx((1 + 10 / 3) / 11)  # 13/33


def test_11_point_ap_counts_points_exactly_at_recall_03_06_07():
    # 10 positives ranked + + + - + + + - - + + + +: (R .3, P 1), (R .6, P 6/7), (R .7, P 7/10) ... (R 1, P 10/13).
    # Levels walked from 1 down to 0 (vision-evaluation): 1, .9, .8, .7 -> 10/13; .6, .5, .4 -> 6/7; .3 .. 0 -> 1.
    # linspace(0, 1, 11) levels 0.30000000000000004, 0.6000000000000001 miss the points at .3 and .6 (0.8561).
    ranked = np.array([1, 1, 1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1])
    ap = interpolated_average_precision(ranked, np.linspace(1, 0.1, len(ranked)))
    assert ap == pytest.approx((4 * 10 / 13 + 3 * 6 / 7 + 4 * 1) / 11)
    assert round(ap, 4) == 0.8771


def test_11_point_map_averages_classes_with_positives():
    targets = np.array([[1, 1, 0], [0, 0, 0], [1, 1, 0], [0, 0, 0]])
    probs = np.array([[0.9, 0.9, 0.1], [0.8, 0.1, 0.3], [0.7, 0.8, 0.2], [0.6, 0.2, 0.4]])
    # class 0: 28/33 (as above); class 1 ranked perfectly: 1; class 2 has no positive: skipped
    assert map_11_points(targets, probs) == pytest.approx((28 / 33 + 1) / 2)
    assert get_metric("11point_mAP") is map_11_points


def test_11_point_map_errors():
    with pytest.raises(ValueError, match="one shape"):
        map_11_points(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="no class has a positive"):
        map_11_points(np.zeros((3, 2)), np.ones((3, 2)))


def test_roc_auc_hand_computed():
    # positive-negative pairs ranked right: (.35 > .1), (.8 > .1), (.8 > .4); wrong: (.35 < .4) -> 3/4
    probs1 = np.array([0.1, 0.4, 0.35, 0.8])
    assert roc_auc(np.array([0, 0, 1, 1]), np.stack([1 - probs1, probs1], 1)) == pytest.approx(0.75)
    # a tie counts one half
    assert roc_auc(np.array([0, 1]), np.array([[0.5, 0.5], [0.5, 0.5]])) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="two classes"):
        roc_auc(np.array([0, 1]), np.ones((2, 3)) / 3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mean_per_class_is_balanced_accuracy_over_the_classes_present(seed):
    rng = np.random.default_rng(seed)
    labels = rng.choice(5, size=40, p=[0.5, 0.2, 0.15, 0.1, 0.05])
    probs = rng.dirichlet(np.ones(6), size=40)  # class 5 is never a label: its column is dropped before the arg-max
    assert mean_per_class(labels, probs) == pytest.approx(balanced_accuracy_score(labels, probs[:, :5].argmax(1)))
    assert accuracy(labels, probs) == pytest.approx(np.mean(labels == probs.argmax(1)))


def test_mean_per_class_drops_the_column_of_an_absent_class():
    labels = np.array([0, 1])
    probs = np.array([[0.3, 0.2, 0.5], [0.1, 0.6, 0.3]])  # class 2 (absent) wins row 0 over all columns
    assert mean_per_class(labels, probs) == pytest.approx(1.0)  # over columns 0, 1 both rows are right


def test_mean_per_class_hand_computed():
    labels = np.array([0, 0, 0, 1])
    probs = np.eye(2)[[0, 0, 1, 1]]  # class 0: 2/3 right, class 1: 1/1
    assert mean_per_class(labels, probs) == pytest.approx((2 / 3 + 1) / 2)
    assert accuracy(labels, probs) == pytest.approx(3 / 4)


def test_score_adds_extras_for_multi_class_and_survives_nan():
    probs = np.eye(6)[[0, 1, 2, 3, 4, 0]]
    out = score("mean-per-class", np.arange(6), probs)
    assert out["mean-per-class"] == pytest.approx(5 / 6) and out["top1"] == pytest.approx(5 / 6)
    assert {"top5", "mean_per_class_recall"} <= set(out)
    assert np.isnan(score("accuracy", np.arange(2), np.full((2, 2), np.nan))["accuracy"])
    with pytest.raises(ValueError, match="unknown ELEVATER metric"):
        get_metric("top1")
