"""Passage retrieval on MS MARCO (Nguyen et al., 2016) with the text tower as a dense bi-encoder: exact
inner-product search over the whole collection (normalised embeddings, chunked matmul on the model's
device, a running top-k), scored by sentence-transformers' ``InformationRetrievalEvaluator``
(UKPLab/sentence-transformers, ``sentence_transformers/evaluation/InformationRetrievalEvaluator.py``), the
evaluator ITRA ran on MS MARCO dev (ChenDelong1999/ITRA, ``itra/evaluation/nlp_evaluations.py``).

The search is raykd's, so the collection is streamed and never held in memory (the evaluator keeps the
whole corpus's texts); the metrics are the evaluator's own ``compute_metrics`` on the same top-k lists
(MRR@k, NDCG@k, MAP@k, Accuracy@k, Precision@k, Recall@k, fractions in [0, 1]).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch

from raykd.eval.features import extract_text_features, model_device
from raykd.eval.metrics import prefixed
from raykd.eval.readers.text_sets import iter_collection
from raykd.eval.tasks._registry import register_task

TASK = "passage_retrieval"

# The evaluator's defaults, with Recall@100 (ITRA) and Recall@1000 (the MS MARCO leaderboard) added.
AT_K: dict[str, tuple[int, ...]] = {"mrr_at_k": (10,), "ndcg_at_k": (10,), "accuracy_at_k": (1, 3, 5, 10),
                                    "precision_recall_at_k": (1, 3, 5, 10, 100, 1000), "map_at_k": (100,)}


def _chunks(pairs: Iterable[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    it = iter(pairs)
    while chunk := list(islice(it, size)):
        yield chunk


def dense_search(query_feats: torch.Tensor, passage_chunks: Iterable[tuple[list[str], torch.Tensor]],
                 k: int = 1000) -> list[list[tuple[str, float]]]:
    """Exact top-``k`` search. ``query_feats [Q, D]``; ``passage_chunks`` yields ``(pids, feats [n, D])``.
    Returns, per query, its best ``min(k, #passages)`` passages as ``(pid, score)``, best first."""
    device = query_feats.device
    top_scores = torch.empty(query_feats.shape[0], 0, device=device)
    top_index = torch.empty(query_feats.shape[0], 0, dtype=torch.int64, device=device)
    all_pids: list[str] = []
    for pids, feats in passage_chunks:
        scores = torch.cat([top_scores, query_feats @ feats.to(device).T], dim=1)
        index = torch.cat([top_index, torch.arange(len(all_pids), len(all_pids) + len(pids), device=device)
                           .expand(query_feats.shape[0], -1)], dim=1)
        top_scores, pos = scores.topk(min(k, scores.shape[1]), dim=1)
        top_index = index.gather(1, pos)
        all_pids += pids
    pid_array = np.asarray(all_pids)
    return [list(zip(pid_array[row].tolist(), score_row))
            for row, score_row in zip(top_index.cpu().numpy(), top_scores.cpu().tolist())]


def ir_evaluator_class() -> type:
    """sentence-transformers' ``InformationRetrievalEvaluator`` class (its module moved in 5.x)."""
    # deferred: importing sentence-transformers loads transformers (seconds), needed only by this task
    try:  # sentence-transformers >= 5.x
        from sentence_transformers.sentence_transformer.evaluation.information_retrieval import (
            InformationRetrievalEvaluator)
    except ImportError:  # 3.x / 4.x
        from sentence_transformers.evaluation import InformationRetrievalEvaluator
    return InformationRetrievalEvaluator


def ranking_metrics(ranked: Mapping[str, Sequence[tuple[str, float]]], qrels: Mapping[str, set[str]],
                    at_k: Mapping[str, Sequence[int]] = AT_K) -> dict[str, float]:
    """sentence-transformers' ``InformationRetrievalEvaluator.compute_metrics`` on ``ranked`` ({qid: [(pid,
    score), ...]}), over its queries that have relevance judgements, keyed as the evaluator keys them without
    its score-function prefix (``mrr@10``, ``ndcg@10``, ``map@100``, ``accuracy@1``, ``precision@10``,
    ``recall@1000``, ...). ``at_k`` maps the evaluator's arguments (the keys of :data:`AT_K`) to their ks.

    Raises ValueError when no query of ``ranked`` has judgements.
    """
    if not any(qrels.get(qid) for qid in ranked):
        raise ValueError("no query has relevance judgements")
    evaluator = ir_evaluator_class()({qid: "" for qid in ranked}, {}, qrels, write_csv=False,
                                   **{name: list(ks) for name, ks in at_k.items()})
    results = [[{"corpus_id": pid, "score": score} for pid, score in ranked[qid]] for qid in evaluator.queries_ids]
    scores = evaluator.compute_metrics(results)
    return {metric.replace("@k", f"@{k}"): float(value)
            for metric, per_k in scores.items() for k, value in per_k.items()}


@register_task(TASK, data_kind="passages", modality="text", aliases=("msmarco",))
def passage_retrieval(model: Any, collection: str | Path | Iterable[tuple[str, str]], queries: Mapping[str, str],
                      qrels: Mapping[str, set[str]], dataset_name: str, batch_size: int = 256,
                      chunk_size: int = 65536, project: bool = True,
                      mrr_at_k: Sequence[int] = AT_K["mrr_at_k"], ndcg_at_k: Sequence[int] = AT_K["ndcg_at_k"],
                      accuracy_at_k: Sequence[int] = AT_K["accuracy_at_k"],
                      precision_recall_at_k: Sequence[int] = AT_K["precision_recall_at_k"],
                      map_at_k: Sequence[int] = AT_K["map_at_k"]) -> dict[str, float]:
    """Dense retrieval of ``queries`` ({qid: text}, only those with qrels) over ``collection`` (a
    ``collection.tsv`` path, streamed, or ``(pid, passage)`` pairs) -> ``passage_retrieval/<dataset>/
    <metric>@<k>`` (see :func:`ranking_metrics`); the ``*_at_k`` options are the evaluator's. Each query
    keeps its best ``max(all ks)`` passages, as the evaluator does.

    Raises ValueError for an empty or non-positive list of ks, naming the option.
    """
    at_k = {"mrr_at_k": mrr_at_k, "ndcg_at_k": ndcg_at_k, "accuracy_at_k": accuracy_at_k,
            "precision_recall_at_k": precision_recall_at_k, "map_at_k": map_at_k}
    for name, ks in at_k.items():
        if isinstance(ks, (str, int)) or not ks or not all(isinstance(k, int) and k > 0 for k in ks):
            raise ValueError(f"passage_retrieval option {name} must be a non-empty list of positive ints, got {ks!r}")
    qids = [q for q in queries if qrels.get(q)]
    device = model_device(model)
    query_feats = extract_text_features(model, [queries[q] for q in qids], batch_size, project=project).to(device)
    pairs = iter_collection(collection) if isinstance(collection, (str, Path)) else collection
    chunks = (([pid for pid, _ in chunk],
               extract_text_features(model, [text for _, text in chunk], batch_size, project=project))
              for chunk in _chunks(pairs, chunk_size))
    ranked = dict(zip(qids, dense_search(query_feats, chunks, max(max(ks) for ks in at_k.values()))))
    return prefixed(TASK, dataset_name, ranking_metrics(ranked, qrels, at_k))
