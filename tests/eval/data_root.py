"""Writes a tiny ``data_root`` with every layout of ``raykd.eval.datasets``, in the real file formats."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

STS = Path("SentEval/data/downstream/STS")


def _png(path: Path, rng: np.random.Generator, size=(6, 5)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def write_data_root(root: Path) -> Path:
    rng = np.random.default_rng(0)
    # classification: npz (6 classes so top5 exists) and an ImageFolder
    cls = root / "classification" / "toy"
    cls.mkdir(parents=True)
    for split, n in (("train", 36), ("test", 18)):
        np.savez(cls / f"{split}.npz", images=rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8),
                 labels=np.arange(n) % 6)
    _write(cls / "classnames.txt", "".join(f"class_{c}\n" for c in "abcdef"))
    for split in ("train", "test"):
        for c in ("cat", "dog"):
            for i in range(6):
                _png(root / "classification" / "pets" / split / c / f"{i}.png", rng)
    # captions: COCO 2017 and a TSV
    images = [{"id": i, "file_name": f"{i}.png"} for i in range(4)]
    for img in images:
        _png(root / "mscoco" / "val2017" / img["file_name"], rng)
    anns = [{"image_id": i, "caption": f"caption {j} of {i}"} for i in range(4) for j in range(2)]
    _write(root / "mscoco/annotations/captions_val2017.json", json.dumps({"images": images, "annotations": anns}))
    for i in range(3):
        _png(root / "retrieval" / "imgs" / f"{i}.png", rng)
    _write(root / "retrieval/mini.tsv", "filepath\ttitle\n" + "".join(f"imgs/{i}.png\tpicture {i}\n" for i in range(3)))
    # STS
    _write(root / STS / "STS12-en-test/STS.input.MSRpar.txt", "".join(f"s{i} a\ts{i} b\n" for i in range(5)))
    _write(root / STS / "STS12-en-test/STS.gs.MSRpar.txt", "1\n2\n\n4\n5\n")
    _write(root / STS / "STSBenchmark/sts-test.csv",
           "".join(f"main-news\theadlines\t2015\t{i}\t{i}.0\tx{i} one\tx{i} two\n" for i in range(5)))
    _write(root / "SentEval/data/downstream/SICK/SICK_test_annotated.txt",
           "pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n"
           + "".join(f"{i}\tk{i} a\tk{i} b\t{i + 1}.5\tNEUTRAL\n" for i in range(4)))
    # MS MARCO, Wiki Sections, word similarity
    _write(root / "msmarco/collection.tsv", "".join(f"{i}\tpassage {i}\n" for i in range(12)))
    _write(root / "msmarco/queries.dev.small.tsv", "1\tfirst query\n2\tsecond query\n")
    _write(root / "msmarco/qrels.dev.tsv", "1\t0\t3\t1\n2\t0\t5\t1\n")
    triplets = "".join(f"a{i},p{i},n{i}\n" for i in range(4))
    _write(root / "wikisections/test.csv", "Sentence1,Sentence2,Sentence3\n" + triplets)
    _write(root / "word_similarity/RG65.txt", "".join(f"w{i};v{i};{i}.5\n" for i in range(5)))
    return root


EXPECTED_DATASETS = {
    "classification": ["pets", "toy"],
    "captions": ["mscoco_2017", "mini"],
    "sts": ["STS12", "STSBenchmark", "SICKRelatedness"],
    "passages": ["msmarco"],
    "triplets": ["wikisections"],
    "word_pairs": ["RG65"],
}
