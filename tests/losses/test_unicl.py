"""UniCL: label-aware targets against a loop reference; InfoNCE when there are no labels."""

import pytest
import torch

from raykd.losses import get_loss

from .helpers import assert_two_processes_match_single, batch, close


def _reference(teacher, student, labels, scale):
    img = student / student.norm(dim=1, keepdim=True)
    txt = teacher / teacher.norm(dim=1, keepdim=True)
    n = len(labels)
    same = [[i == j or (labels[i] >= 0 and labels[i] == labels[j]) for j in range(n)] for i in range(n)]
    total = 0.0
    for query, keys in ((img, txt), (txt, img)):
        logits = scale * query @ keys.T
        log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        for i in range(n):
            positives = [j for j in range(n) if same[i][j]]
            total = total - sum(log_prob[i, j] for j in positives) / len(positives) / n
    return total / 2


def test_matches_reference():
    b = batch(seed=18, n_classes=2)
    assert (b["labels"] == -1).any() and (b["labels"] >= 0).sum() > 2
    value = get_loss("UniCL")(b["teacher"], b["student"], logit_scale=b["logit_scale"], labels=b["labels"])
    close(value, _reference(b["teacher"], b["student"], b["labels"].tolist(), b["logit_scale"]), tol=1e-5)


def test_without_class_labels_is_infonce():
    b = batch(seed=19)
    kwargs = {"logit_scale": b["logit_scale"]}
    unicl = get_loss("UniCL")(b["teacher"], b["student"], labels=torch.full((8,), -1), **kwargs)
    close(unicl, get_loss("InfoNCE")(b["teacher"], b["student"], **kwargs))


@pytest.mark.parametrize("missing", ["labels", "logit_scale"])
def test_missing_argument_is_a_clear_error(missing):
    b = batch(seed=20)
    kwargs = {"labels": b["labels"], "logit_scale": b["logit_scale"]}
    kwargs[missing] = None
    with pytest.raises(ValueError, match=f"UniCL.*{missing}"):
        get_loss("UniCL")(b["teacher"], b["student"], **kwargs)


def test_two_processes_match_single_process():
    b = batch(8, 16, seed=21, n_classes=2)  # classes shared across the two ranks' halves
    assert_two_processes_match_single("UniCL", {}, [b])
