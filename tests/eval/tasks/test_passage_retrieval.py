import pytest
import torch
import torch.nn.functional as F

from raykd.eval.tasks.passage_retrieval import dense_search, passage_retrieval, ranking_metrics

from ..fakes import FakeDualEncoder, random_text_vector


def test_dense_search_matches_full_sort_across_chunks():
    g = torch.Generator().manual_seed(0)
    q, p = F.normalize(torch.randn(4, 6, generator=g), dim=-1), F.normalize(torch.randn(23, 6, generator=g), dim=-1)
    pids = [f"p{i}" for i in range(23)]
    chunks = [(pids[i:i + 5], p[i:i + 5]) for i in range(0, 23, 5)]
    out = dense_search(q, chunks, k=7)
    expected = [[pids[j] for j in row] for row in (q @ p.T).argsort(dim=1, descending=True)[:, :7].tolist()]
    assert out == expected
    assert all(len(r) == 23 for r in dense_search(q, chunks, k=1000))


def test_ranking_metrics_hand_computed():
    ranked = {"q1": ["a", "b", "c"], "q2": ["x", "y", "z"], "q3": ["m"], "q4": ["n"]}
    qrels = {"q1": {"b"}, "q2": {"z", "w"}, "q3": {"nope"}}  # q4 has no judgements: skipped
    out = ranking_metrics(ranked, qrels, k=2, mrr_at=2)
    assert out["MRR@2"] == pytest.approx((1 / 2 + 0 + 0) / 3)
    assert out["R@2"] == pytest.approx((1 + 0 + 0) / 3)
    out = ranking_metrics(ranked, qrels, k=3, mrr_at=3)
    assert out["MRR@3"] == pytest.approx((1 / 2 + 1 / 3) / 3) and out["R@3"] == pytest.approx((1 + 0.5) / 3)


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
    out = passage_retrieval(model, tmp_path / "collection.tsv", queries, qrels, "msmarco", k=1000, chunk_size=8)
    assert out["passage_retrieval/msmarco/MRR@10"] == 1.0
    assert out["passage_retrieval/msmarco/R@1000"] == 1.0
