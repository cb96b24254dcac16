"""ELEVATER items on the engine's actor pool: one unit per item or per data set; failures stay with their items."""
import functools

import pytest

from raykd.eval.elevater import get_dataset
from raykd.eval.elevater.modes import EvalOptions
from raykd.eval.elevater.work import WorkItem
from raykd.eval.engine import cluster_capacity, group_items, run_pool

from .. import fakes
from .layout import write_mnist

OPTS = EvalOptions(tune=False, lr=0.1, epochs=2, final_extra_epochs=2, batch_size=8)


def _items(root):
    mnist, dtd = get_dataset("mnist"), get_dataset("dtd")
    return [WorkItem(mnist, "zeroshot", 0, 0, root, OPTS), WorkItem(dtd, "zeroshot", 0, 0, root, OPTS),
            WorkItem(mnist, "linear_probe", 2, 0, root, OPTS)]


def test_grouping(tmp_path):
    items = _items(str(tmp_path))
    assert group_items(items, "item") == [[0], [1], [2]]
    assert group_items(items, "dataset") == [[0, 2], [1]]
    with pytest.raises(ValueError, match="unknown actor grouping"):
        group_items(items, "seed")


def broken_factory():
    raise RuntimeError("no model here")


@pytest.mark.ray
@pytest.mark.timeout(300)
def test_actors_take_the_next_unit_and_failures_stay_with_theirs(ray_session, tmp_path):
    ray_session.cloudpickle.register_pickle_by_value(fakes)  # the workers cannot import the tests package
    write_mnist(tmp_path, mode="RGB")
    items = _items(str(tmp_path))[:2]
    seen = []
    out = run_pool(functools.partial(fakes.make_fake_model, dim=8, image_dim=48), items, group="item",
                   max_actors=1, on_result=seen.append)  # one actor runs both items, in turn
    assert [r.dataset for r in out] == ["mnist", "dtd"] and [r.dataset for r in seen] == ["mnist", "dtd"]
    assert out[0].ok and out[0].probs.shape == (20, 10)
    assert out[1].error.startswith("FileNotFoundError") and "dtd_20211007" in out[1].error
    dead = run_pool(broken_factory, items, group="item", max_actors=1)  # the failed actor is replaced
    assert [r.ok for r in dead] == [False, False] and all("no model here" in r.error for r in dead)


@pytest.mark.ray
def test_capacity(ray_session):
    cpus = ray_session.cluster_resources()["CPU"]
    assert cluster_capacity(1, 0) == int(cpus) and cluster_capacity(cpus * 2, 0) == 1
    assert cluster_capacity(1, 0.5) == 1  # no GPU in the test cluster: at least one


def test_actors_get_a_gpu_each_when_the_cluster_has_them():
    from raykd.eval.elevater.run import actor_gpus

    assert actor_gpus("auto", 0) == 0 and actor_gpus("auto", 8) == 1
    assert actor_gpus("0.25", 8) == 0.25 and actor_gpus(0, 8) == 0
    for bad in ("-1", "one"):
        with pytest.raises(ValueError, match="--gpus-per-actor"):
            actor_gpus(bad, 8)


def test_a_fractional_gpu_caps_the_actors_cuda_memory(monkeypatch):
    """Four actors at 0.25 GPU share a card: each may allocate a quarter of its memory, not all of it."""
    import torch

    from raykd.eval import engine

    capped, moved = [], []

    class Model:
        def to(self, device):
            moved.append(str(device))
            return self

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", lambda f, device=None: capped.append(f))
    engine.load_model(Model, gpu_fraction=0.25)
    engine.load_model(Model, gpu_fraction=1.0)
    assert capped == [0.25] and moved == ["cuda", "cuda"]
