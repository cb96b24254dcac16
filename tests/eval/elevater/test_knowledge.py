"""Knowledge-augmented prompts as Elevater_Toolkit_IC's ``extract_text_features`` builds them, the NLTK
tokenizer rules they go through, and ``num_params`` as the toolkit's submission readme defines it."""
import json

import pytest

from raykd.eval.elevater import get_dataset
from raykd.eval.elevater.knowledge import (Knowledge, class_prompts, nltk_word_tokenizer, read_knowledge,
                                           word_tokenize)
from raykd.eval.elevater.modes import EvalOptions
from raykd.eval.elevater.work import WorkItem, average_head_classes, parameter_counts, run_item

from ..fakes import FakeDualEncoder
from .layout import write_mnist
from .test_modes import digit_text

MUFFINS = "Good muffins cost $3.88 (roughly 3,36 euros)\nin New York.  Please buy me\ntwo of them.\nThanks."


def test_the_tokenizer_follows_nltks_documented_examples():
    # NLTKWordTokenizer.tokenize's and word_tokenize's docstring examples (nltk 3.7)
    assert nltk_word_tokenizer(MUFFINS) == [
        "Good", "muffins", "cost", "$", "3.88", "(", "roughly", "3,36", "euros", ")", "in", "New", "York.",
        "Please", "buy", "me", "two", "of", "them.", "Thanks", "."]
    assert word_tokenize(MUFFINS) == [
        "Good", "muffins", "cost", "$", "3.88", "(", "roughly", "3,36", "euros", ")", "in", "New", "York", ".",
        "Please", "buy", "me", "two", "of", "them", ".", "Thanks", "."]
    assert nltk_word_tokenizer('He said "don\'t".') == ["He", "said", "``", "do", "n't", "''", "."]


def test_prompts_are_every_template_followed_by_each_knowledge_text():
    knowledge = {"cat": ["A small animal.", "Purrs"], "dog": [None]}
    prompts = class_prompts(["cat", "dog", "cow"], ["a {}.", "the {}!"], knowledge)
    assert prompts[0] == ["a cat. ; cat , A small animal .", "the cat! ; cat , A small animal .",
                          "a cat. ; cat , Purrs", "the cat! ; cat , Purrs"]
    assert prompts[1] == ["a dog. ", "the dog! "]  # a null text: the toolkit appends " " + "" to each template
    assert prompts[2] == ["a cow.", "the cow!"]  # no knowledge: the plain templates


def _write_knowledge(root, dataset, names):
    external = [{"classname": n, "def_wiki": f"wiki {n}.", "def_wn": f"wn {n}.",
                 "path_wn": [n, "p1", "p2", "p3"]} for n in names]
    gpt3 = [{"classname": n, "gpt3": [f" g{i} {n}." for i in range(5)]} for n in names]
    (root / "knowledge" / "external").mkdir(parents=True)
    (root / "knowledge" / "gpt3").mkdir(parents=True)
    (root / "knowledge" / "external" / f"{dataset}_knowledge.tsv").write_text(json.dumps(external))
    (root / "knowledge" / "gpt3" / f"GPT3_{dataset}.tsv").write_text(json.dumps(gpt3))


def test_reading_the_toolkits_knowledge_files(tmp_path):
    _write_knowledge(tmp_path, "mnist", ["0", "1"])
    assert read_knowledge(tmp_path, "mnist", Knowledge("wordnet_path"))["0"] == ["0 p1 p2"]  # first 3 of the path
    assert read_knowledge(tmp_path, "mnist", Knowledge("wiki", gpt3=2))["1"] == ["wiki 1.", " g0 1.", " g1 1."]
    assert read_knowledge(tmp_path, "mnist", Knowledge(gpt3=1))["1"] == [" g0 1."]
    with pytest.raises(FileNotFoundError, match="knowledge file not found: .*external/dtd_knowledge.tsv"):
        read_knowledge(tmp_path, "dtd", Knowledge("wordnet"))
    with pytest.raises(ValueError, match="unknown knowledge source"):
        Knowledge("gpt4")


def test_zeroshot_with_knowledge_prompts(tmp_path):
    write_mnist(tmp_path, mode="RGB")
    _write_knowledge(tmp_path, "mnist", [str(d) for d in range(10)])
    seen = []

    def text_fn(prompt):
        seen.append(prompt)
        return digit_text(prompt)

    opts = EvalOptions(knowledge=Knowledge("wiki"))
    result = run_item(FakeDualEncoder(dim=48, text_fn=text_fn), WorkItem(get_dataset("mnist"), "zeroshot", 0, 0,
                                                                         str(tmp_path), opts))
    assert result.ok, result.error
    assert result.value == 1.0 and result.hparams["knowledge"]["classes_with_knowledge"] == 10
    assert 'a photo of the number: "3". ; 3 , wiki 3 .' in seen


def test_num_params_is_the_backbone_plus_the_average_head():
    assert average_head_classes() == pytest.approx(1151 / 20)  # 102 + 10 + 100 + ... + 20 classes over 20 sets
    model = FakeDualEncoder(dim=8, image_dim=48)
    backbone = sum(p.numel() for p in model.parameters())
    assert parameter_counts(model) == {"num_params": backbone, "num_visual_params": 0,
                                       "num_backbone_params": backbone}
    assert parameter_counts(model, head_dim=8)["num_params"] == backbone + round(8 * 57.55)
