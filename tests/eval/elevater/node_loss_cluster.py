"""Run as a script by tests/eval/elevater/test_node_loss.py: `raykd eval elevater` on a simulated 3-node Ray
cluster (ray.cluster_utils.Cluster: a head that runs no actors, two nodes of 1 CPU, one evaluation actor on
each). Once the first item is in, the node of a busy actor is removed (its processes killed, no cleanup), and
a new node is added a little later. Prints one JSON line with what happened; its own process, so the test
session's Ray is untouched.

    python node_loss_cluster.py CHECKPOINT DATA_ROOT OUT
"""
from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import ray
from ray.cluster_utils import Cluster
from ray.util.state import list_actors

from raykd.cli import main as raykd_main
from tests.cluster.waiting import wait_for


def busy_actor_nodes(nodes) -> list:
    """Those of `nodes` that host a live evaluation actor."""
    hosts = {a.node_id for a in list_actors(filters=[("class_name", "=", "EvalActor"), ("state", "=", "ALIVE")])}
    return [node for node in nodes if node.node_id in hosts]


def main(checkpoint: str, data_root: str, out: Path) -> dict:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": True})
    nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
    ray.init(address=cluster.address, log_to_driver=False)
    cluster.wait_for_nodes()
    try:
        code: list[int] = []
        argv = ["eval", "elevater", "--checkpoint", checkpoint, "--data-root", data_root, "--out", str(out),
                "--datasets", "shapes,digits", "--mode", "zeroshot,linear_probe", "--shots", "5",
                "--seeds", "0,1,2,3", "--no-tuning", "--epochs", "1000", "--no-predictions"]
        thread = threading.Thread(target=lambda: code.append(raykd_main(argv)))
        thread.start()
        wait_for(lambda: any((out / "items").glob("*__seed*.json")), "the first finished item", 300, poll_s=0.2)
        lost = busy_actor_nodes(nodes)[0]
        done_before = sorted(p.stem for p in (out / "items").glob("*__seed*.json"))
        removed = time.time()
        cluster.remove_node(lost, allow_graceful=False)
        time.sleep(2)
        cluster.add_node(num_cpus=1)
        thread.join(timeout=600)
        return {"code": code, "alive": thread.is_alive(), "done_before": done_before,
                "seconds_after_loss": round(time.time() - removed, 1)}
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    print("RESULT " + json.dumps(main(sys.argv[1], sys.argv[2], Path(sys.argv[3]))), flush=True)
