import numpy as np
import pytest

from raykd.eval.tasks.linear_probe import (DEFAULT_C_GRID, fit_sklearn, linear_probe, linear_probe_features,
                                           select_regularisation)

from ..fakes import FakeDualEncoder, as_images, blobs

CLASSES = ["a", "b", "c", "d", "e"]


def probe_inputs(random_labels: bool = False, dim: int = 12):
    x, y = blobs(400, len(CLASSES), dim, separation=5.0, seed=0)
    if random_labels:
        y = np.random.default_rng(1).integers(0, len(CLASSES), size=len(y))
    return as_images(x[:250]), y[:250], as_images(x[250:]), y[250:]


@pytest.mark.parametrize("solver", ["sklearn", "torch"])
def test_learns_separable_features(solver):
    model = FakeDualEncoder(dim=4, image_dim=12)  # project=False: the probe sees the raw 12 dims
    tr_x, tr_y, te_x, te_y = probe_inputs()
    grid = (1e-2, 1.0) if solver == "sklearn" else (0.0, 1e-2)  # a short grid keeps the test fast
    out = linear_probe(model, tr_x, tr_y, te_x, te_y, CLASSES, "blobs", solver=solver, grid=grid)
    assert out["linear_probe/blobs/top1"] > 0.95
    assert out["linear_probe/blobs/mean_per_class_recall"] > 0.95
    assert "linear_probe/blobs/top5" in out
    reg_key = "best_C" if solver == "sklearn" else "best_weight_decay"
    assert f"linear_probe/blobs/{reg_key}" in out


@pytest.mark.parametrize("solver", ["sklearn", "torch"])
def test_random_labels_stay_near_chance(solver):
    tr_x, tr_y, te_x, te_y = probe_inputs(random_labels=True)
    grid = (1e-2, 1.0) if solver == "sklearn" else (0.0, 1e-2)
    out = linear_probe(FakeDualEncoder(dim=4, image_dim=12), tr_x, tr_y, te_x, te_y, CLASSES, "rand", solver=solver,
                       grid=grid)
    assert out["linear_probe/rand/top1"] < 0.4  # chance is 0.2


def test_regularisation_is_chosen_on_validation():
    x, y = blobs(100, 3, 4, seed=2)
    seen = []

    def fit(tr_x, tr_y, val_x, num_classes, reg):
        """Only reg == 2.0 learns (nearest centroid); the others always predict class 0."""
        seen.append((len(tr_x), len(val_x), reg))
        if reg != 2.0:
            return np.zeros((len(val_x), num_classes))
        centroids = np.stack([tr_x[tr_y == c].mean(0) for c in range(num_classes)])
        return val_x @ centroids.T - 0.5 * (centroids ** 2).sum(1)

    assert select_regularisation(x, y, fit, [0.1, 0.5, 2.0, 8.0], 3, val_fraction=0.2) == 2.0
    assert seen == [(80, 20, reg) for reg in (0.1, 0.5, 2.0, 8.0)]


def test_sklearn_scores_cover_all_classes_and_binary_case():
    x, y = blobs(60, 2, 3, seed=3)
    scores = fit_sklearn(x, y, x, num_classes=4, reg=1.0)
    assert scores.shape == (60, 4) and np.isneginf(scores[:, 2:]).all()
    assert (scores.argmax(1) == y).mean() > 0.9


def test_features_api_and_unknown_solver():
    x, y = blobs(120, 3, 5, seed=4)
    out = linear_probe_features(x[:80], y[:80], x[80:], y[80:], solver="sklearn", grid=[1.0])
    assert out["best_C"] == 1.0 and set(out) == {"top1", "mean_per_class_recall", "best_C"}
    assert DEFAULT_C_GRID[0] < DEFAULT_C_GRID[-1]
    with pytest.raises(ValueError, match="sklearn"):
        linear_probe_features(x, y, x, y, solver="svm")


def test_metrics_match_a_plain_sklearn_pipeline():
    """Standardise with training statistics, fit LogisticRegression(C) on the whole training set, score the test set."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.preprocessing import StandardScaler

    x, y = blobs(300, len(CLASSES), 8, separation=2.0, seed=5)
    out = linear_probe_features(x[:200], y[:200], x[200:], y[200:], len(CLASSES), grid=[0.3])
    scaler = StandardScaler().fit(x[:200])
    pred = LogisticRegression(C=0.3, max_iter=1000).fit(scaler.transform(x[:200]), y[:200]).predict(
        scaler.transform(x[200:]))
    assert out["top1"] == pytest.approx((pred == y[200:]).mean())
    assert out["mean_per_class_recall"] == pytest.approx(balanced_accuracy_score(y[200:], pred))
    assert 0.5 < out["top1"] < 1.0
