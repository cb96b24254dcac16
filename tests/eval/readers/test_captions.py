import json

import numpy as np
import pytest

from raykd.eval.readers import read_caption_tsv, read_coco_captions, read_karpathy


def test_coco_captions_json(tmp_path):
    data = {"images": [{"id": 42, "file_name": "a.jpg"}, {"id": 7, "file_name": "b.jpg"}],
            "annotations": [{"image_id": 7, "caption": " b one "}, {"image_id": 42, "caption": "a one"},
                            {"image_id": 7, "caption": "b two"}]}
    (tmp_path / "captions_val2017.json").write_text(json.dumps(data))
    out = read_coco_captions(tmp_path / "captions_val2017.json", tmp_path / "val2017")
    assert out.images == [str(tmp_path / "val2017/a.jpg"), str(tmp_path / "val2017/b.jpg")]
    assert out.captions == ["b one", "a one", "b two"]
    np.testing.assert_array_equal(out.caption_image, [1, 0, 1])


def test_karpathy_split_keeps_requested_split(tmp_path):
    data = {"images": [
        {"filepath": "val2014", "filename": "x.jpg", "split": "test", "sentences": [{"raw": "x1"}, {"raw": "x2"}]},
        {"filepath": "val2014", "filename": "y.jpg", "split": "train", "sentences": [{"raw": "y1"}]},
        {"filename": "z.jpg", "split": "test", "sentences": [{"raw": "z1 "}]},
    ]}
    (tmp_path / "dataset_coco.json").write_text(json.dumps(data))
    out = read_karpathy(tmp_path / "dataset_coco.json", tmp_path)
    assert out.images == [str(tmp_path / "val2014/x.jpg"), str(tmp_path / "z.jpg")]
    assert out.captions == ["x1", "x2", "z1"]
    np.testing.assert_array_equal(out.caption_image, [0, 0, 1])
    assert read_karpathy(tmp_path / "dataset_coco.json", tmp_path, split="train").captions == ["y1"]


def test_caption_tsv_groups_rows_by_image_and_skips_header(tmp_path):
    (tmp_path / "set.tsv").write_text("filepath\tcaption\nimgs/a.png\ta cat\nimgs/b.png\ta dog\n"
                                      "imgs/a.png\tanother cat\n\n")
    out = read_caption_tsv(tmp_path / "set.tsv")
    assert out.images == [str(tmp_path / "imgs/a.png"), str(tmp_path / "imgs/b.png")]
    assert out.captions == ["a cat", "a dog", "another cat"]
    np.testing.assert_array_equal(out.caption_image, [0, 1, 0])


@pytest.mark.parametrize("reader", [lambda p: read_coco_captions(p, "."), lambda p: read_karpathy(p, "."),
                                    read_caption_tsv])
def test_missing_file_names_the_path(tmp_path, reader):
    with pytest.raises(FileNotFoundError, match="missing.json"):
        reader(tmp_path / "missing.json")
