import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from raykd.eval.features import extract_image_features
from raykd.eval.readers import read_coco_captions
from raykd.eval.tasks.retrieval import retrieval, retrieval_recalls

from ..fakes import FakeDualEncoder


def reference_recalls(sim: np.ndarray, caption_image: np.ndarray, ks=(1, 5, 10)) -> dict:
    """Brute force from full rankings: best rank of any GT caption per image; rank of own image per caption."""
    out = {}
    i2t_rank = [min(list(np.argsort(-sim[i], kind="stable")).index(t) for t in np.flatnonzero(caption_image == i))
                for i in range(sim.shape[0])]
    t2i_rank = [list(np.argsort(-sim[:, t], kind="stable")).index(caption_image[t]) for t in range(sim.shape[1])]
    for k in ks:
        out[f"image_to_text_R@{k}"] = np.mean(np.array(i2t_rank) < k)
    for k in ks:
        out[f"text_to_image_R@{k}"] = np.mean(np.array(t2i_rank) < k)
    out["mean_recall"] = np.mean(list(out.values()))
    return out


def test_hand_computed_multi_caption_case():
    # 3 images, 4 captions; caption -> image [0, 0, 1, 2]
    img = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1]])
    txt = F.normalize(torch.tensor([[0.1, 1, 0], [1, 0, 0.1], [0, 0, 1], [0, 1, 0.2]]), dim=-1)
    out = retrieval_recalls(img, txt, [0, 0, 1, 2], ks=(1, 2))
    # image 0: best caption is 1 (its own) -> hit@1. image 1: best is 0 (wrong), then 3 (wrong) -> miss@2.
    # image 2: best is 2 (wrong), then 3 (own) -> hit@2.
    assert out["image_to_text_R@1"] == pytest.approx(1 / 3) and out["image_to_text_R@2"] == pytest.approx(2 / 3)
    # caption 0 -> image 1 (wrong), image 0 second; caption 1 -> image 0; caption 2 -> image 2 (wrong),
    # image 1 not in top 2; caption 3 -> image 1 (wrong), image 2 second.
    assert out["text_to_image_R@1"] == pytest.approx(1 / 4) and out["text_to_image_R@2"] == pytest.approx(3 / 4)
    assert out["mean_recall"] == pytest.approx(np.mean([1 / 3, 2 / 3, 1 / 4, 3 / 4]))


def test_matches_brute_force_reference_with_chunking():
    g = torch.Generator().manual_seed(0)
    img = F.normalize(torch.randn(13, 5, generator=g), dim=-1)
    txt = F.normalize(torch.randn(40, 5, generator=g), dim=-1)
    caption_image = np.random.default_rng(0).permutation(np.arange(40) % 13)
    out = retrieval_recalls(img, txt, caption_image, chunk_size=4)
    ref = reference_recalls((img @ txt.T).numpy(), caption_image)
    assert out == pytest.approx(ref)


def test_end_to_end_on_coco_files(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "val2017").mkdir()
    images = [{"id": 100 + i, "file_name": f"{i:03d}.png"} for i in range(6)]
    for i, entry in enumerate(images):
        Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).save(tmp_path / "val2017" / entry["file_name"])
    annotations = [{"image_id": 100 + i, "caption": f"caption {j} of image {i}"} for i in range(6) for j in range(2)]
    (tmp_path / "captions.json").write_text(json.dumps({"images": images, "annotations": annotations}))
    data = read_coco_captions(tmp_path / "captions.json", tmp_path / "val2017")

    model = FakeDualEncoder(dim=8, image_size=4)
    image_feats = extract_image_features(model, data.images)
    model.text_fn = lambda text: image_feats[int(text.rsplit(" ", 1)[1])].numpy()  # caption == its image
    out = retrieval(model, data.images, data.captions, data.caption_image, "coco_tiny", batch_size=4)
    assert out["retrieval/coco_tiny/image_to_text_R@1"] == 1.0
    assert out["retrieval/coco_tiny/text_to_image_R@1"] == 1.0
    assert out["retrieval/coco_tiny/mean_recall"] == 1.0
