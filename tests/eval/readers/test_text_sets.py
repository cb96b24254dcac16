import numpy as np
import pytest

from raykd.eval.readers import iter_collection, read_qrels, read_queries, read_triplets_csv, read_word_pairs


def test_msmarco_files(tmp_path):
    (tmp_path / "collection.tsv").write_text("0\tfirst passage\n1\tsecond\tpassage with tab\n")
    (tmp_path / "queries.dev.small.tsv").write_text("100\twhat is first\n200\tsecond?\n")
    (tmp_path / "qrels.dev.tsv").write_text("100\t0\t0\t1\n200 0 1 1\n200\t0\t0\t0\n")
    assert list(iter_collection(tmp_path / "collection.tsv")) == [("0", "first passage"),
                                                                   ("1", "second\tpassage with tab")]
    assert read_queries(tmp_path / "queries.dev.small.tsv") == {"100": "what is first", "200": "second?"}
    assert read_qrels(tmp_path / "qrels.dev.tsv") == {"100": {"0"}, "200": {"1"}}
    with pytest.raises(FileNotFoundError, match="qrels.missing.tsv"):
        read_qrels(tmp_path / "qrels.missing.tsv")


def test_triplets_csv(tmp_path):
    (tmp_path / "test.csv").write_text('Sentence1,Sentence2,Sentence3\n"a, quoted",b,c\nd,e,f\n')
    out = read_triplets_csv(tmp_path / "test.csv")
    assert (out.anchors, out.positives, out.negatives) == (["a, quoted", "d"], ["b", "e"], ["c", "f"])
    (tmp_path / "bad.csv").write_text("A,B,C\n1,2,3\n")
    with pytest.raises(ValueError, match="Sentence1"):
        read_triplets_csv(tmp_path / "bad.csv")


def test_word_pairs(tmp_path):
    (tmp_path / "RG65.txt").write_text("word1;word2;score\n# comment\ncord;smile;0.02\n\ngem;jewel;3.94\n")
    out = read_word_pairs(tmp_path / "RG65.txt")
    assert (out.words1, out.words2) == (["cord", "gem"], ["smile", "jewel"])
    np.testing.assert_allclose(out.scores, [0.02, 3.94])
    (tmp_path / "bad.txt").write_text("a;b;1\nc;d\n")
    with pytest.raises(ValueError, match="bad.txt:2"):
        read_word_pairs(tmp_path / "bad.txt")
    with pytest.raises(FileNotFoundError, match="SimLex999.txt"):
        read_word_pairs(tmp_path / "SimLex999.txt")
