"""ELEVATER image classification (Li et al., 2022, "ELEVATER: A Benchmark and Toolkit for Evaluating
Language-Augmented Visual Models"): the 20-data-set registry, a reader for its on-disk layout, zero-shot /
linear-probe / fine-tuning modes with few-shot sampling and the toolkit's hyper-parameter search, the EvalAI
submission files, and ``raykd eval elevater``, which runs its data set x mode x shots x seed work items on the
evaluation engine (``raykd.eval.engine``: a pool of Ray actors, or serially).

    registry      ``get_dataset`` / ``list_datasets`` (``_registry``), entries in ``catalogue``
    reader        ELEVATER's layout: label maps, iris / COCO index files, images read from the zips
    sampling      few-shot subsets, the train/validation split
    metrics       accuracy, mean-per-class, 11-point mAP, ROC-AUC
    classifier    the linear head and its training loop; ``search``: the lr x weight-decay search
    modes         zero-shot, linear probe, fine-tune; ``work``: one work item -> ``ItemResult``
    submission    EvalAI files (the table and the other files: ``raykd.eval.results``)
    builtin       shapes / digits written in ELEVATER layout; ``run``: what ``raykd eval elevater`` runs
"""
from raykd.eval.elevater import catalogue  # noqa: F401  (importing registers the data sets)
from raykd.eval.elevater._registry import ElevaterDataset, SplitFiles, get_dataset, list_datasets, register_dataset

__all__ = ["ElevaterDataset", "SplitFiles", "get_dataset", "list_datasets", "register_dataset"]
