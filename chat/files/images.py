"""Images: decoded once in a worker thread, re-encoded without their metadata, thumbnailed.

Every function here blocks (Pillow decodes on the calling thread): chat/files/service.py runs
them on its bounded executor, never on the event loop.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

THUMBNAIL_PX = 320  # the longer side of a thumbnail: an inline preview in the message list
JPEG_QUALITY = 90  # re-encoded photos: visually the same, metadata gone
THUMBNAIL_QUALITY = 80
_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP"}
# What an image keeps through re-encoding: how it draws (transparency, animation, colours).
# Everything else in Image.info (EXIF and its GPS, XMP, comments, text chunks) is dropped.
_KEPT_INFO = ("transparency", "duration", "loop", "background", "icc_profile", "disposal")


@dataclass(frozen=True, slots=True)
class Processed:
    """What an upload that decoded as an image became: its served copy and thumbnail files."""

    width: int
    height: int
    clean: Path  # the image as it is served: re-encoded, without metadata
    thumbnail: Path | None  # None: the image is no larger than a thumbnail


def process(source: Path, kind: str, max_pixels: int, work: Path) -> Processed | None:
    """The image in `source` re-encoded without metadata, and its thumbnail, written under
    `work`; None when it is no image of `kind`, does not decode, or has more than `max_pixels`
    pixels (all its frames together): such a file is kept as a plain file.
    """
    fmt = _FORMATS.get(kind)
    if fmt is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return _process(source, fmt, max_pixels, work)
        except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombWarning,
                Image.DecompressionBombError, MemoryError):
            # A truncated or malformed file, a lying header: Pillow's own errors are these.
            return None


def _process(source: Path, fmt: str, max_pixels: int, work: Path) -> Processed | None:
    with Image.open(source, formats=[fmt]) as img:
        # Only the header is read so far: the pixel count is known before anything decodes.
        width, height = img.size
        frames = getattr(img, "n_frames", 1)
        if width * height * frames > max_pixels or width < 1 or height < 1:
            return None
        clean = work.with_suffix(".clean")
        if frames > 1:
            img.info = {key: img.info[key] for key in _KEPT_INFO if key in img.info}
            img.save(clean, fmt, save_all=True)
            still = img.copy()
        else:
            img.load()
            upright = ImageOps.exif_transpose(img)  # phone photos: turned as they were taken
            upright.info = {key: img.info[key] for key in _KEPT_INFO if key in img.info}
            width, height = upright.size
            options: dict[str, object] = {}
            if fmt == "JPEG":
                options = {"quality": JPEG_QUALITY, "exif": b""}
            elif fmt == "WEBP":
                options = {"quality": JPEG_QUALITY, "exif": b"", "xmp": b""}
            upright.save(clean, fmt, **options)
            still = upright
    if max(width, height) <= THUMBNAIL_PX:
        return Processed(width, height, clean, None)
    thumb = work.with_suffix(".thumb")
    still.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
    if still.mode in ("RGBA", "LA", "P"):
        still.convert("RGBA").save(thumb, "PNG")
    else:
        still.convert("RGB").save(thumb, "JPEG", quality=THUMBNAIL_QUALITY)
    return Processed(width, height, clean, thumb)


def thumbnail_type(path: Path) -> str:
    """The type of a thumbnail process() wrote (PNG when the image has transparency)."""
    with path.open("rb") as file:
        return "image/png" if file.read(4) == b"\x89PNG" else "image/jpeg"
