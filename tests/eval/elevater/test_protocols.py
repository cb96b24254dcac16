"""The ``toolkit`` and ``clean`` protocols: each toolkit detail against the upstream definition
(Elevater_Toolkit_IC ``vision_benchmark/evaluation/full_model_finetune.py`` and ``feature.py``,
``commands/linear_probe.py``), and the ``clean`` choices beside them."""
import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from raykd.eval.elevater import get_dataset
from raykd.eval.elevater.classifier import FeatureInputs, FitConfig, LinearHead, fit_and_track
from raykd.eval.elevater.modes import EvalOptions, choose_hparams, image_transform
from raykd.eval.elevater.preprocess import ImageTransform
from raykd.eval.elevater.reader import load_dataset
from raykd.eval.elevater.sampling import sample_few_shot, split_train_val
from raykd.eval.elevater.search import SearchSpace, search
from raykd.eval.elevater.work import WorkItem, run_item, training_images

from ..fakes import FakeDualEncoder, FakeSpec
from .layout import write_mnist
from .test_modes import digit_text

TINY_SPACE = SearchSpace(lrs=(0.1,), wd_log_range=(-6.0, -4.0), wd_points=3, coarse_points=3)


# ---------------------------------------------------------------------------------------------- preprocessing
def _edge_image() -> np.ndarray:
    img = np.zeros((20, 60, 3), np.uint8)
    img[:, :6] = 255  # a white strip on the left edge, outside the centred square
    return img


def test_kitti_keeps_the_full_frame():
    spec = FakeSpec(size=16)
    full, cropped = ImageTransform(spec, center_crop=False), ImageTransform(spec, center_crop=True)
    white = (1 - spec.mean[0]) / spec.std[0]
    assert float(full([_edge_image()])[0, 0, :, 0].mean()) == pytest.approx(white, abs=0.05)
    assert float(cropped([_edge_image()])[0, 0, :, 0].max()) < 0  # the centre crop cut the strip away
    # the toolkit's no-crop path: Resize((S, S)) bicubic of the whole frame, ToTensor, Normalize
    ref = np.asarray(Image.fromarray(_edge_image()).resize((16, 16), Image.BICUBIC), np.float32) / 255
    ref = (ref - np.array(spec.mean, np.float32)) / np.array(spec.std, np.float32)
    np.testing.assert_allclose(full([_edge_image()])[0].permute(1, 2, 0).numpy(), ref, atol=1e-5)


def test_each_protocol_preprocesses_kitti_without_a_crop(tmp_path):
    model, kitti = FakeDualEncoder(image_size=16), get_dataset("kitti-distance")
    data = type("Data", (), {"spec": kitti})()
    toolkit = image_transform(model, data, EvalOptions())
    clean = image_transform(model, data, EvalOptions(protocol="clean"))
    assert (toolkit.center_crop, toolkit.interpolation) == (False, "bicubic")
    assert (clean.center_crop, clean.interpolation) == (False, "bilinear")
    white = (1 - model.image_spec.mean[0]) / model.image_spec.std[0]
    assert float(clean([_edge_image()])[0, 0, :, 0].mean()) == pytest.approx(white, abs=0.1)
    mnist = type("Data", (), {"spec": get_dataset("mnist")})()
    assert image_transform(model, mnist, EvalOptions(protocol="clean")) is None  # raykd's own eval transform
    assert image_transform(model, mnist, EvalOptions()).center_crop


# ---------------------------------------------------------------------------------------------- training
def _record_lrs(monkeypatch) -> list[float]:
    seen: list[float] = []
    step = torch.optim.SGD.step

    def recording_step(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", recording_step)
    return seen


@pytest.mark.parametrize("protocol", ["toolkit", "clean"])
def test_the_search_trains_at_a_constant_learning_rate_under_toolkit(tmp_path, monkeypatch, protocol):
    write_mnist(tmp_path, mode="RGB")
    data = load_dataset(tmp_path, get_dataset("mnist"))
    feats = torch.randn(len(data.train), 6, generator=torch.Generator().manual_seed(0))
    tr, va = split_train_val(data.train.labels, 10, how="first")
    opts = EvalOptions(epochs=6, batch_size=4, space=TINY_SPACE, protocol=protocol)
    seen = _record_lrs(monkeypatch)
    out = choose_hparams(lambda: LinearHead(6, 10, bn_momentum=None), FeatureInputs(feats), data.train.targets,
                         tr, va, data, opts, 0, torch.device("cpu"))
    assert out["searched"] and out["trials"] == 3 and len(seen) == 3 * 6 * 5  # 3 fits x 6 epochs x 5 batches
    if protocol == "toolkit":
        assert set(seen) == {0.1}  # the toolkit's empty TRAIN.SCHEDULE
    else:
        assert seen[0] < 0.1 and max(seen) == pytest.approx(0.1) and seen[29] < 0.1  # warm-up, then cosine


def test_the_best_epoch_is_selected_and_its_predictions_kept():
    x = torch.randn(12, 4, generator=torch.Generator().manual_seed(0))
    y = np.arange(12) % 3
    planned, seen_probs = iter([0.2, 0.7, 0.5, 0.7, 0.1]), []

    def score(_, probs):  # scores fixed in advance: epoch 1 is the first best
        seen_probs.append(probs)
        return next(planned)

    cfg = FitConfig(lr=0.1, epochs=5, batch_size=4, schedule="constant")
    fit = fit_and_track(lambda: LinearHead(4, 3), FeatureInputs(x), y, cfg, torch.device("cpu"),
                        (FeatureInputs(x), y, score), keep_probs=True)
    assert (fit.epoch, fit.score, fit.scores) == (1, 0.7, [0.2, 0.7, 0.5, 0.7, 0.1])
    np.testing.assert_array_equal(fit.probs, seen_probs[1])
    assert not np.array_equal(fit.probs, seen_probs[-1])


def test_toolkit_reports_the_best_test_epoch_and_clean_the_last(tmp_path):
    write_mnist(tmp_path, mode="RGB")
    base = EvalOptions(tune=False, lr=0.1, weight_decay=0.0, epochs=2, final_extra_epochs=4, batch_size=8)
    results = {}
    for protocol in ("toolkit", "clean"):
        opts = dataclasses.replace(base, protocol=protocol, text_head=False)
        results[protocol] = run_item(FakeDualEncoder(dim=8, image_dim=48),
                                     WorkItem(get_dataset("mnist"), "linear_probe", 3, 0, str(tmp_path), opts))
        assert results[protocol].ok, results[protocol].error
        assert results[protocol].protocol == protocol and results[protocol].hparams["epochs"] == 6
    assert results["clean"].hparams["reported_epoch"] == 5
    assert 0 <= results["toolkit"].hparams["reported_epoch"] <= 5


def test_the_toolkit_search_start_returns_lr_0_when_nothing_beats_0():
    toolkit, first = search(lambda lr, wd: 0.0, TINY_SPACE, "toolkit"), search(lambda lr, wd: 0.0, TINY_SPACE)
    assert (toolkit.lr, toolkit.weight_decay) == (0.0, 0.0)  # full_model_finetune.py's best_lr = 0 start
    assert (first.lr, first.weight_decay) == (0.1, pytest.approx(1e-6))
    with pytest.raises(ValueError, match="unknown search start"):
        search(lambda lr, wd: 0.0, TINY_SPACE, "last")


# ---------------------------------------------------------------------------------------------- few-shot
def test_one_shot_is_drawn_as_two_and_trained_without_merging(tmp_path):
    labels = [[i % 10] for i in range(50)]
    index, merge = training_images(labels, 10, 1, seed=0, toolkit=True)
    assert len(index) == 20 and not merge
    assert list(index) == list(sample_few_shot(labels, 10, 2, 0, sort=False))
    index, merge = training_images(labels, 10, 1, seed=0, toolkit=False)
    assert len(index) == 10 and merge

    write_mnist(tmp_path, mode="RGB")
    opts = EvalOptions(epochs=2, final_extra_epochs=1, batch_size=8, space=SearchSpace(lrs=(0.1,)))
    toolkit = run_item(FakeDualEncoder(dim=8, image_dim=48),
                       WorkItem(get_dataset("mnist"), "linear_probe", 1, 0, str(tmp_path), opts))
    assert toolkit.ok, toolkit.error
    assert toolkit.n_train == 10 and toolkit.hparams["searched"]  # 1 of the 2 per class; the other one validates
    assert "1 shot sampled as 2" in toolkit.hparams["note"] and toolkit.setting == "linear_probe_1shot"
    clean = run_item(FakeDualEncoder(dim=8, image_dim=48), WorkItem(
        get_dataset("mnist"), "linear_probe", 1, 0, str(tmp_path), dataclasses.replace(opts, protocol="clean")))
    assert clean.n_train == 10 and not clean.hparams["searched"]  # nothing left to train on after the split


def test_the_first_20_percent_of_each_class_in_manifest_order():
    labels = [[0], [1], [0], [0], [1], [0], [0], [0]]  # class 0: 6 images -> ceil(1.2) = 2; class 1: 2 -> 1
    train, val = split_train_val(labels, 2, 0.2, how="first")
    assert list(val) == [0, 1, 2] and list(train) == [3, 4, 5, 6, 7]
    # the toolkit's multi-label loop: the first image of the lowest class still needing positives, repeatedly
    multi = [[0, 1], [1], [0], [2], [1, 2]]  # needs: c0 ceil(.4)=1, c1 ceil(.6)=1, c2 ceil(.4)=1
    assert list(split_train_val(multi, 3, 0.2, how="first")[1]) == [0, 3]
    # a random split draws the same counts elsewhere
    assert len(split_train_val(labels, 2, 0.2, seed=3, how="random")[1]) == 3
    with pytest.raises(ValueError, match="unknown validation split"):
        split_train_val(labels, 2, how="last")


def test_the_few_shot_manifest_keeps_its_pick_order():
    labels = [[i % 4] for i in range(40)]
    picked = sample_few_shot(labels, 4, 5, seed=1, sort=False)
    assert sorted(picked) == list(sample_few_shot(labels, 4, 5, seed=1)) and list(picked) != sorted(picked)
    first = split_train_val([labels[i] for i in picked], 4, how="first")[1]  # ceil(0.2 * 5) = 1 per class
    by_class = {labels[picked[i]][0]: int(picked[i]) for i in first}
    assert by_class == {c: next(int(i) for i in picked if labels[i][0] == c) for c in range(4)}


# ---------------------------------------------------------------------------------------------- text head
def test_the_text_initialised_head_classifies_before_any_step(tmp_path):
    write_mnist(tmp_path, mode="RGB")
    opts = EvalOptions(tune=False, lr=0.0, weight_decay=0.0, epochs=1, final_extra_epochs=0, batch_size=8)
    values = {}
    for text_head in (True, False):
        result = run_item(FakeDualEncoder(dim=48, text_fn=digit_text), WorkItem(
            get_dataset("mnist"), "linear_probe", 3, 0, str(tmp_path), dataclasses.replace(opts, text_head=text_head)))
        assert result.ok, result.error
        assert result.hparams["text_head"] is text_head
        values[text_head] = result.value
    assert values[True] >= 0.8 and values[False] <= 0.3  # lr 0: only the initial head decides (BN rescales it)
    assert EvalOptions().use_text_head and not EvalOptions(protocol="clean").use_text_head
    with pytest.raises(ValueError, match="head initialisation of shape"):
        LinearHead(4, 3, init_weight=torch.zeros(4, 3))
    with pytest.raises(ValueError, match="unknown ELEVATER protocol"):
        EvalOptions(protocol="leaderboard")


def test_a_fit_that_diverges_scores_0_and_keeps_its_best_finite_epoch():
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    y = np.arange(8) % 2
    planned = iter([0.4, 0.9, float("nan")])
    cfg = FitConfig(lr=0.1, epochs=3, batch_size=4, schedule="constant")
    fit = fit_and_track(lambda: LinearHead(4, 2), FeatureInputs(x), y, cfg, torch.device("cpu"),
                        (FeatureInputs(x), y, lambda *_: next(planned)), keep_probs=True)
    assert (fit.score, fit.epoch) == (0.0, 1) and fit.probs is not None
