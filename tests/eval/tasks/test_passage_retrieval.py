from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from raykd.eval.features import extract_text_features
from raykd.eval.tasks.passage_retrieval import (AT_K, dense_search, ir_evaluator_class, passage_retrieval,
                                                ranking_metrics)

from ..fakes import FakeDualEncoder, random_text_vector


def test_dense_search_matches_full_sort_across_chunks():
    g = torch.Generator().manual_seed(0)
    q, p = F.normalize(torch.randn(4, 6, generator=g), dim=-1), F.normalize(torch.randn(23, 6, generator=g), dim=-1)
    pids = [f"p{i}" for i in range(23)]
    chunks = [(pids[i:i + 5], p[i:i + 5]) for i in range(0, 23, 5)]
    out = dense_search(q, chunks, k=7)
    scores = q @ p.T
    expected = [[pids[j] for j in row] for row in scores.argsort(dim=1, descending=True)[:, :7].tolist()]
    assert [[pid for pid, _ in row] for row in out] == expected
    assert out[0][0][1] == pytest.approx(float(scores[0].max()))
    assert all(len(r) == 23 for r in dense_search(q, chunks, k=1000))


def test_ranking_metrics_hand_computed():
    ranked = {"q1": [("a", 0.9), ("b", 0.8), ("c", 0.7)], "q2": [("x", 0.9), ("y", 0.5), ("z", 0.1)],
              "q3": [("m", 0.3)], "q4": [("n", 0.3)]}
    qrels = {"q1": {"b"}, "q2": {"z", "w"}, "q3": {"nope"}}  # q4 has no judgements: skipped
    at_k = {"mrr_at_k": [3], "ndcg_at_k": [3], "accuracy_at_k": [1, 2], "precision_recall_at_k": [2, 3],
            "map_at_k": [3]}
    out = ranking_metrics(ranked, qrels, at_k)
    assert out["mrr@3"] == pytest.approx((1 / 2 + 1 / 3 + 0) / 3)
    assert out["recall@2"] == pytest.approx((1 + 0 + 0) / 3) and out["recall@3"] == pytest.approx((1 + 0.5) / 3)
    assert out["precision@2"] == pytest.approx((1 / 2) / 3) and out["precision@3"] == pytest.approx((2 / 3) / 3)
    assert out["accuracy@1"] == 0 and out["accuracy@2"] == pytest.approx(1 / 3)
    # q1: one relevant at rank 2 -> DCG 1/log2(3), ideal 1; q2: one of two relevant at rank 3 -> DCG 1/log2(4) = 0.5,
    # ideal 1 + 1/log2(3); AP@3: q1 (1/2)/1, q2 (1/3)/2
    ndcg_q2 = 0.5 / (1 + 1 / torch.log2(torch.tensor(3.0)).item())
    assert out["ndcg@3"] == pytest.approx((1 / torch.log2(torch.tensor(3.0)).item() + ndcg_q2) / 3)
    assert out["map@3"] == pytest.approx((1 / 2 + 1 / 6) / 3)
    with pytest.raises(ValueError, match="no query has relevance judgements"):
        ranking_metrics({"q4": [("n", 1.0)]}, qrels, at_k)


class SentenceTransformerLike:
    """What InformationRetrievalEvaluator asks of a model, answered by raykd's text features."""

    def __init__(self, model):
        self.model, self.model_card_data = model, SimpleNamespace(set_evaluation_metrics=lambda *a, **k: None)

    def encode(self, texts, **kwargs):
        return extract_text_features(self.model, texts, batch_size=5)

    encode_query = encode_document = encode


def test_metrics_equal_sentence_transformers_evaluator_on_a_small_corpus(tmp_path):
    passages = {str(i): f"passage number {i}" for i in range(40)}
    (tmp_path / "collection.tsv").write_text("".join(f"{pid}\t{text}\n" for pid, text in passages.items()))
    queries = {f"q{i}": f"query {i}" for i in range(8)}
    qrels = {"q0": {"3"}, "q1": {"5", "17"}, "q2": {"1", "2", "39"}, "q3": {"20"}, "q4": {"8", "9"}, "q5": {"0"},
             "q6": set()}  # q6 and q7 are not judged

    def text_fn(text):  # queries land near some passages, not always the relevant ones
        base = random_text_vector(text, 12)
        if text.startswith("query"):
            base = base + 1.5 * random_text_vector(f"passage number {3 * int(text.split()[1])}", 12)
        return base
    model = FakeDualEncoder(dim=12, text_fn=text_fn)
    ours = passage_retrieval(model, tmp_path / "collection.tsv", queries, qrels, "msmarco", chunk_size=7, batch_size=5)

    from sentence_transformers.util import cos_sim
    evaluator = ir_evaluator_class()(queries, passages, qrels, corpus_chunk_size=9, write_csv=False,
                                   score_functions={"cosine": cos_sim}, **{n: list(ks) for n, ks in AT_K.items()})
    theirs = evaluator(SentenceTransformerLike(model))
    assert len(theirs) == len(ours) == 1 + 1 + 4 + 2 * 6 + 1
    for key, value in theirs.items():
        assert ours[f"passage_retrieval/msmarco/{key.removeprefix('cosine_')}"] == pytest.approx(value, abs=1e-9)
    assert 0 < ours["passage_retrieval/msmarco/mrr@10"] < 1  # a case where ranking matters


def test_bad_k_option_is_named():
    with pytest.raises(ValueError, match="map_at_k must be a non-empty list of positive ints"):
        passage_retrieval(FakeDualEncoder(), [("1", "a")], {"q": "b"}, {"q": {"1"}}, "msmarco", map_at_k=[])


def test_end_to_end_on_msmarco_files(tmp_path):
    passages = {str(i): f"passage number {i}" for i in range(30)}
    (tmp_path / "collection.tsv").write_text("".join(f"{pid}\t{text}\n" for pid, text in passages.items()))
    queries = {"q7": "query about 7", "q12": "query about 12", "q99": "unjudged query"}
    qrels = {"q7": {"7"}, "q12": {"12", "3"}}

    def text_fn(text):  # a query embeds next to its first relevant passage
        key = text.rsplit(" ", 1)[1]
        base = random_text_vector(f"passage number {key}" if text.startswith("query") else text, 16)
        return base + (0.01 * random_text_vector(text, 16) if text.startswith("query") else 0)
    model = FakeDualEncoder(dim=16, text_fn=text_fn)
    out = passage_retrieval(model, tmp_path / "collection.tsv", queries, qrels, "msmarco", chunk_size=8)
    assert out["passage_retrieval/msmarco/mrr@10"] == 1.0
    assert out["passage_retrieval/msmarco/recall@1000"] == 1.0
    assert out["passage_retrieval/msmarco/recall@1"] == pytest.approx((1 + 0.5) / 2)
