import numpy as np
import pytest
import torch

from raykd.eval.tasks.feature_analysis import feature_analysis, feature_statistics, uniformity

from ..fakes import FakeDualEncoder, as_images


def test_hand_computed_cases():
    x = torch.eye(3)
    same = feature_statistics(x, x)
    assert same["modality_gap"] == pytest.approx(0) and same["alignment"] == pytest.approx(0)
    assert same["uniformity_image"] == pytest.approx(-4.0)  # all pairwise squared distances are 2
    assert same["feature_std_image"] == pytest.approx(np.std([1, 0, 0], ddof=1))
    flipped = feature_statistics(x, -x)
    assert flipped["modality_gap"] == pytest.approx(2 * np.sqrt(3) / 3)  # ||2 * mean(e_i)||
    assert flipped["alignment"] == pytest.approx(4.0)


def test_matches_numpy_reference():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((50, 6)), rng.standard_normal((50, 6))
    out = feature_statistics(torch.tensor(a), torch.tensor(b))
    x, y = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)
    d2 = ((x[:, None] - x[None]) ** 2).sum(-1)[np.triu_indices(50, k=1)]
    assert out["uniformity_image"] == pytest.approx(np.log(np.mean(np.exp(-2 * d2))))
    assert out["alignment"] == pytest.approx(np.mean(((x - y) ** 2).sum(1)))
    assert out["modality_gap"] == pytest.approx(np.linalg.norm(x.mean(0) - y.mean(0)))
    assert out["feature_std_text"] == pytest.approx(y.std(0, ddof=1).mean())
    with pytest.raises(ValueError, match="shape"):
        feature_statistics(torch.tensor(a), torch.tensor(b[:3]))


def test_task_pairs_captions_with_their_images():
    feats = torch.eye(4)[:, :4]
    model = FakeDualEncoder(dim=4, text_fn=lambda t: np.eye(4)[int(t[-1])])
    out = feature_analysis(model, as_images(feats), ["img 0", "img 1", "also 1", "img 2", "img 3"],
                           [0, 1, 1, 2, 3], "toy")
    assert out["feature_analysis/toy/alignment"] == pytest.approx(0, abs=1e-9)
    assert set(out) == {f"feature_analysis/toy/{k}" for k in ("modality_gap", "alignment", "uniformity_image",
                                                               "uniformity_text", "feature_std_image",
                                                               "feature_std_text")}
    assert uniformity(torch.eye(2)) == pytest.approx(-4.0)
