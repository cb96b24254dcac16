import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr

from raykd.eval.readers import read_word_pairs
from raykd.eval.tasks.word_similarity import word_similarity

from ..fakes import FakeDualEncoder, random_text_vector


def test_spearman_of_template_averaged_word_embeddings(tmp_path):
    (tmp_path / "RG65.txt").write_text("cord;smile;0.02\ngem;jewel;3.94\ncar;automobile;3.92\ncord;gem;1.0\n")
    pairs = read_word_pairs(tmp_path / "RG65.txt")
    templates = ["{}", "a photo of a {}."]
    model = FakeDualEncoder(dim=6)  # each prompt string gets its own fixed random vector
    out = word_similarity(model, pairs.words1, pairs.words2, pairs.scores, "RG65", templates=templates)

    def word_vec(w):
        vecs = F.normalize(torch.tensor(np.stack([random_text_vector(t.format(w), 6) for t in templates])), dim=-1)
        return F.normalize(vecs.mean(0), dim=0)
    cos = [float(word_vec(a) @ word_vec(b)) for a, b in zip(pairs.words1, pairs.words2)]
    assert out == {"word_similarity/RG65/spearman": pytest.approx(100 * spearmanr(cos, pairs.scores).statistic)}


def test_default_templates_and_perfect_order():
    dirs = {"a": [1, 0], "b": [1, 0.2], "c": [0, 1], "d": [-1, 0.1]}

    def text_fn(prompt):
        word = next(w for w in dirs if prompt in (w, f"a photo of a {w}.", f"this is a {w}."))
        return np.array(dirs[word], dtype=float)
    model = FakeDualEncoder(dim=2, text_fn=text_fn)
    out = word_similarity(model, ["a", "a", "a"], ["b", "c", "d"], [9.0, 5.0, 1.0], "toy")
    assert out["word_similarity/toy/spearman"] == pytest.approx(100.0)
