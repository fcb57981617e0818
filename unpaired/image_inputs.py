"""What ``Translator`` accepts as an image, and the command line's input patterns.

An input is a PIL image, an H×W×3 uint8 array, a 3×H×W tensor in [-1, 1] or a path; it stays uint8 (or the
tensor it is) until the plan for it is known: a float copy of an 8000×8000 image is 768 MB.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image

__all__ = ["ImageLike", "Named", "as_input", "size_of", "as_tensor", "as_pixels", "expand_inputs"]

ImageLike = Union[Image.Image, np.ndarray, torch.Tensor, str, Path]


class Named:
    """An image with the name its translation reports (its source)."""

    def __init__(self, image, name):
        self.image, self.name = image, name


def as_input(image) -> Tuple[Union[np.ndarray, torch.Tensor], Optional[str]]:
    """PIL image, H×W×3 uint8 array, 3×H×W tensor in [-1, 1], or a path -> (H×W×3 uint8 array or the tensor,
    name). Pixels stay uint8 until the plan is known: a float copy of an 8000×8000 image is 768 MB."""
    from .data import load_rgb

    name = None
    if isinstance(image, Named):
        image, name = image.image, image.name
    if isinstance(image, (str, Path)):
        name, image = str(image), load_rgb(image)
    if isinstance(image, Image.Image):  # (convert copies even an RGB image: 4 B/px, 256 MB at 8000²)
        return np.asarray(image if image.mode == "RGB" else image.convert("RGB")), name
    if isinstance(image, np.ndarray):
        if image.ndim == 2:
            image = np.stack([image] * 3, axis=-1)
        if image.dtype != np.uint8:
            raise TypeError("numpy images must be H×W×3 uint8")
        return image[..., :3], name
    if torch.is_tensor(image):
        if image.ndim != 3 or image.shape[0] != 3:
            raise TypeError(f"tensor images must be 3×H×W in [-1, 1], got shape {tuple(image.shape)}")
        return image.float(), name
    raise TypeError(f"cannot translate a {type(image).__name__}")


def size_of(x) -> Tuple[int, int]:
    """(height, width) of an input as ``as_input`` gives it."""
    return tuple(x.shape[-2:]) if torch.is_tensor(x) else tuple(x.shape[:2])


def as_tensor(x) -> torch.Tensor:
    """An input as ``as_input`` gives it -> 3×H×W float in [-1, 1]."""
    from .data import to_tensor

    return x if torch.is_tensor(x) else to_tensor(Image.fromarray(np.ascontiguousarray(x)))


def as_pixels(x) -> np.ndarray:
    """A tensor in [-1, 1] as H×W×3 uint8 (``data.to_pil``'s rounding); arrays as they are."""
    from .data import to_pil

    return np.asarray(to_pil(x)) if torch.is_tensor(x) else x


def expand_inputs(patterns: Sequence[str]) -> List[Path]:
    """Files, folders (their images, sorted) and glob patterns -> image paths, in the order given."""
    from .data import IMAGE_EXTENSIONS, list_images

    out: List[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            found = list_images(path)  # with the links that lead nowhere (or in a loop): named when read
            found = sorted(found + [p for p in path.iterdir() if p.is_symlink() and not p.exists()
                                    and p.suffix.lower() in IMAGE_EXTENSIONS], key=lambda p: p.name)
            if not found:
                raise FileNotFoundError(f"{path}: folder holds no images ({', '.join(IMAGE_EXTENSIONS)})")
            out += found
        elif path.is_file() or path.is_symlink():  # a broken link or a loop: load_rgb names it
            out.append(path)
        else:
            matches = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
            matches = [p for p in matches if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
            if not matches:
                raise FileNotFoundError(f"--input {pattern}: no such file or folder, and no image matches it")
            out += matches
    return out
