"""Evaluation during training: zero-shot top-1 on the held-out split of the built-in data set."""
from __future__ import annotations

from typing import Callable, Optional

from raykd.config.schema import Config


def epoch_evaluator(cfg: Config) -> Optional[Callable]:
    """A function (model, epoch) -> metrics, or None when there is nothing to evaluate on."""
    if not cfg.data.builtin or not cfg.eval.zeroshot_every_n_epochs:
        return None
    from raykd.data.builtin import ensure_builtin, load_labelled_split
    from raykd.eval.tasks.zeroshot import zeroshot_classification

    name = cfg.data.builtin
    directory = ensure_builtin(name, cfg.data.builtin_root or None, cfg.data.builtin_train_size or None)
    images, labels, classnames, templates = load_labelled_split(directory, "test")

    def evaluate(model, epoch: int) -> dict:
        return zeroshot_classification(model, images, labels, classnames, templates, dataset_name=name,
                                       batch_size=cfg.eval.batch_size)

    return evaluate
