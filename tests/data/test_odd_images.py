"""Odd but valid inputs decode as they are meant to be seen; hostile ones are skipped under their own reason."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from raykd.data.hash_tokenizer import HashTokenizer
from raykd.data.samples import SampleError, ShardProcessor, decode_sample
from raykd.data.transforms import decode_image
from raykd.specs import ImageSpec


def encode(img: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def test_cmyk_jpeg_decodes_to_rgb():
    out = decode_image(encode(Image.new("CMYK", (8, 6), (0, 255, 255, 0)), "JPEG", quality=100))
    assert out.shape == (6, 8, 3) and out.dtype == np.uint8
    assert out[..., 0].mean() > 200 and out[..., 1:].mean() < 50  # cyan 0, magenta+yellow full: red


def test_palette_with_transparency_and_rgba_are_composited_on_white():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red
    assert (decode_image(encode(rgba)) == 255).all()
    half = Image.new("RGBA", (4, 4), (0, 0, 0, 128))
    assert abs(int(decode_image(encode(half))[0, 0, 0]) - 127) <= 1
    palette = Image.new("P", (4, 4), 0)
    palette.putpalette([0, 0, 255] + [0] * 765)
    palette.info["transparency"] = 0
    assert (decode_image(encode(palette, transparency=0)) == 255).all()
    opaque = Image.new("P", (4, 4), 0)
    opaque.putpalette([0, 0, 255] + [0] * 765)
    assert (decode_image(encode(opaque))[..., 2] == 255).all() and (decode_image(encode(opaque))[..., 0] == 0).all()


def test_16_bit_greyscale_is_rescaled_not_clipped():
    pixels = np.array([[0, 32768, 65535]], dtype=np.uint16)
    out = decode_image(encode(Image.fromarray(pixels)))  # a 16-bit PNG (mode I;16)
    assert out.shape == (1, 3, 3)
    assert out[0, :, 0].tolist() == [0, 128, 255]


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (8, 4), (0, 0, 0))
    img.paste((255, 255, 255), (0, 0, 4, 4))  # white left half
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    out = decode_image(encode(img, "JPEG", quality=100, exif=exif.tobytes()))
    assert out.shape == (8, 4, 3)  # portrait, as displayed
    assert out[:4].mean() > 200 and out[4:].mean() < 50  # the white half is on top


def test_a_decompression_bomb_is_its_own_skip_reason(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    sample = {"__key__": "bomb", "__url__": "s.tar", "png": encode(Image.new("RGB", (20, 20))), "txt": b"x"}
    with pytest.raises(SampleError) as info:
        decode_sample(sample)
    assert info.value.reason == "image_too_large"
    big = {**sample, "png": encode(Image.new("RGB", (11, 11)))}  # 121 pixels: PIL only warns below 2x
    with pytest.raises(SampleError, match="image_too_large"):
        decode_sample(big)


@pytest.mark.parametrize("caption", [b"", b"   \n"])
def test_empty_captions_are_their_own_skip_reason(caption):
    sample = {"__key__": "k", "__url__": "s.tar", "png": encode(Image.new("RGB", (4, 4))), "txt": caption}
    with pytest.raises(SampleError) as info:
        decode_sample(sample)
    assert info.value.reason == "empty_caption"


def test_huge_captions_are_truncated_by_the_tokenizer_and_counted_nowhere():
    processor = ShardProcessor(ImageSpec(8), HashTokenizer(length=8), "none", "skip", 4)
    samples = [{"__key__": str(i), "__url__": "s.tar", "png": encode(Image.new("RGB", (4, 4))),
                "txt": ("word " * 50_000).encode(), "cls": b"1"} for i in range(2)]
    (batch,) = list(processor.batches(samples))
    assert batch["image"].shape == (2, 3, 8, 8) and all(v.shape == (2, 8) for k, v in batch.items()
                                                         if k not in ("image", "label"))
    assert processor.pop_skips() == {}


def test_open_clip_tokenizer_truncates_huge_captions():
    import open_clip

    tokens = open_clip.get_tokenizer("RN50")(["word " * 50_000])
    assert tokens.shape == (1, 77)
