import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import balanced_accuracy_score

from raykd.eval.tasks import get_task
from raykd.eval.tasks.zeroshot import zeroshot_classification, zeroshot_classifier

from ..fakes import FakeDualEncoder, as_images

CLASSES = ["cat", "dog", "car", "tree", "boat", "fish"]


def class_direction_model(dim: int = len(CLASSES), noise: float = 0.0) -> FakeDualEncoder:
    """Text embedding of any prompt containing class c is e_c (+ template-dependent noise)."""
    def text_fn(prompt: str) -> np.ndarray:
        c = next(i for i, name in enumerate(CLASSES) if f" {name}" in f" {prompt}")
        vec = np.eye(dim)[c]
        return vec + noise * np.random.default_rng(len(prompt)).standard_normal(dim)
    return FakeDualEncoder(dim=dim, text_fn=text_fn)


def test_classifier_shape_and_unit_columns():
    w = zeroshot_classifier(class_direction_model(noise=0.3), CLASSES, ["a {}.", "a photo of a {}.", "{}"])
    assert w.shape == (len(CLASSES), len(CLASSES))
    torch.testing.assert_close(w.norm(dim=0), torch.ones(len(CLASSES)))
    assert (w.argmax(dim=0) == torch.arange(len(CLASSES))).all()


def test_noisy_images_of_known_directions_are_all_correct():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, len(CLASSES), size=60)
    feats = np.eye(len(CLASSES))[labels] + 0.1 * rng.standard_normal((60, len(CLASSES)))
    out = zeroshot_classification(class_direction_model(noise=0.05), as_images(feats), labels, CLASSES,
                                  ["a photo of a {}.", "a {} in a video game."], "toy", batch_size=16)
    assert out == {"zeroshot/toy/top1": 1.0, "zeroshot/toy/top5": 1.0, "zeroshot/toy/mean_per_class_recall": 1.0}


def test_hand_computed_top1_top5_mean_per_class():
    # Class weights are the basis vectors, so logits are the (normalised) score rows below.
    scores = torch.tensor([
        [9., 1, 2, 3, 4, 5],  # label 0: rank 1
        [9., 8, 1, 2, 3, 4],  # label 1: rank 2
        [9., 8, 7, 6, 5, 1],  # label 5: rank 6 -> not in top 5
        [1., 2, 3, 4, 9, 5],  # label 4: rank 1
        [1., 2, 9, 4, 5, 6],  # label 0: rank 6
    ])
    labels = np.array([0, 1, 5, 4, 0])
    out = zeroshot_classification(class_direction_model(), as_images(scores), labels, CLASSES, ["{}"], "hand")
    assert out["zeroshot/hand/top1"] == pytest.approx(2 / 5)
    assert out["zeroshot/hand/top5"] == pytest.approx(3 / 5)
    # per-class recall over classes present: class0 1/2, class1 0, class4 1, class5 0 -> mean 3/8
    assert out["zeroshot/hand/mean_per_class_recall"] == pytest.approx(3 / 8)


def test_mean_per_class_recall_is_balanced_accuracy_and_no_top5_below_5_classes():
    rng = np.random.default_rng(1)
    classes = CLASSES[:3]
    labels = rng.integers(0, 3, size=50)
    feats = torch.randn(50, 6, generator=torch.Generator().manual_seed(2))
    feats[:, 3:] = 0
    out = zeroshot_classification(class_direction_model(), as_images(feats), labels, classes, ["{}"], "rand")
    preds = F.normalize(feats[:, :3], dim=-1).argmax(dim=1).numpy()
    assert set(out) == {"zeroshot/rand/top1", "zeroshot/rand/mean_per_class_recall"}
    assert out["zeroshot/rand/mean_per_class_recall"] == pytest.approx(balanced_accuracy_score(labels, preds))
    assert out["zeroshot/rand/top1"] == pytest.approx(float((preds == labels).mean()))


def test_registered():
    assert get_task("zeroshot") is zeroshot_classification
    with pytest.raises(ValueError, match="zeroshot"):
        get_task("zero_shot")
