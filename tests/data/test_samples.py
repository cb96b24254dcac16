"""Per-sample decoding and the shard error policy, without Ray (see test_pipeline.py for Ray)."""
from __future__ import annotations

import numpy as np
import pytest

from raykd.data.hash_tokenizer import HashTokenizer
from raykd.data.pipeline import iterate_shards_torch, read_shard, shard_batches
from raykd.data.samples import SampleError, ShardProcessor, decode_sample
from raykd.data.run_state import DataRunState
from raykd.specs import ImageSpec

from .conftest import make_sample

SPEC = ImageSpec(16)


def _processor(on_error="skip", batch_size=4):
    return ShardProcessor(SPEC, HashTokenizer(length=8), "none", on_error, batch_size)


def test_decode_sample_and_reasons():
    image, caption, label = decode_sample({**make_sample(5, "hi"), "__url__": "u"})
    assert image.shape == (24, 24, 3) and caption == "hi" and label == 5
    no_label = {k: v for k, v in make_sample(5, "hi").items() if k != "cls"}
    assert decode_sample(no_label)[2] == -1
    cases = {
        "missing_caption": make_sample(1, None),
        "bad_image": make_sample(1, "x", jpg=b"junk"),
        "missing_image": {"__key__": "k", "txt": b"x"},
        "bad_caption": {**make_sample(1, None), "txt": b"\xff\xfe"},
        "bad_label": {**make_sample(1, "x"), "cls": b"seven"},
    }
    for reason, sample in cases.items():
        with pytest.raises(SampleError) as info:
            decode_sample({**sample, "__url__": "shard.tar"})
        assert info.value.reason == reason and "shard.tar" in str(info.value)


def test_skip_policy_counts_per_url_and_reason(faulty_shards):
    paths, expected, n_good = faulty_shards
    processor = _processor()
    rows = []
    for path in paths:
        for batch in shard_batches(open(path, "rb").read(), path, processor):
            assert batch["image"].shape[1:] == (3, 16, 16) and batch["input_ids"].shape[1] == 8
            rows.extend(batch["label"].tolist())
    assert processor.pop_skips() == expected
    assert len(rows) == n_good and 3 not in rows and 7 not in rows and 14 in rows and 15 not in rows


@pytest.mark.parametrize("index,key", [(0, "s00003"), (1, "s00014")])
def test_raise_policy_names_shard_and_key(faulty_shards, index, key):
    path = faulty_shards[0][index]
    with pytest.raises(SampleError, match=f"{path}.*{key}"):
        list(shard_batches(open(path, "rb").read(), path, _processor("raise")))


def test_truncated_tar_keeps_samples_before_the_damage(faulty_shards):
    path = faulty_shards[0][1]
    processor = _processor()
    samples = read_shard(open(path, "rb").read(), path, processor)
    assert [s["__key__"] for s in samples] == [f"s{i:05d}" for i in range(10, 15)]
    assert processor.skips == {path: {"corrupt_tar": 1}}


def test_batches_are_full_except_the_last():
    processor = _processor(batch_size=4)
    samples = [{**make_sample(i, f"c {i}"), "__url__": "u"} for i in range(10)]
    sizes = [len(b["label"]) for b in processor.batches(samples)]
    assert sizes == [4, 4, 2]
    np.testing.assert_array_equal(
        next(processor.batches(samples[:1]))["attention_mask"], [[1, 1, 0, 0, 0, 0, 0, 0]]
    )


def test_dataloader_path_counts_skips_in_process(faulty_shards):
    paths, expected, n_good = faulty_shards
    DataRunState("test-torch").reset()
    loader = iterate_shards_torch(paths, SPEC, HashTokenizer(length=8), 4, num_workers=0, state=DataRunState("test-torch"))
    rows = [b["label"] for b in loader]
    assert sum(map(len, rows)) == n_good
    assert DataRunState("test-torch").skipped() == expected
