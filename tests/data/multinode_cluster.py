"""Run as a script by tests/data/test_multinode.py: a simulated 3-node Ray cluster (ray.cluster_utils.Cluster)
whose head runs no tasks (as on KubeRay) and whose two worker nodes each have their own RAYKD_CACHE.
The driver plans the built-in data in its own cache and then deletes it: nothing of the driver's disk is on
the nodes. Prints one JSON line with what happened; its own process, so the test session's Ray is untouched."""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import ray
from ray.cluster_utils import Cluster

from raykd.config.schema import DataConfig
from raykd.data.hash_tokenizer import HashTokenizer
from raykd.data.node_paths import check_readable_on_nodes, local_data_paths
from raykd.data.pipeline import build_train_dataset
from raykd.data.run_state import DataRunState
from raykd.data.sampling import plan_from_config
from raykd.specs import ImageSpec


def main(tmp: Path) -> dict:
    node_caches = [tmp / "node-a", tmp / "node-b"]
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for cache in node_caches:
        cluster.add_node(num_cpus=1, env_vars={"RAYKD_CACHE": str(cache)})  # the raylet's env is its workers'
    ray.init(address=cluster.address, log_to_driver=False)
    cluster.wait_for_nodes()
    try:
        os.environ["RAYKD_CACHE"] = str(tmp / "driver")
        plan = plan_from_config(DataConfig(builtin="digits"))  # 3 shards, generated in the driver's cache
        shutil.rmtree(tmp / "driver")  # the nodes never see the driver's disk
        check_readable_on_nodes(local_data_paths(plan))  # builtin:// URLs: nothing local to check
        state = DataRunState("multinode")
        ds = build_train_dataset(plan, ImageSpec(16), HashTokenizer(length=8), augment="none", state=state)
        rows = sum(len(b["label"]) for b in ds.iter_batches(batch_size=None, batch_format="numpy"))
        out = {"rows": rows, "planned": plan.epoch_size, "skipped": state.skipped(),
               "urls": plan.shard_urls[:1], "node_caches": [(c / "builtin" / "digits").is_dir() for c in node_caches]}

        # a local path that the nodes cannot read: the same data under an explicit builtin_root, then deleted
        local = plan_from_config(DataConfig(builtin="digits", builtin_root=str(tmp / "driver-only")))
        shutil.rmtree(tmp / "driver-only")
        try:
            check_readable_on_nodes(local_data_paths(local))
            out["local_error"] = None
        except FileNotFoundError as err:
            out["local_error"] = str(err)
        out["node_ips"] = sorted({n["NodeManagerAddress"] for n in ray.nodes()})
        return out
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    print("RESULT " + json.dumps(main(Path(sys.argv[1]))), flush=True)
