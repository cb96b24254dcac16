import numpy as np
import pytest
import torch.nn.functional as F
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score, normalized_mutual_info_score

from raykd.eval.tasks.clustering import cluster_metrics, clustering

from ..fakes import FakeDualEncoder, as_images, blobs


def test_matches_sklearn_reference_and_separable_blobs():
    x, y = blobs(150, 3, 6, separation=6.0, seed=1)
    out = clustering(FakeDualEncoder(dim=2, image_dim=6), as_images(x), y, ["a", "b", "c"], "blobs")
    xn = F.normalize(torch.as_tensor(x, dtype=torch.float32), dim=-1).numpy()
    pred = KMeans(n_clusters=3, n_init=10, random_state=0).fit_predict(xn)
    assert out["clustering/blobs/nmi"] == pytest.approx(normalized_mutual_info_score(y, pred))
    assert out["clustering/blobs/ami"] == pytest.approx(adjusted_mutual_info_score(y, pred))
    assert out["clustering/blobs/ari"] == pytest.approx(adjusted_rand_score(y, pred))
    assert out["clustering/blobs/nmi"] > 0.9


def test_random_labels_score_near_zero():
    x, _ = blobs(200, 4, 6, seed=2)
    y = np.random.default_rng(0).integers(0, 4, size=200)
    out = cluster_metrics(x, y, 4)
    assert abs(out["ari"]) < 0.1 and abs(out["ami"]) < 0.1


def test_hand_computed_case():
    """Three nearby points and one far one, k = 2: clusters {0, 1, 2}, {3} against labels [0, 0, 1, 1].
    Contingency [[2, 0], [1, 1]]: ARI = (1 - 2 * 3 / 6) / ((2 + 3) / 2 - 2 * 3 / 6) = 0; NMI = MI / mean(H)."""
    out = cluster_metrics(np.array([[0.0], [0.1], [0.2], [10.0]]), np.array([0, 0, 1, 1]), 2)
    mi = 0.5 * np.log(4 / 3) + 0.25 * np.log(2 / 3) + 0.25 * np.log(2)
    h_labels, h_clusters = np.log(2), -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
    assert out["ari"] == pytest.approx(0.0, abs=1e-12)
    assert out["nmi"] == pytest.approx(mi / ((h_labels + h_clusters) / 2))
    perfect = cluster_metrics(np.array([[0.0], [0.1], [5.0], [5.1]]), np.array([1, 1, 0, 0]), 2)
    assert perfect == pytest.approx({"nmi": 1.0, "ami": 1.0, "ari": 1.0})
