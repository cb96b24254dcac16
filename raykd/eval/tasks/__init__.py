"""Evaluation tasks: one plain function per file, registered by ``@register_task`` on import.

``get_task(name)`` / ``list_tasks()`` see every task below; a new task module must be imported here.
Every task returns a flat dict keyed ``<task>/<dataset>/<metric>`` (see ``raykd.eval.metrics``).
"""
from raykd.eval.tasks._registry import get_task, list_tasks, register_task
from raykd.eval.tasks import (  # noqa: F401  (importing registers)
    clustering, feature_analysis, knn, linear_probe, passage_retrieval, retrieval, sts, wiki_sections,
    word_similarity, zeroshot,
)

__all__ = ["get_task", "list_tasks", "register_task"]
