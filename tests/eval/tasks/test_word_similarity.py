import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr

from raykd.eval.readers import read_word_pairs
from raykd.eval.planning import parse_options
from raykd.eval.tasks.word_similarity import PROTOCOL_TEMPLATES, word_similarity

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


ANGLES = {"a": (0, 0), "b": (10, 80), "c": (50, 30), "d": (90, 100)}  # degrees under ("{}", "a {}.")


def angle_model() -> FakeDualEncoder:
    def text_fn(prompt):
        template, word = (1, prompt[2:-1]) if prompt.startswith("a ") and prompt.endswith(".") else (0, prompt)
        rad = np.deg2rad(ANGLES[word][template])
        return np.array([np.cos(rad), np.sin(rad)])
    return FakeDualEncoder(dim=2, text_fn=text_fn)


def test_itra_protocol_expands_each_pair_per_template():
    args = (["a", "a", "a"], ["b", "c", "d"], [9.0, 5.0, 1.0], "toy")
    itra = word_similarity(angle_model(), *args, protocol="itra", templates=["{}", "a {}."])
    # rows (cosine, rating): (cos 10, 9) (cos 80, 9) (cos 50, 5) (cos 30, 5) (cos 90, 1) (cos 100, 1)
    # cosine ranks 6 3 4 5 2 1, rating ranks 5.5 5.5 3.5 3.5 1.5 1.5 -> Pearson of ranks = 12 / sqrt(17.5 * 16)
    assert itra["word_similarity/toy/spearman"] == pytest.approx(100 * 12 / np.sqrt(280))
    # average: b, c, d embed at 45, 40 and 95 degrees -> cosine ranks 2 3 1 against 3 2 1 -> 1 - 6 * 2 / 24
    average = word_similarity(angle_model(), *args, protocol="average", templates=["{}", "a {}."])
    assert average["word_similarity/toy/spearman"] == pytest.approx(50.0)


def test_itra_protocol_defaults_to_its_80_imagenet_templates():
    seen = []
    model = FakeDualEncoder(dim=4, text_fn=lambda p: seen.append(p) or random_text_vector(p, 4))
    word_similarity(model, ["cat", "car"], ["dog", "bus"], [3.0, 1.0], "toy", protocol="itra")
    assert len(PROTOCOL_TEMPLATES["itra"]) == 80 and len(set(seen)) == 4 * 80
    # first and last of ITRA's itra/data/classname_and_prompt/ImageNet.py `templates`
    itra = PROTOCOL_TEMPLATES["itra"]
    assert itra[0] == "a bad photo of a {}." and itra[-1] == "a tattoo of the {}."


def test_protocol_option_is_parsed_and_checked():
    assert parse_options(["word.protocol=itra"], ["word_similarity"]) == {"word_similarity": {"protocol": "itra"}}
    with pytest.raises(ValueError, match="word_similarity option protocol: unknown 'itr'.*'average', 'itra'"):
        word_similarity(FakeDualEncoder(), ["a"], ["b"], [1.0], "toy", protocol="itr")
