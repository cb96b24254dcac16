"""ProtoCLIP: InfoNCE until prototypes exist, then prototype cross-entropy terms; k-means."""

import math

import pytest
import torch

from raykd.losses import get_loss
from raykd.losses.protoclip import spherical_kmeans

from .helpers import assert_state_round_trip, assert_two_processes_match_single, batch, close, unit

HP = {"n_prototypes": 4}


def _set_prototypes(loss):
    """The same 40 episode features in total: under two workers each passes its half (k-means all-reduces)."""
    from raykd import distributed as D

    g = torch.Generator().manual_seed(57)
    features = torch.randn(40, 16, generator=g, dtype=torch.float64)
    loss.update_prototypes(features.chunk(D.world_size())[D.rank()])


def _ce(logits, targets):
    return -(targets * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()


def _reference(b, protos, soft_temperature=None, proto_scale=1 / 0.07):
    s, t, scale = unit(b["student"]), unit(b["teacher"]), b["logit_scale"]
    eye = torch.eye(len(s), dtype=s.dtype)
    nce = (_ce(scale * s @ t.T, eye) + _ce(scale * t @ s.T, eye)) / 2
    label = (t @ protos.T).argmax(dim=1)
    if soft_temperature is None:
        targets = torch.nn.functional.one_hot(label, len(protos)).to(s.dtype)
    else:  # the authors' soft target: the label prototype's similarities to all prototypes
        targets = torch.softmax(protos[label] @ protos.T / soft_temperature, dim=1)
    # their L_proto is the mean of the image and text terms
    return nce + 0.5 * _ce(proto_scale * s @ protos.T, targets) + 0.5 * _ce(proto_scale * t @ protos.T, targets)


def test_infonce_only_until_prototypes_are_set():
    b = batch(seed=58)
    loss = get_loss("ProtoCLIP", **HP).double()
    value = loss(b["teacher"], b["student"], logit_scale=b["logit_scale"])
    close(value, get_loss("InfoNCE")(b["teacher"], b["student"], logit_scale=b["logit_scale"]))
    assert not bool(loss.has_prototypes)


@pytest.mark.parametrize("soft", [False, True])
def test_matches_reference_after_update(soft):
    b = batch(seed=59)
    loss = get_loss("ProtoCLIP", soft_targets=soft, target_temperature=0.1, **HP).double()
    _set_prototypes(loss)
    assert loss.prototypes.shape == (4, 16) and bool(loss.has_prototypes)
    value = loss(b["teacher"], b["student"], logit_scale=b["logit_scale"])
    close(value, _reference(b, loss.prototypes, 0.1 if soft else None), tol=1e-5)


def test_kmeans_recovers_separated_clusters():
    g = torch.Generator().manual_seed(60)
    directions = torch.eye(3, 8, dtype=torch.float64) * 5
    x = torch.cat([d + 0.1 * torch.randn(20, 8, generator=g, dtype=torch.float64) for d in directions])
    centers = spherical_kmeans(x, 3, seed=1)
    best = (centers @ unit(directions).T).max(dim=0).values
    assert (best > 0.99).all()


def test_too_few_features_and_missing_scale_are_clear_errors():
    loss = get_loss("ProtoCLIP", n_prototypes=50)
    with pytest.raises(ValueError, match="ProtoCLIP.*n_prototypes=50"):
        loss.update_prototypes(torch.randn(10, 4))
    with pytest.raises(ValueError, match="ProtoCLIP.*logit_scale"):
        loss(torch.randn(4, 8), torch.randn(4, 8))


def test_learnable_scale_gets_gradient():
    b = batch(seed=61)
    loss = get_loss("ProtoCLIP", init_proto_scale=math.log(5.0), **HP).double()
    _set_prototypes(loss)
    loss(b["teacher"], b["student"], logit_scale=b["logit_scale"]).backward()
    assert loss.proto_scale.grad is not None and loss.proto_scale.grad != 0


def test_two_processes_match_single_process():
    batches = [batch(8, 16, seed=62), batch(8, 16, seed=63)]
    assert_two_processes_match_single("ProtoCLIP", HP, batches, setup=_set_prototypes)


def test_state_round_trip():
    assert_state_round_trip("ProtoCLIP", HP, [batch(seed=64), batch(seed=65)], setup=_set_prototypes)


def test_chunked_kmeans_equals_the_full_one():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(500, 8, generator=g, dtype=torch.float64)
    full = spherical_kmeans(x, 12, iters=10, seed=2, chunk_size=10_000)
    chunked = spherical_kmeans(x, 12, iters=10, seed=2, chunk_size=37)
    torch.testing.assert_close(chunked, full)


def _kmeans_of_my_half(x, k):
    from raykd import distributed as D

    half = x.shape[0] // 2
    mine = x[:half] if D.rank() == 0 else x[half:]
    return spherical_kmeans(mine, k, iters=10, seed=5, chunk_size=29)


def test_kmeans_over_two_workers_equals_single_process_on_all_rows():
    """Each worker clusters its own rows (no gather of the features); the centroids equal the single-process
    k-means of the concatenation, on both workers."""
    from tests.losses.dist_utils import run_in_two_processes

    x = torch.randn(300, 8, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    single = spherical_kmeans(x, 9, iters=10, seed=5)
    r0, r1 = run_in_two_processes(_kmeans_of_my_half, x, 9)
    torch.testing.assert_close(r0, single)
    torch.testing.assert_close(r1, single)
