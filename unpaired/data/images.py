"""Reading images robustly and checking image folders before training.

Everything that reads an image in :mod:`unpaired.data` goes through :func:`load_rgb`, which
turns any common file format and PIL mode into an 8-bit RGB image, or raises
:class:`BadImageError` naming the file and the reason. :func:`check_folder` and
:func:`check_dataset` run it over whole folders up front so a training run never meets an
unreadable file halfway through.
"""

from __future__ import annotations

import errno
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

__all__ = [
    "IMAGE_EXTENSIONS",
    "BadImageError",
    "load_rgb",
    "max_pixels",
    "list_images",
    "check_folder",
    "check_dataset",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")

# Operating-system clutter that is never reported as a bad file (hidden files, e.g.
# ``.DS_Store`` or macOS ``._name.jpg`` resource forks, are skipped separately).
IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini"})


class BadImageError(ValueError):
    """An image file that cannot be used; the message names the file(s) and the reason(s)."""


#: Pillow's own decompression-bomb warning threshold (~89.5 MP): the default of every image reader's limit
DEFAULT_MAX_PIXELS = 89_478_485


def max_pixels() -> int:
    """The most pixels (width × height) an image may declare before it is decoded: ``UNPAIRED_MAX_PIXELS`` (an
    integer) or :data:`DEFAULT_MAX_PIXELS`. Every reader of image files (data check, training, translate,
    evaluate, the demo) goes through :func:`load_rgb`, which applies it from the header, before decoding."""
    value = os.environ.get("UNPAIRED_MAX_PIXELS", "").strip()
    try:
        return int(value) if value else DEFAULT_MAX_PIXELS
    except ValueError:
        raise BadImageError(f"UNPAIRED_MAX_PIXELS={value!r}: expected an integer number of pixels") from None


def _is_hidden(path: Path) -> bool:
    return path.name.startswith(".")


def _has_image_extension(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def _white_composite(img: Image.Image) -> Image.Image:
    """Composite an image with alpha (converted to RGBA first) onto a white background."""
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert a decoded PIL image of any supported mode to a new 8-bit RGB image.

    * 16-bit integer modes (``I;16``, ``I;16B``, ``I;16L``, ``I;16N``) and ``I`` are taken as
      16-bit data: values 0..65535 map to 0..255 (divide by 257 and round; ``I`` is clipped
      to 0..65535 first).
    * ``F`` (32-bit float) is taken as 0..255 data: clipped and rounded.
    * Alpha (``RGBA``, ``LA``, ``PA``, premultiplied ``RGBa``/``La``, and palette/grey/RGB
      images with a ``transparency`` entry) is composited onto white.
    * Everything else (``1``, ``L``, ``P``, ``CMYK``, ``YCbCr``, ``HSV``, ...) goes through
      ``Image.convert("RGB")`` (CMYK without colour management, like PIL does).
    """
    mode = img.mode
    if mode == "RGB" and "transparency" not in img.info:
        return img.copy()
    if mode.startswith("I;16") or mode == "I":
        data = np.asarray(img).astype(np.float64)
        data = np.clip(data, 0, 65535) / 257.0
        grey = np.clip(np.rint(data), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if mode == "F":
        data = np.asarray(img).astype(np.float64)
        data = np.nan_to_num(data, nan=0.0, posinf=255.0, neginf=0.0)
        grey = np.clip(np.rint(data), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return _white_composite(img)
    if mode in ("P", "L", "RGB", "1") and "transparency" in img.info:
        return _white_composite(img)
    if mode == "1":
        return img.convert("L").convert("RGB")
    return img.convert("RGB")


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Open an image file, decode it completely and return it as an 8-bit RGB PIL image.

    The EXIF orientation tag is applied (a 10x20 photo tagged "rotate 90" comes back as 20x10).
    See :func:`_to_rgb` for how each PIL mode is converted. Raises :class:`BadImageError`
    ``"<path>: <reason>"`` for missing, unreadable, truncated or non-image files and for images
    with zero width or height. The whole file is decoded here (``Image.load``), so truncated
    files fail now rather than in the middle of training.
    """
    path = Path(path)
    limit = max_pixels()
    if Image.MAX_IMAGE_PIXELS and limit > Image.MAX_IMAGE_PIXELS:  # a limit set above Pillow's: Pillow follows it
        Image.MAX_IMAGE_PIXELS = limit
    try:
        with warnings.catch_warnings():  # Pillow's bomb warning: the check below says it in one line
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
        with img:
            if img.width * img.height > limit:  # from the header: nothing decoded yet
                raise BadImageError(f"{path}: {img.width}x{img.height} px is over the limit of {limit} pixels "
                                    f"(--max-pixels, UNPAIRED_MAX_PIXELS)")
            img.load()
            if img.width == 0 or img.height == 0:
                raise BadImageError(f"{path}: image has zero size ({img.width}x{img.height})")
            try:
                oriented = ImageOps.exif_transpose(img)
            except Exception:  # malformed EXIF: keep the pixels as stored
                oriented = img
            rgb = _to_rgb(oriented)
    except BadImageError:
        raise
    except FileNotFoundError:
        why = "broken symbolic link" if path.is_symlink() else "file not found"
        raise BadImageError(f"{path}: {why}") from None
    except Image.UnidentifiedImageError:
        raise BadImageError(f"{path}: not a readable image (unknown or corrupt format)") from None
    except Image.DecompressionBombError as exc:
        raise BadImageError(f"{path}: image too large ({exc})") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise BadImageError(f"{path}: symbolic link loop") from None
        if exc.errno is not None:
            raise BadImageError(f"{path}: cannot read ({exc.strerror or exc})") from None
        raise BadImageError(f"{path}: cannot decode image ({type(exc).__name__}: {exc})") from None
    except (ValueError, SyntaxError, EOFError) as exc:
        raise BadImageError(f"{path}: cannot decode image ({type(exc).__name__}: {exc})") from None
    if rgb.width == 0 or rgb.height == 0:
        raise BadImageError(f"{path}: image has zero size ({rgb.width}x{rgb.height})")
    return rgb


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Return the image files directly inside ``folder``, sorted by file name.

    A file counts as an image when its extension (case-insensitive) is in
    :data:`IMAGE_EXTENSIONS`. Hidden files (name starting with ``.``) and sub-folders are
    ignored; nothing is opened. Raises ``FileNotFoundError`` if ``folder`` is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: folder not found")
    files = [
        p for p in folder.iterdir() if p.is_file() and not _is_hidden(p) and _has_image_extension(p)
    ]
    return sorted(files, key=lambda p: p.name)


def _problem_with(path: Path) -> str | None:
    """Return why ``path`` (a file in an image folder) cannot be used, or None if it can."""
    if not _has_image_extension(path):
        suffix = path.suffix or "no extension"
        return f"not an image file extension ({suffix}); expected one of {', '.join(IMAGE_EXTENSIONS)}"
    try:
        load_rgb(path)
    except BadImageError as exc:
        message = str(exc)
        prefix = f"{path}: "
        return message[len(prefix):] if message.startswith(prefix) else message
    return None


def check_folder(folder: str | os.PathLike, *, workers: int | None = None) -> list[tuple[Path, str]]:
    """Load every file in ``folder`` and return ``(path, reason)`` for each one it cannot use.

    Reported: files with an image extension that :func:`load_rgb` rejects, and files with any
    other extension. Hidden files, sub-folders and OS clutter (``Thumbs.db``, ``desktop.ini``)
    are skipped. A missing folder is reported as ``[(folder, "missing folder")]``. The list is
    sorted by file name; an empty list means every image is usable. Files are decoded in
    ``workers`` threads (default: up to 8).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return [(folder, "missing folder")]
    files = sorted(
        (
            p
            for p in folder.iterdir()
            if (p.is_file() or (p.is_symlink() and not p.exists()))  # a broken link or loop is named
            and not _is_hidden(p) and p.name.lower() not in IGNORED_NAMES
        ),
        key=lambda p: p.name,
    )
    if workers is None:
        workers = min(8, os.cpu_count() or 1)
    if workers > 1 and len(files) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            reasons = list(pool.map(_problem_with, files))
    else:
        reasons = [_problem_with(p) for p in files]
    return [(p, r) for p, r in zip(files, reasons) if r is not None]


def check_files(paths) -> list[tuple[Path, str]]:
    """``(path, reason)`` for each of ``paths`` that cannot be used (see :func:`check_folder`)."""
    found = [(Path(p), _problem_with(Path(p))) for p in paths]
    return [(p, r) for p, r in found if r is not None]


def check_dataset(
    root: str | os.PathLike,
    splits: tuple[str, ...] = ("trainA", "trainB", "testA", "testB"),
    *,
    workers: int | None = None,
) -> dict[str, list[tuple[Path, str]]]:
    """Run :func:`check_folder` on each ``root/<split>`` and return ``{split: problems}``.

    A missing sub-folder is reported as ``[(root/split, "missing folder")]``; this function
    never raises for it (the dataset classes do, when they need the folder).
    """
    root = Path(root)
    return {split: check_folder(root / split, workers=workers) for split in splits}
