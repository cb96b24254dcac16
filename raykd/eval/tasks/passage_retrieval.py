"""Passage retrieval on MS MARCO (Nguyen et al., 2016) with the text tower as a dense bi-encoder: exact
inner-product search over the whole collection (normalised embeddings, chunked matmul on the model's
device, a running top-k), scored by MRR@10 and Recall@k (k = 1000)."""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
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


def _chunks(pairs: Iterable[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    it = iter(pairs)
    while chunk := list(islice(it, size)):
        yield chunk


def dense_search(query_feats: torch.Tensor, passage_chunks: Iterable[tuple[list[str], torch.Tensor]],
                 k: int = 1000) -> list[list[str]]:
    """Exact top-``k`` search. ``query_feats [Q, D]``; ``passage_chunks`` yields ``(pids, feats [n, D])``.
    Returns, per query, the pids of its best ``min(k, #passages)`` passages, best first."""
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
    return [list(pid_array[row]) for row in top_index.cpu().numpy()]


def ranking_metrics(ranked: Mapping[str, list[str]], qrels: Mapping[str, set[str]], k: int = 1000,
                    mrr_at: int = 10) -> dict[str, float]:
    """Bare ``MRR@<mrr_at>`` and ``R@<k>`` (fraction of each query's relevant passages in its top k,
    averaged) over the queries of ``ranked`` that have relevance judgements."""
    rr, recall = [], []
    for qid, pids in ranked.items():
        relevant = qrels.get(qid)
        if not relevant:
            continue
        first = next((rank for rank, pid in enumerate(pids[:mrr_at], start=1) if pid in relevant), None)
        rr.append(1.0 / first if first else 0.0)
        recall.append(len(relevant & set(pids[:k])) / len(relevant))
    if not rr:
        raise ValueError("no query has relevance judgements")
    return {f"MRR@{mrr_at}": float(np.mean(rr)), f"R@{k}": float(np.mean(recall))}


@register_task(TASK, data_kind="passages", modality="text", aliases=("msmarco",))
def passage_retrieval(model: Any, collection: str | Path | Iterable[tuple[str, str]], queries: Mapping[str, str],
                      qrels: Mapping[str, set[str]], dataset_name: str, k: int = 1000, batch_size: int = 256,
                      chunk_size: int = 65536, project: bool = True) -> dict[str, float]:
    """Dense retrieval of ``queries`` ({qid: text}, only those with qrels) over ``collection`` (a
    ``collection.tsv`` path, streamed, or ``(pid, passage)`` pairs) -> ``passage_retrieval/<dataset>/
    {MRR@10, R@<k>}``."""
    qids = [q for q in queries if qrels.get(q)]
    device = model_device(model)
    query_feats = extract_text_features(model, [queries[q] for q in qids], batch_size, project=project).to(device)
    pairs = iter_collection(collection) if isinstance(collection, (str, Path)) else collection
    chunks = (([pid for pid, _ in chunk],
               extract_text_features(model, [text for _, text in chunk], batch_size, project=project))
              for chunk in _chunks(pairs, chunk_size))
    ranked = dict(zip(qids, dense_search(query_feats, chunks, k)))
    return prefixed(TASK, dataset_name, ranking_metrics(ranked, qrels, k))
