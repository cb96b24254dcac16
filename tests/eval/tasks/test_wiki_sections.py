import numpy as np
import pytest

from raykd.eval.readers import read_triplets_csv
from raykd.eval.tasks.wiki_sections import wiki_sections

from ..fakes import FakeDualEncoder

VECTORS = {"a1": [1, 0], "p1": [1, 0.1], "n1": [0, 1],   # correct
           "a2": [1, 0], "p2": [0, 1], "n2": [1, 0.2],   # wrong
           "a3": [0, 1], "p3": [0.1, 1], "n3": [-1, 0]}  # correct


def test_triplet_accuracy_from_csv(tmp_path):
    (tmp_path / "test.csv").write_text("Sentence1,Sentence2,Sentence3\na1,p1,n1\na2,p2,n2\na3,p3,n3\n")
    t = read_triplets_csv(tmp_path / "test.csv")
    model = FakeDualEncoder(dim=2, text_fn=lambda s: np.array(VECTORS[s], dtype=float))
    out = wiki_sections(model, t.anchors, t.positives, t.negatives, "wikisections", batch_size=2)
    assert out == {"wiki_sections/wikisections/accuracy": pytest.approx(2 / 3)}
