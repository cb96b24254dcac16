"""CrossEntropy: supervised classification on student logits."""

import math

import pytest
import torch

from raykd.losses import get_loss

from .helpers import close


def _reference(logits, labels):
    terms = []
    for row, y in zip(logits, labels.tolist()):
        if y == -1:
            continue
        terms.append(-(row[y] - torch.log(torch.exp(row).sum())))
    return sum(terms) / len(terms)


def test_matches_reference_and_skips_unlabelled():
    logits = torch.randn(6, 5, dtype=torch.float64)
    labels = torch.tensor([0, 4, -1, 2, 2, -1])
    value = get_loss("CrossEntropy")(torch.randn(6, 3), logits, labels=labels)
    close(value, _reference(logits, labels), tol=1e-5)


def test_closed_form_uniform_logits():
    value = get_loss("CrossEntropy")(None, torch.zeros(3, 7), labels=torch.tensor([1, 2, 3]))
    assert value.item() == pytest.approx(math.log(7))


def test_needs_labels():
    with pytest.raises(ValueError, match="CrossEntropy.*labels"):
        get_loss("CrossEntropy")(torch.randn(2, 3), torch.randn(2, 3))
