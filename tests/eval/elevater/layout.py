"""Writes small data sets in ELEVATER's exact on-disk layout (independently of the reader under test)."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255),
           (128, 128, 128), (255, 128, 0), (128, 0, 255), (0, 128, 64)]


def image_bytes(colour: tuple[int, int, int], size: int = 8, fmt: str = "PNG", mode: str = "RGB") -> bytes:
    """A solid-colour image (``mode="L"`` gives a grayscale one of the colour's first channel)."""
    buf = io.BytesIO()
    img = Image.new("RGB", (size, size), colour)
    (img.convert("L") if mode == "L" else img).save(buf, format=fmt)
    return buf.getvalue()


def write_zip(path: Path, members: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


def write_mnist(root: Path, per_class: int = 3, test_per_class: int = 2, mode: str = "L") -> Path:
    """``classification/mnist_20211008``: labels.txt, train.txt -> train.zip, test.txt -> val.zip."""
    folder = root / "classification" / "mnist_20211008"
    write_lines(folder / "labels.txt", [str(d) for d in range(10)])
    for index, zip_name, split, n in (("train.txt", "train.zip", "train", per_class),
                                      ("test.txt", "val.zip", "val", test_per_class)):
        members, lines = {}, []
        for i in range(10 * n):
            member = f"{split}/{i:05d}.png"
            members[member] = image_bytes(COLOURS[i % 10], mode=mode)
            lines.append(f"{zip_name}@{member} {i % 10}")
        write_zip(folder / zip_name, members)
        write_lines(folder / index, lines)
    return folder


VOC_NAMES = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
             "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"]


def voc_labels(n: int, seed: int) -> list[list[int]]:
    """Every class appears; some images have two or three labels, one has none."""
    rng = np.random.default_rng(seed)
    out = [[c] for c in range(20)]
    out += [sorted(set(rng.choice(20, size=int(rng.integers(1, 4)), replace=False).tolist())) for _ in range(n - 21)]
    return out + [[]]


def write_voc(root: Path, n_train: int = 40, n_test: int = 30) -> tuple[Path, dict[str, list[list[int]]]]:
    """``classification/voc2007_20211007``: train_ic.txt and val_ic.txt both in train.zip, test_ic.txt in
    test.zip, multi-label lines ``train.zip@JPEGImages/000005.jpg 8,14`` (and one without labels)."""
    folder = root / "classification" / "voc2007_20211007"
    write_lines(folder / "labels.txt", VOC_NAMES)
    labels = {"train_ic.txt": voc_labels(n_train, 0), "val_ic.txt": voc_labels(25, 1),
              "test_ic.txt": voc_labels(n_test, 2)}
    zips: dict[str, dict[str, bytes]] = {"train.zip": {}, "test.zip": {}}
    for index, zip_name, offset in (("train_ic.txt", "train.zip", 0), ("val_ic.txt", "train.zip", 1000),
                                    ("test_ic.txt", "test.zip", 0)):
        lines = []
        for i, ids in enumerate(labels[index]):
            member = f"JPEGImages/{offset + i:06d}.jpg"
            zips[zip_name][member] = image_bytes(COLOURS[(ids or [0])[0] % 10], fmt="JPEG")
            lines.append(f"{zip_name}@{member}" + (f" {','.join(map(str, ids))}" if ids else ""))
        write_lines(folder / index, lines)
    for name, members in zips.items():
        write_zip(folder / name, members)
    return folder, labels


def write_hateful_memes(root: Path, n_train: int = 12, n_test: int = 8) -> Path:
    """``classification/hateful_memes_20211014``: COCO jsons (``zip_file`` given separately for training
    images, inside ``file_name`` for test images) and img.zip."""
    folder = root / "classification" / "hateful_memes_20211014"
    members = {}
    categories = [{"id": 1, "name": "not hateful"}, {"id": 2, "name": "hateful"}]
    for split, n, inline in (("train", n_train, False), ("test", n_test, True)):
        images, anns = [], []
        for i in range(n):
            member = f"img/{split}{i:04d}.png"
            members[member] = image_bytes(COLOURS[i % 2])
            image = {"id": n - i, "width": 8, "height": 8}  # ids in reverse: the reader orders by id
            image |= {"file_name": f"img.zip@{member}"} if inline else {"file_name": member, "zip_file": "img.zip"}
            images.append(image)
            anns.append({"id": i + 1, "image_id": n - i, "category_id": 1 + i % 2})
        (folder / f"{split}_meta.json").parent.mkdir(parents=True, exist_ok=True)
        (folder / f"{split}_meta.json").write_text(json.dumps({"images": images, "annotations": anns,
                                                               "categories": categories}))
    write_zip(folder / "img.zip", members)
    return folder
