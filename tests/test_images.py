"""Hostile and unusual images, generated here: each is decoded correctly or refused with a reason."""

import io
import struct
import zlib

import pytest
import torch
from PIL import Image

from resfpn.serving.images import ImageError, decode_image, resize_for_input, to_tensor


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width×height (a decompression bomb's calling card)."""
    data = bytearray(_save(Image.new("L", (8, 8)), "PNG"))
    ihdr = 8 + 8  # signature, then chunk length + type
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[12 : ihdr + 13]))
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


@pytest.mark.parametrize(
    "data, match",
    [
        (b"", "the file is empty"),
        (b"GIF89a but not really an image", "not an image|truncated or corrupt"),
        (b"hello, I am a text file named photo.png\n" * 3, "not an image Pillow can read"),
        (_png_claiming(60_000, 60_000), r"declares more than 40 megapixels|60000×60000 = 3600\.0 megapixels"),
        (_png_claiming(9_000, 5_000), r"9000×5000 = 45\.0 megapixels; the limit is 40 megapixels"),
    ],
)
def test_refused_with_a_reason(data, match):
    with pytest.raises(ImageError, match=match):
        decode_image(data)


def test_truncated_jpeg_is_refused():
    data = _save(Image.effect_noise((64, 64), 40).convert("RGB"), "JPEG")
    with pytest.raises(ImageError, match="truncated or corrupt"):
        decode_image(data[: len(data) // 2])


def test_formats_outside_the_allowlist_are_refused():
    with pytest.raises(ImageError, match=r"allowed format \(PNG, JPEG"):
        decode_image(_save(Image.new("RGB", (16, 16)), "ICO"))


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    decoded = decode_image(_save(img, "JPEG", exif=exif))
    assert decoded.image.size == (20, 40) and "EXIF orientation applied" in decoded.notes


@pytest.mark.parametrize("mode", ["RGBA", "LA", "PA"])
def test_transparency_is_composited_on_white_not_dropped(mode):
    if mode == "PA":
        img = Image.new("P", (4, 4), 0)
        img.putpalette([0, 0, 0] * 256)
        data = _save(img, "PNG", transparency=0)
    else:
        data = _save(Image.new(mode, (4, 4), (0,) * len(mode)), "PNG")  # black and fully transparent
    decoded = decode_image(data)
    assert decoded.image.mode == "RGB" and decoded.image.getpixel((0, 0)) == (255, 255, 255)


def test_cmyk_palette_and_greyscale_become_rgb():
    assert decode_image(_save(Image.new("CMYK", (4, 4), (0, 255, 255, 0)), "JPEG")).image.getpixel((1, 1))[0] > 200
    pal = Image.new("RGB", (4, 4), (10, 200, 30)).convert("P", palette=Image.Palette.ADAPTIVE)
    assert decode_image(_save(pal, "PNG")).image.getpixel((0, 0)) == (10, 200, 30)
    assert decode_image(_save(Image.new("L", (4, 4), 77), "PNG")).image.getpixel((0, 0)) == (77, 77, 77)


def test_16_bit_images_are_rescaled_from_their_real_range():
    img = Image.new("I;16", (4, 1))
    img.putdata([0, 300, 600, 1000])  # a dark 16-bit scan: clipping to 8 bits would make it white
    values = [decode_image(_save(img, "PNG")).image.getpixel((x, 0))[0] for x in range(4)]
    assert values == [0, 76, 153, 255]


def test_float_images_are_rescaled_from_their_real_range():
    img = Image.new("F", (3, 1))
    img.putdata([0.0, 0.25, 0.5])
    decoded = decode_image(_save(img, "TIFF"))
    assert [decoded.image.getpixel((x, 0))[0] for x in range(3)] == [0, 128, 255]


def test_animated_gif_uses_the_first_frame_and_says_so():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    decoded = decode_image(buf.getvalue())
    assert decoded.image.getpixel((0, 0))[0] > 200 and "first of 2 frames" in decoded.notes[0]


@pytest.mark.parametrize("size", [(1, 1), (1, 5000), (5000, 1)])
def test_tiny_and_thin_images_reach_the_network_input(size):
    decoded = decode_image(_save(Image.new("RGB", size, (1, 2, 3)), "PNG"))
    x = to_tensor(resize_for_input(decoded.image, 32, 48))
    assert x.shape == (1, 3, 32, 48) and torch.isfinite(x).all()


def test_to_tensor_normalises_with_imagenet_statistics():
    x = to_tensor(Image.new("RGB", (2, 2), (124, 116, 104)), batch=2)
    assert x.shape == (2, 3, 2, 2) and x.abs().max() < 0.01
