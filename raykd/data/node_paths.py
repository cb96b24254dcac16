"""Local data paths on a multi-node cluster: every node that may read training data must see them.

The driver resolves the sources on its own disk; Ray Data's read tasks then run on any node, where a path
that only the driver's machine has would be `missing_shard` and, under `on_error: skip`, quietly vanish
from training. `check_readable_on_nodes` looks at each path from every node before training starts.
"""
from __future__ import annotations

import os

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from raykd.data.sampling import TrainPlan
from raykd.data.shards import is_remote


def local_data_paths(plan: TrainPlan) -> list[str]:
    """The local files a plan reads: its tar shards, and for record shards the folders of their images
    (one look per folder keeps the check cheap on large image trees). Remote and `builtin://` URLs are
    readable everywhere by construction and left out."""
    paths: list[str] = []
    for source in plan.sources:
        for shard in source.shards:
            if shard.records is None:
                paths += [] if is_remote(shard.url) else [shard.url]
            else:
                paths += sorted({os.path.dirname(r[0]) or "." for r in shard.records if not is_remote(r[0])})
    return list(dict.fromkeys(paths))


@ray.remote(num_cpus=0)
def _missing(paths: list[str]) -> list[str]:
    return [p for p in paths if not os.path.exists(p)]


def _data_nodes() -> list[dict]:
    """Alive nodes that can run read tasks or train workers (a head started with 0 CPUs runs neither)."""
    return [n for n in ray.nodes()
            if n["Alive"] and (n["Resources"].get("CPU", 0) > 0 or n["Resources"].get("GPU", 0) > 0)]


def check_readable_on_nodes(paths: list[str]) -> None:
    """Raise FileNotFoundError, naming the first path and the node, when a node of the running Ray cannot see
    a path. A single node that is the driver's own machine is not asked (the driver just read the paths).
    Nodes that join later (autoscaling) are not checked."""
    nodes = _data_nodes()
    if not paths or [n["NodeID"] for n in nodes] == [ray.get_runtime_context().get_node_id()]:
        return
    refs = [_missing.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
            .remote(paths) for n in nodes]
    for node, missing in zip(nodes, ray.get(refs)):
        if missing:
            more = f" (and {len(missing) - 1} more of the {len(paths)} data paths)" if len(missing) > 1 else ""
            raise FileNotFoundError(
                f"data path {missing[0]!r}{more} is not readable on node {node['NodeManagerAddress']} "
                f"(node id {node['NodeID'][:12]}): the driver read it from its own disk, but every node of a "
                "multi-node cluster reads training data; put it on shared storage (NFS, s3://, gs://) or copy "
                "it to the same path on every node")
