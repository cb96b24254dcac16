"""Zero-shot, linear probe and fine-tuning on small ELEVATER-layout data sets (no Ray)."""
import dataclasses

import numpy as np
import pytest
import torch

from raykd.eval.elevater import get_dataset
from raykd.eval.elevater.modes import EvalOptions
from raykd.eval.elevater.search import SearchSpace
from raykd.eval.elevater.work import FULL, WorkItem, run_item
from raykd.eval.engine import run_serial

from ..fakes import FakeDualEncoder, FakeSpec
from .layout import COLOURS, write_mnist, write_voc

FAST = EvalOptions(tune=False, lr=0.1, weight_decay=0.0, epochs=5, final_extra_epochs=20, batch_size=8)


def colour_feature(colour) -> np.ndarray:
    """The FakeDualEncoder image feature of a solid-colour image (its normalised pixels, flattened)."""
    spec = FakeSpec()
    return np.repeat([(c / 255 - m) / s for c, m, s in zip(colour, spec.mean, spec.std)], 16)


def digit_text(prompt: str) -> np.ndarray:
    """Prompts naming digit d embed as the image feature of colour d."""
    digit = next(int(ch) for ch in prompt if ch.isdigit())
    return colour_feature(COLOURS[digit])


@pytest.fixture()
def mnist_root(tmp_path):
    write_mnist(tmp_path, mode="RGB")
    return tmp_path


def test_zeroshot_uses_prompts_and_scales_by_100(mnist_root):
    model = FakeDualEncoder(dim=48, text_fn=digit_text)
    result = run_item(model, WorkItem(get_dataset("mnist"), "zeroshot", 0, 0, str(mnist_root)))
    assert result.ok and result.value == 1.0 and result.metric == "accuracy"
    assert result.probs.shape == (20, 10) and result.probs.dtype == np.float32
    np.testing.assert_allclose(result.probs.sum(1), 1, rtol=1e-5)
    assert result.params["num_trainable_params"] == 0 and result.n_test == 20
    assert result.classnames_source == "registry"


def test_linear_probe_with_search_learns_colours(mnist_root):
    opts = dataclasses.replace(FAST, tune=True, space=SearchSpace(lrs=(0.1,)))
    model = FakeDualEncoder(dim=8, image_dim=48)
    result = run_item(model, WorkItem(get_dataset("mnist"), "linear_probe", 3, 0, str(mnist_root), opts))
    assert result.ok, result.error
    assert result.value == 1.0 and result.n_train == 30
    assert result.hparams["searched"] and result.hparams["trials"] == 15 and result.hparams["lr"] == 0.1
    assert result.params["num_trainable_params"] == 8 * 10 + 10


def test_linear_probe_tunes_on_a_subset_when_the_spec_says_so(mnist_root):
    spec = dataclasses.replace(get_dataset("mnist"), search_shots=2)
    opts = dataclasses.replace(FAST, tune=True, epochs=1, space=SearchSpace(lrs=(0.1,)))
    item = WorkItem(spec, "linear_probe", FULL, 0, str(mnist_root), opts)
    result = run_item(FakeDualEncoder(dim=8, image_dim=48), item)
    assert result.ok, result.error
    assert result.hparams["search_images"] == 20 and result.n_train == 30


def test_multi_label_linear_probe(tmp_path):
    write_voc(tmp_path)
    item = WorkItem(get_dataset("voc2007"), "linear_probe", 2, 1, str(tmp_path), FAST)
    result = run_item(FakeDualEncoder(dim=8, image_dim=48), item)
    assert result.ok, result.error
    assert result.metric == "11point_mAP" and 0 < result.value <= 1 and result.probs.shape == (30, 20)
    assert set(result.metrics) == {"11point_mAP"}


def test_finetune_trains_a_copy_of_the_image_tower(tiny_model, mnist_root):
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    opts = dataclasses.replace(FAST, epochs=1, final_extra_epochs=1)
    result = run_item(tiny_model, WorkItem(get_dataset("mnist"), "finetune", 2, 0, str(mnist_root), opts))
    assert result.ok, result.error
    assert result.probs.shape == (20, 10) and result.n_train == 20
    tower = sum(p.numel() for p in tiny_model.image.parameters()) + sum(
        p.numel() for p in tiny_model.image_head.parameters())
    assert result.params["num_trainable_params"] == tower + 16 * 10 + 10
    assert all(torch.equal(before[k], v) for k, v in tiny_model.state_dict().items())


def test_a_missing_dataset_is_an_item_error_not_an_exception(tmp_path):
    result = run_item(FakeDualEncoder(), WorkItem(get_dataset("dtd"), "linear_probe", 5, 0, str(tmp_path)))
    assert not result.ok and result.error.startswith("FileNotFoundError") and "dtd_20211007" in result.error
    assert result.probs is None and np.isnan(result.value)


def test_serial_runs_share_test_features(mnist_root):
    model = FakeDualEncoder(dim=8, image_dim=48)
    spec, root = get_dataset("mnist"), str(mnist_root)
    seen = []
    results = run_serial(model, [WorkItem(spec, "zeroshot", 0, 0, root, FAST),
                                 WorkItem(spec, "linear_probe", 2, 0, root, FAST)], on_result=seen.append)
    assert [r.setting for r in seen] == ["zeroshot", "linear_probe_2shot"] and all(r.ok for r in results)
    assert model.image_calls == 2  # test images once (shared), the 2-shot training images once


def test_work_item_validation():
    spec = get_dataset("mnist")
    with pytest.raises(ValueError, match="unknown ELEVATER mode"):
        WorkItem(spec, "knn", 5, 0, "/data")
    with pytest.raises(ValueError, match="bad shots"):
        WorkItem(spec, "zeroshot", 5, 0, "/data")
    with pytest.raises(ValueError, match="bad shots"):
        WorkItem(spec, "linear_probe", -3, 0, "/data")
    assert WorkItem(spec, "finetune", FULL, 0, "/data").setting == "finetune_fullshot"
