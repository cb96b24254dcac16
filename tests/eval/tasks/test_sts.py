import numpy as np
import pytest
from scipy.stats import spearmanr

from raykd.eval.readers import read_senteval_sts
from raykd.eval.tasks.sts import sentence_similarity

from ..fakes import FakeDualEncoder


def cosine_model(cosines: dict[str, float]) -> FakeDualEncoder:
    """Sentence "left i" -> e_0; "right i" -> a unit vector at cosine cosines[i] to e_0."""
    def text_fn(text):
        side, key = text.split(" ", 1)
        if side == "left":
            return np.array([1.0, 0.0])
        c = cosines[key]
        return np.array([c, np.sqrt(1 - c * c)])
    return FakeDualEncoder(dim=2, text_fn=text_fn)


def write_year(folder, subsets):
    folder.mkdir(parents=True)
    for name, gold in subsets.items():
        rows = "".join(f"left {name}{i}\tright {name}{i}\n" for i in range(len(gold)))
        (folder / f"STS.input.{name}.txt").write_text(rows)
        (folder / f"STS.gs.{name}.txt").write_text("".join(f"{g}\n" for g in gold))


def test_all_mean_and_wmean_over_subsets_of_different_sizes(tmp_path):
    gold = {"A": [0.5, 1.0, "", 4.0, 3.0], "B": [1.0, 2.0, 3.0, 4.0, 5.0, 2.5]}
    cos = {"A0": 0.1, "A1": 0.2, "A2": 0.9, "A3": 0.3, "A4": 0.5,
           "B0": 0.9, "B1": 0.8, "B2": 0.1, "B3": 0.2, "B4": 0.4, "B5": 0.6}
    write_year(tmp_path / "STS12-en-test", gold)
    out = sentence_similarity(cosine_model(cos), read_senteval_sts(tmp_path / "STS12-en-test"), "STS12", batch_size=2)
    pred_a, gold_a = [0.1, 0.2, 0.3, 0.5], [0.5, 1.0, 4.0, 3.0]  # the empty gold line is skipped
    pred_b, gold_b = [0.9, 0.8, 0.1, 0.2, 0.4, 0.6], [1, 2, 3, 4, 5, 2.5]
    ref_a = 100 * spearmanr(pred_a, gold_a).statistic  # rank differences 0,0,1,-1: 1 - 6*2/(4*15) = 0.8
    ref_b = 100 * spearmanr(pred_b, gold_b).statistic  # rank differences 5,3,-3,-3,-3,1: 1 - 6*62/(6*35) = -27/35
    ref_all = 100 * spearmanr(pred_a + pred_b, gold_a + gold_b).statistic
    assert out["sts/STS12/spearman_A"] == pytest.approx(ref_a) == pytest.approx(80.0)
    assert out["sts/STS12/spearman_B"] == pytest.approx(ref_b) == pytest.approx(-2700 / 35)
    assert out["sts/STS12/spearman_mean"] == pytest.approx((80 - 2700 / 35) / 2)
    assert out["sts/STS12/spearman_wmean"] == pytest.approx((4 * 80 - 6 * 2700 / 35) / 10)  # weights: 4 and 6 pairs
    assert out["sts/STS12/spearman_all"] == pytest.approx(ref_all)
    assert out["sts/STS12/spearman"] == out["sts/STS12/spearman_all"]
    # the three summaries really differ on this case, so the test tells them apart
    assert len({round(out[f"sts/STS12/spearman_{s}"], 6) for s in ("all", "mean", "wmean")}) == 3


def test_perfect_monotone_single_subset_is_100(tmp_path):
    write_year(tmp_path / "x", {"test": [0, 1, 2, 3]})
    cos = {"test0": -0.5, "test1": 0.0, "test2": 0.4, "test3": 0.99}
    out = sentence_similarity(cosine_model(cos), read_senteval_sts(tmp_path / "x"), "STSBenchmark")
    assert out == {"sts/STSBenchmark/spearman": pytest.approx(100.0)}
