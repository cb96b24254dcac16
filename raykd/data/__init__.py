"""Data: built-in data sets, webdataset shards (and `convert`), training sources and their sampling
plans, batch transforms, and the Ray Data training pipeline.

Importing `raykd.data` does not import Ray; the image spec the towers describe is `raykd.specs.ImageSpec`;
the Ray-backed names below load `raykd.data.pipeline` / `raykd.data.skips` on first access.
"""
from raykd.data.builtin import ensure_builtin, list_builtin, load_labelled_split
from raykd.data.sampling import TrainPlan, plan_from_config, plan_from_urls
from raykd.data.shards import expand_shard_spec, validate_shards, write_shards
from raykd.data.transforms import PILEvalTransform, eval_transform, train_transform

_LAZY = {
    "build_from_config": "pipeline", "build_train_dataset": "pipeline", "iterate_shards_torch": "pipeline",
    "torch_batches": "pipeline",
    "skipped_counts": "skips", "reset_skipped_counts": "skips", "total_skipped": "skips",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"raykd.data.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'raykd.data' has no attribute {name!r}")


__all__ = [
    "PILEvalTransform", "TrainPlan", "ensure_builtin", "eval_transform", "expand_shard_spec",
    "list_builtin", "load_labelled_split", "plan_from_config", "plan_from_urls", "train_transform",
    "validate_shards", "write_shards", *_LAZY,
]
