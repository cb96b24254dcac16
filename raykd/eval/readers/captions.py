"""Readers for image-caption retrieval sets: MS-COCO captions JSON, Karpathy split JSON, and a TSV.

All return :class:`CaptionData`: ``images`` (paths, one per image), ``captions`` (all captions) and
``caption_image`` (int64 ``[num_captions]``, the index in ``images`` of each caption's image).
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from raykd.eval.readers._files import names_file, open_text, require_file

_PATH_HEADERS = {"filepath", "image", "image_path", "path", "file", "filename", "file_name", "url"}
_TEXT_HEADERS = {"caption", "captions", "title", "text", "sentence"}


@dataclass
class CaptionData:
    images: list[str]
    captions: list[str]
    caption_image: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        self.caption_image = np.asarray(self.caption_image, dtype=np.int64)
        if len(self.captions) != len(self.caption_image):
            raise ValueError("captions and caption_image differ in length")


@names_file("COCO captions file")
def read_coco_captions(json_path: str | Path, image_dir: str | Path) -> CaptionData:
    """MS-COCO ``captions_val{2014,2017}.json``: ``{"images": [{"id", "file_name"}],
    "annotations": [{"image_id", "caption"}]}``. Images keep the file's order; paths join ``image_dir``."""
    with open(require_file(json_path, "COCO captions file"), encoding="utf-8") as f:
        data = json.load(f)
    index = {img["id"]: i for i, img in enumerate(data["images"])}
    images = [str(Path(image_dir) / img["file_name"]) for img in data["images"]]
    anns = data["annotations"]
    return CaptionData(images, [a["caption"].strip() for a in anns], [index[a["image_id"]] for a in anns])


@names_file("Karpathy split file")
def read_karpathy(json_path: str | Path, image_dir: str | Path, split: str = "test") -> CaptionData:
    """Karpathy split JSON (``dataset_coco.json``, ``dataset_flickr30k.json``): ``{"images": [{"filepath"
    (optional), "filename", "split", "sentences": [{"raw"}]}]}``; keeps the images of ``split``."""
    with open(require_file(json_path, "Karpathy split file"), encoding="utf-8") as f:
        entries = [e for e in json.load(f)["images"] if e["split"] == split]
    images, captions, caption_image = [], [], []
    for i, entry in enumerate(entries):
        images.append(str(Path(image_dir) / entry.get("filepath", "") / entry["filename"]))
        for sentence in entry["sentences"]:
            captions.append(sentence["raw"].strip())
            caption_image.append(i)
    return CaptionData(images, captions, caption_image)


@names_file("caption TSV")
def read_caption_tsv(tsv_path: str | Path, image_dir: str | Path | None = None) -> CaptionData:
    """TSV of ``image_path<TAB>caption`` rows (an optional header such as ``filepath<TAB>caption`` is skipped).

    Rows sharing a path are one image with several captions. Relative paths are resolved against
    ``image_dir`` (default: the TSV's folder).
    """
    tsv_path = require_file(tsv_path, "caption TSV")
    base = Path(image_dir) if image_dir is not None else tsv_path.parent
    index: dict[str, int] = {}
    captions, caption_image = [], []
    with open_text(tsv_path) as f:
        for n, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)):
            if not row or (n == 0 and row[0].lower() in _PATH_HEADERS and row[-1].lower() in _TEXT_HEADERS):
                continue
            if len(row) < 2:
                raise ValueError(f"{tsv_path}:{n + 1}: expected 'image_path<TAB>caption', got {row!r}")
            captions.append(row[1].strip())
            caption_image.append(index.setdefault(str(base / row[0]), len(index)))
    return CaptionData(list(index), captions, caption_image)
