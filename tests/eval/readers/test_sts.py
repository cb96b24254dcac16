import gzip

import numpy as np
import pytest

from raykd.eval.readers import read_senteval_sts, read_sick, read_stsb_csv, read_stsb_tsv_gz


def test_senteval_folder_skips_empty_gold_lines(tmp_path):
    (tmp_path / "STS.input.MSRpar.txt").write_text("a b\tc d\ne f\tg h\ni j\tk l\n")
    (tmp_path / "STS.gs.MSRpar.txt").write_text("4.2\n\n1.0\n")
    (tmp_path / "STS.input.headlines.txt").write_text("x\ty\textra\tcols\n")
    (tmp_path / "STS.gs.headlines.txt").write_text("3\n")
    out = read_senteval_sts(tmp_path)
    assert sorted(out) == ["MSRpar", "headlines"]
    assert out["MSRpar"].sentences1 == ["a b", "i j"] and out["MSRpar"].sentences2 == ["c d", "k l"]
    np.testing.assert_allclose(out["MSRpar"].scores, [4.2, 1.0])
    assert out["headlines"].sentences2 == ["y"]


def test_senteval_missing_gold_and_folder(tmp_path):
    (tmp_path / "STS.input.x.txt").write_text("a\tb\n")
    with pytest.raises(FileNotFoundError, match="STS.gs.x.txt"):
        read_senteval_sts(tmp_path)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        read_senteval_sts(tmp_path / "nowhere")


def test_stsb_csv_columns(tmp_path):
    path = tmp_path / "sts-test.csv"
    path.write_text("main-captions\tMSRvid\t2012test\t0001\t5.000\tA man plays.\tA man is playing.\n"
                    "main-news\theadlines\t2015\t0002\t0.5\tOne \"quoted\" thing\tOther\tsource1\tsource2\n")
    out = read_stsb_csv(path)["test"]
    assert out.sentences1 == ["A man plays.", 'One "quoted" thing'] and out.sentences2[1] == "Other"
    np.testing.assert_allclose(out.scores, [5.0, 0.5])


def test_stsb_tsv_gz_filters_split(tmp_path):
    path = tmp_path / "stsbenchmark.tsv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("split\tgenre\tdataset\tyear\tsid\tscore\tsentence1\tsentence2\n"
                "train\tmain-news\theadlines\t2015\t1\t2.0\ttr a\ttr b\n"
                "test\tmain-news\theadlines\t2015\t2\t3.5\tte a\tte b\n")
    out = read_stsb_tsv_gz(path)["test"]
    assert (out.sentences1, out.sentences2, list(out.scores)) == (["te a"], ["te b"], [3.5])
    assert list(read_stsb_tsv_gz(path, "train")) == ["train"]
    with pytest.raises(ValueError, match="stsbenchmark.tsv.gz: no row of split 'dev'"):
        read_stsb_tsv_gz(path, "dev")


def test_sick_annotated_and_full_file(tmp_path):
    annotated = tmp_path / "SICK_test_annotated.txt"
    annotated.write_text("pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n"
                         "1\tA dog runs\tA dog is running\t4.9\tENTAILMENT\n")
    out = read_sick(annotated)["test"]
    assert (out.sentences1, list(out.scores)) == (["A dog runs"], [4.9])
    full = tmp_path / "SICK.txt"
    full.write_text("pair_ID\tsentence_A\tsentence_B\tentailment_label\trelatedness_score\tSemEval_set\n"
                    "1\ta\tb\tNEUTRAL\t3.0\tTRAIN\n2\tc\td\tNEUTRAL\t2.0\tTEST\n")
    out = read_sick(full)["test"]
    assert (out.sentences1, out.sentences2, list(out.scores)) == (["c"], ["d"], [2.0])
    with pytest.raises(FileNotFoundError, match="SICK_nope.txt"):
        read_sick(tmp_path / "SICK_nope.txt")
