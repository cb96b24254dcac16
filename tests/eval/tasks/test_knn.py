import numpy as np
import torch

from raykd.eval.tasks.knn import knn, knn_votes

from ..fakes import FakeDualEncoder, as_images, blobs

CLASSES = ["a", "b", "c", "d"]


def test_votes_hand_computed():
    train = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.0]])
    train_y = torch.tensor([0, 1, 1, 2])
    test = torch.tensor([[2.0, 0.0]])  # normalised to [1, 0]; sims 1, 0.8, 0, -1 -> top-3 are rows 0, 1, 2
    votes = knn_votes(train, train_y, test, num_classes=3, k=3, temperature=0.5)
    expected = torch.tensor([[np.exp(1 / 0.5), np.exp(0.8 / 0.5) + np.exp(0.0), 0.0]], dtype=torch.float32)
    torch.testing.assert_close(votes, expected)
    # k larger than the memory bank is capped; chunking does not change the result
    big = knn_votes(train, train_y, test.repeat(5, 1), 3, k=50, temperature=0.5, chunk_size=2)
    torch.testing.assert_close(big[0, 2], torch.tensor(np.exp(-1 / 0.5), dtype=torch.float32))
    assert torch.allclose(big, big[:1].expand_as(big))


def test_separable_features_and_random_labels():
    x, y = blobs(400, len(CLASSES), 10, separation=5.0, seed=0)
    model = FakeDualEncoder(dim=4, image_dim=10)
    out = knn(model, as_images(x[:300]), y[:300], as_images(x[300:]), y[300:], CLASSES, "blobs")
    assert out["knn/blobs/top1"] > 0.95 and set(out) == {"knn/blobs/top1", "knn/blobs/mean_per_class_recall"}
    rand = np.random.default_rng(5).integers(0, 4, size=400)
    out = knn(model, as_images(x[:300]), rand[:300], as_images(x[300:]), rand[300:], CLASSES, "rand")
    assert out["knn/rand/top1"] < 0.45  # chance 0.25


def test_matches_sklearn_weighted_knn():
    """scikit-learn's KNeighborsClassifier with cosine distance d = 1 - sim and weights exp((1 - d) / T)."""
    from sklearn.neighbors import KNeighborsClassifier

    x, y = blobs(300, len(CLASSES), 6, separation=1.5, seed=3)  # overlapping blobs: not every vote is unanimous
    k, t = 7, 0.1
    ref = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute",
                               weights=lambda d: np.exp((1 - d) / t)).fit(x[:200], y[:200])
    votes = knn_votes(torch.as_tensor(x[:200]), torch.as_tensor(y[:200]), torch.as_tensor(x[200:]), len(CLASSES), k, t)
    np.testing.assert_array_equal(votes.argmax(1).numpy(), ref.predict(x[200:]))
    np.testing.assert_allclose((votes / votes.sum(1, keepdim=True)).numpy(), ref.predict_proba(x[200:]), atol=1e-5)
