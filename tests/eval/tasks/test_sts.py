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


def test_spearman_per_subset_and_mean(tmp_path):
    gold = {"A": [0.5, 1.0, "", 4.0, 3.0], "B": [1.0, 2.0, 3.0, 4.0]}
    cos = {"A0": 0.1, "A1": 0.2, "A2": 0.9, "A3": 0.3, "A4": 0.5, "B0": 0.9, "B1": 0.8, "B2": 0.1, "B3": 0.2}
    write_year(tmp_path / "STS12-en-test", gold)
    out = sentence_similarity(cosine_model(cos), read_senteval_sts(tmp_path / "STS12-en-test"), "STS12", batch_size=2)
    ref_a = 100 * spearmanr([0.1, 0.2, 0.3, 0.5], [0.5, 1.0, 4.0, 3.0]).statistic  # empty gold line skipped
    ref_b = 100 * spearmanr([0.9, 0.8, 0.1, 0.2], [1, 2, 3, 4]).statistic
    assert out["sts/STS12/spearman_A"] == pytest.approx(ref_a)
    assert out["sts/STS12/spearman_B"] == pytest.approx(ref_b)
    assert out["sts/STS12/spearman"] == pytest.approx((ref_a + ref_b) / 2)


def test_perfect_monotone_single_subset_is_100(tmp_path):
    write_year(tmp_path / "x", {"test": [0, 1, 2, 3]})
    cos = {"test0": -0.5, "test1": 0.0, "test2": 0.4, "test3": 0.99}
    out = sentence_similarity(cosine_model(cos), read_senteval_sts(tmp_path / "x"), "STSBenchmark")
    assert out == {"sts/STSBenchmark/spearman": pytest.approx(100.0)}
