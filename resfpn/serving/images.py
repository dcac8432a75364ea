"""Decode untrusted image files safely and turn them into network input.

Pillow is used with explicit limits: a pixel cap far below its default, an allowlist of formats,
and every mode (palette, greyscale, alpha, CMYK, 16-bit, float) converted to 8-bit RGB by its
real range, so a 16-bit scan or a float TIFF does not come out white.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 40_000_000  # e.g. 8000×5000; Pillow's own default warns only at ~89 M
MAX_FILE_BYTES = 25 * 2**20
FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF", "PPM")
BACKGROUND = (255, 255, 255)  # transparent pixels are composited onto white

# ImageNet statistics, as torchvision's pretrained ResNets expect.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class ImageError(ValueError):
    """An upload that cannot be used as an image; the message says why in plain words."""


@dataclass
class Decoded:
    """An 8-bit RGB image and what was done to get it, for the status line."""

    image: Image.Image
    format: str
    original_size: tuple[int, int]  # (width, height) as stored
    notes: list[str]


def decode_image(source: str | Path | bytes, max_pixels: int = MAX_PIXELS) -> Decoded:
    """Open an image file (path or bytes) under limits and return it as 8-bit RGB.

    Applies EXIF orientation, takes the first frame of an animation (and says so), composites
    transparency onto white, and rescales 16-bit and float images from their real value range.

    Raises:
        ImageError: empty, too large, not an image, an unsupported format, truncated or corrupt.
    """
    data = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
    if not data:
        raise ImageError("the file is empty")
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"the file is {len(data) / 2**20:.1f} MiB; the limit is {MAX_FILE_BYTES / 2**20:.0f} MiB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=list(FORMATS))
            width, height = img.size
            if width * height > max_pixels:
                raise ImageError(
                    f"the image is {width}×{height} = {width * height / 1e6:.1f} megapixels; the limit is "
                    f"{max_pixels / 1e6:.0f} megapixels"
                )
            fmt = img.format or "?"
            notes = []
            if getattr(img, "n_frames", 1) > 1:
                notes.append(f"animated {fmt}: first of {img.n_frames} frames used")
                img.seek(0)
            img.load()
            oriented = ImageOps.exif_transpose(img)
            if oriented is not img:
                notes.append("EXIF orientation applied")
            rgb = _to_rgb(oriented, notes)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"the image declares more than {max_pixels / 1e6:.0f} megapixels (a decompression bomb?)") from None
    except UnidentifiedImageError:
        raise ImageError(
            f"this is not an image Pillow can read in an allowed format ({', '.join(FORMATS)})"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise ImageError(f"the image is truncated or corrupt ({err})") from None
    return Decoded(rgb, fmt, (width, height), notes)


def _to_rgb(img: Image.Image, notes: list[str]) -> Image.Image:
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return _rescale_to_rgb(img, notes)
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("LA", "PA", "RGBA", "La", "RGBa"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        notes.append("transparency composited on white")
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode == "CMYK":
        notes.append("CMYK converted to RGB")
    return img.convert("RGB")


def _rescale_to_rgb(img: Image.Image, notes: list[str]) -> Image.Image:
    """16-bit or float greyscale: map the image's own min..max to 0..255."""
    t = torch.frombuffer(bytearray(img.convert("F").tobytes()), dtype=torch.float32).reshape(img.height, img.width)
    finite = t[torch.isfinite(t)]
    lo, hi = (finite.min().item(), finite.max().item()) if finite.numel() else (0.0, 1.0)
    scaled = ((t.nan_to_num(lo, lo, hi) - lo) / (hi - lo if hi > lo else 1.0) * 255).round().clamp(0, 255)
    notes.append(f"{img.mode} image rescaled from its range {lo:g}..{hi:g}")
    grey = Image.frombytes("L", img.size, scaled.to(torch.uint8).numpy().tobytes())
    return grey.convert("RGB")


def resize_for_input(image: Image.Image, height: int, width: int) -> Image.Image:
    """Resize to exactly height×width (bilinear, antialiased). The aspect ratio is not kept."""
    return image.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=None)


def to_tensor(image: Image.Image, batch: int = 1) -> torch.Tensor:
    """8-bit RGB PIL image -> ``(batch, 3, H, W)`` float tensor normalised with ImageNet statistics."""
    t = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).reshape(image.height, image.width, 3)
    t = t.permute(2, 0, 1).float().div_(255)
    t = (t - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)
    return t.unsqueeze(0).expand(batch, -1, -1, -1).contiguous()
