"""Every reader: published-layout quirks (quotes, gzip, headers, delimiters), and a missing or malformed file
fails with an error naming it."""
import gzip
import json

import numpy as np
import pytest

from raykd.eval.readers import (read_caption_tsv, read_coco_captions, read_karpathy, read_lines, read_npz_split,
                                read_qrels, read_queries, read_senteval_sts, read_sick, read_stsb_csv,
                                read_stsb_tsv_gz, read_triplets_csv, read_word_pairs)


# ---------------------------------------------------------------------------------------------- quirks
def test_unbalanced_quotes_are_text_in_tab_separated_files(tmp_path):
    """SentEval, STS-B and SICK files are not CSV-quoted: a lone '"' is part of the sentence."""
    sts = tmp_path / "STS12-en-test"
    sts.mkdir()
    (sts / "STS.input.MSRvid.txt").write_text('A man says "hi.\tA "quoted" man.\n')
    (sts / "STS.gs.MSRvid.txt").write_text("3.8\n")
    out = read_senteval_sts(sts)["MSRvid"]
    assert (out.sentences1, out.sentences2) == (['A man says "hi.'], ['A "quoted" man.'])
    gz = tmp_path / "stsbenchmark.tsv.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as f:
        f.write('split\tgenre\tdataset\tyear\tsid\tscore\tsentence1\tsentence2\n'
                'test\tmain-forums\tanswers-forums\t2015\t0001\t2.4\t"Unbalanced start\tend"\n')
    out = read_stsb_tsv_gz(gz)["test"]
    assert (out.sentences1, out.sentences2, list(out.scores)) == (['"Unbalanced start'], ['end"'], [2.4])
    sick = tmp_path / "SICK_test_annotated.txt"
    sick.write_text('pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n'
                    '7\tThe "kid" plays\tA child "plays\t4.2\tENTAILMENT\n')
    assert read_sick(sick)["test"].sentences2 == ['A child "plays']
    (tmp_path / "captions.tsv").write_text('a.jpg\tA sign reading "STOP\n')
    assert read_caption_tsv(tmp_path / "captions.tsv").captions == ['A sign reading "STOP']


def test_csv_quoting_in_wiki_sections(tmp_path):
    (tmp_path / "test.csv").write_text('Sentence1,Sentence2,Sentence3,Title\n'
                                       '"He said ""hi"", then left",b,"c, with comma",Some_Article\n')
    out = read_triplets_csv(tmp_path / "test.csv")
    assert (out.anchors, out.negatives) == (['He said "hi", then left'], ["c, with comma"])


def test_word_similarity_published_layouts(tmp_path):
    (tmp_path / "SimLex-999.txt").write_text(
        "word1\tword2\tPOS\tSimLex999\tconc(w1)\tconc(w2)\tconcQ\tAssoc(USF)\tSimAssoc333\tSD(SimLex)\n"
        "old\tnew\tA\t1.58\t2.72\t2.81\t2\t7.25\t1\t0.41\n"
        "smart\tintelligent\tA\t9.2\t1.75\t2.46\t1\t7.11\t1\t0.67\n")
    out = read_word_pairs(tmp_path / "SimLex-999.txt")
    assert (out.words1, out.words2, list(out.scores)) == (["old", "smart"], ["new", "intelligent"], [1.58, 9.2])
    (tmp_path / "combined.csv").write_text("Word 1,Word 2,Human (mean)\nlove,sex,6.77\ntiger,cat,7.35\n")
    out = read_word_pairs(tmp_path / "combined.csv")
    assert (out.words1, list(out.scores)) == (["love", "tiger"], [6.77, 7.35])
    (tmp_path / "EN-RG-65.txt").write_text("cord\tsmile\t0.02\nrooster\tvoyage\t0.04\n")
    assert list(read_word_pairs(tmp_path / "EN-RG-65.txt").scores) == [0.02, 0.04]
    with gzip.open(tmp_path / "rg.txt.gz", "wt") as f:
        f.write("cord smile 0.02\n")
    assert read_word_pairs(tmp_path / "rg.txt.gz").words2 == ["smile"]


# ---------------------------------------------------------------------------------------------- errors
def _write(path, text: str | bytes):
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _npz_without_labels(path):
    np.savez(path, images=np.zeros((1, 2, 2, 3), np.uint8))
    return path


MALFORMED = {  # reader -> (file name, writer of a malformed file)
    "coco": (lambda p: read_coco_captions(p, "."), "captions_val2017.json", lambda p: _write(p, '{"images": [')),
    "coco-keys": (lambda p: read_coco_captions(p, "."), "captions_val2014.json", lambda p: _write(p, '{"anns": []}')),
    "karpathy": (lambda p: read_karpathy(p, "."), "dataset_coco.json",
                 lambda p: _write(p, json.dumps({"images": [{"split": "test", "filename": "a.jpg"}]}))),
    "caption-tsv": (read_caption_tsv, "set.tsv", lambda p: _write(p, "only-a-path.jpg\n")),
    "npz": (read_npz_split, "test.npz", lambda p: _write(p, b"not a zip file")),
    "npz-keys": (read_npz_split, "train.npz", _npz_without_labels),
    "stsb-csv": (read_stsb_csv, "sts-test.csv", lambda p: _write(p, "main-news\theadlines\t2015\n")),
    "stsb-csv-score": (read_stsb_csv, "sts-test.csv", lambda p: _write(p, "a\tb\tc\td\tfive\ts1\ts2\n")),
    "stsb-gz": (read_stsb_tsv_gz, "stsbenchmark.tsv.gz", lambda p: _write(p, b"plain text, not gzip")),
    "stsb-gz-header": (read_stsb_tsv_gz, "stsbenchmark.tsv.gz", lambda p: _write(p, gzip.compress(b"a\tb\n1\t2\n"))),
    "sick": (read_sick, "SICK.txt", lambda p: _write(p, "sentence_A\tsentence_B\trelatedness_score\na\tb\thigh\n")),
    "qrels": (read_qrels, "qrels.dev.tsv", lambda p: _write(p, "1\t0\t7\tyes\n")),
    "triplets": (read_triplets_csv, "test.csv", lambda p: _write(p, "A,B,C\n1,2,3\n")),
    "word-pairs": (read_word_pairs, "RG65.txt", lambda p: _write(p, "a;b;1\nc;d\n")),
    "word-pairs-empty": (read_word_pairs, "SimLex999.txt", lambda p: _write(p, "# nothing\n\n")),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_file_is_named(tmp_path, case):
    reader, name, write = MALFORMED[case]
    path = write(tmp_path / name)
    with pytest.raises(ValueError, match=str(path).replace(".", r"\.")):
        reader(path)


def test_malformed_senteval_files_are_named(tmp_path):
    (tmp_path / "STS.input.x.txt").write_text("no tab here\n")
    (tmp_path / "STS.gs.x.txt").write_text("1\n")
    with pytest.raises(ValueError, match=r"STS\.input\.x\.txt: malformed STS input file"):
        read_senteval_sts(tmp_path)
    (tmp_path / "STS.input.x.txt").write_text("a\tb\n")
    (tmp_path / "STS.gs.x.txt").write_text("high\n")
    with pytest.raises(ValueError, match=r"STS\.gs\.x\.txt: malformed STS gold file"):
        read_senteval_sts(tmp_path)


READERS = {"coco": lambda p: read_coco_captions(p, "."), "karpathy": lambda p: read_karpathy(p, "."),
           "caption-tsv": read_caption_tsv, "npz": read_npz_split, "lines": read_lines, "stsb-csv": read_stsb_csv,
           "stsb-gz": read_stsb_tsv_gz, "sick": read_sick, "senteval": read_senteval_sts, "queries": read_queries,
           "qrels": read_qrels, "triplets": read_triplets_csv, "word-pairs": read_word_pairs}


@pytest.mark.parametrize("case", sorted(READERS))
def test_missing_file_is_named(tmp_path, case):
    with pytest.raises(FileNotFoundError, match="no-such-file"):
        READERS[case](tmp_path / "no-such-file")
