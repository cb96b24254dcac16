"""Losing a node: on a simulated cluster (`ray.cluster_utils.Cluster`: a head and two nodes of 1 CPU each, two
train workers of 1 CPU), a node holding a train worker is removed mid-run and a new one added later. A fixed-size
run waits, and Ray Train restarts the workers from the last checkpoint once resources return; an elastic run
(`train.min_workers: 1`) goes on at once with one worker and grows back to two when the new node comes.

Several Ray nodes on one machine take minutes on 2 cores, so this runs only with RAYKD_NODE_LOSS_TESTS=1.
It starts its own cluster: the session's shared Ray is stopped first and restarted afterwards.
"""
from __future__ import annotations

import json
import os
import threading
import time

import pytest

from raykd.config import load_config
from raykd.train.trainer import train
from tests.cluster.waiting import wait_for
from tests.conftest import REPO, start_test_ray, tiny_overrides
from tests.e2e.ray_head import free_ports

pytestmark = [pytest.mark.ray, pytest.mark.slow,
              pytest.mark.skipif(os.environ.get("RAYKD_NODE_LOSS_TESTS") != "1",
                                 reason="minutes on a small machine: set RAYKD_NODE_LOSS_TESTS=1")]


@pytest.fixture
def two_node_cluster(request):
    """(cluster, [the two worker nodes]): a head of 1 CPU and two nodes of `request.param` CPUs (default 1; Ray
    wants whole CPUs per node)."""
    import ray
    from ray.cluster_utils import Cluster

    ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={  # the dashboard serves the state API
        "num_cpus": 1, "include_dashboard": True, "dashboard_port": free_ports(1)[0]})
    nodes = [cluster.add_node(num_cpus=getattr(request, "param", 1)) for _ in range(2)]
    ray.init(address=cluster.address)
    try:
        yield cluster, nodes
    finally:
        ray.shutdown()
        cluster.shutdown()
        start_test_ray()


def train_worker_node(nodes):
    """One of `nodes` (not the head) that hosts a live train worker."""
    from ray.util.state import list_actors

    hosts = {a.node_id for a in list_actors(filters=[("class_name", "=", "RayTrainWorker"), ("state", "=", "ALIVE")])}
    found = [node for node in nodes if node.node_id in hosts]
    assert found, f"no train worker on the worker nodes {[n.node_id for n in nodes]}: they run on {hosts}"
    return found[0]


def node_loss_config(cluster, builtin_root, run_dir, **extra):
    return load_config(REPO / "recipes/quickstart.yaml", tiny_overrides(builtin_root, **{
        "run.name": "nodeloss", "run.run_dir": str(run_dir), "run.ray_address": cluster.address,
        "train.num_workers": 2, "train.batch_size": 16, "train.epochs": 2, "train.max_failures": 2,
        "train.checkpoint_every_n_steps": 4, "data.cpus_per_read_task": 0.4,
        "eval.zeroshot.every_n_epochs": 1, "eval.retrieval.every_n_epochs": 0, "eval.linear_probe.every_n_epochs": 0,
        **extra}))


def evaluated_epochs(results_file) -> list[int]:
    if not results_file.is_file():
        return []
    return [json.loads(line)["epoch"] for line in results_file.read_text().splitlines()]


def test_a_lost_node_and_a_new_one_the_run_restarts_from_its_checkpoint_and_finishes(two_node_cluster, builtin_root,
                                                                                      tmp_path):
    cluster, nodes = two_node_cluster
    run_dir = tmp_path / "run"
    cfg = node_loss_config(cluster, builtin_root, run_dir)
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(train(cfg, run_dir)))
    thread.start()
    results_file = run_dir / "results.jsonl"
    wait_for(lambda: results_file.is_file() and results_file.read_text().strip(), "the end of epoch 0")
    cluster.remove_node(train_worker_node(nodes), allow_graceful=False)  # its train worker dies with it
    time.sleep(5)  # the run cannot place 2 workers now; it waits for resources
    cluster.add_node(num_cpus=1)
    thread.join(timeout=900)
    assert not thread.is_alive()
    assert result["metrics"]["step"] == 2 * 512 // 32 and result["metrics"]["epoch"] == 2
    epochs = [json.loads(line)["epoch"] for line in results_file.read_text().splitlines()]
    assert epochs == [1, 2], epochs  # each epoch evaluated once: none trained twice from the start


@pytest.mark.parametrize("two_node_cluster", [3], indirect=True)
def test_an_elastic_run_goes_on_with_one_worker_and_grows_back_when_a_node_returns(two_node_cluster, builtin_root,
                                                                                    tmp_path):
    """Nodes of 3 CPUs and workers of 2: one worker a node, a CPU beside it for Ray Data. With a node lost, the
    cluster holds one worker (the head's CPU is no worker's), so a fixed-size run would wait."""
    from raykd.train.run_logger import read_tensorboard_scalars

    cluster, nodes = two_node_cluster
    run_dir = tmp_path / "run"
    cfg = node_loss_config(cluster, builtin_root, run_dir, **{
        "train.min_workers": 1, "train.cpus_per_worker": 2, "train.epochs": 10, "train.elastic_resize_interval_s": 5})
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(train(cfg, run_dir)))
    thread.start()
    results_file = run_dir / "results.jsonl"
    wait_for(lambda: evaluated_epochs(results_file), "the end of epoch 0")
    cluster.remove_node(train_worker_node(nodes), allow_graceful=False)
    wait_for(lambda: len(evaluated_epochs(results_file)) >= 2, "an epoch trained on the one node left")
    cluster.add_node(num_cpus=3)  # room for a worker again
    thread.join(timeout=900)
    assert not thread.is_alive()
    # the global batch is kept (one worker takes 32 a step): the same 16 steps an epoch
    assert result["metrics"]["step"] == 10 * 512 // 32 and result["metrics"]["epoch"] == 10
    assert evaluated_epochs(results_file) == list(range(1, 11))
    workers = read_tensorboard_scalars(run_dir / "tensorboard")["train/workers"]
    assert workers[0] == 2 and 1 in workers and workers[-1] == 2, workers  # shrank, went on, grew back
