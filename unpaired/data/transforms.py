"""CycleGAN-style image transforms whose randomness comes only from a ``torch.Generator``.

Images become float32 tensors ``C x H x W`` in ``[-1, 1]`` (``ToTensor`` then
``Normalize(0.5, 0.5)``), as in the official CycleGAN / AttentionGAN / U-GAT-IT code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torchvision.transforms.functional as TF
from PIL import Image

__all__ = ["RESAMPLE", "to_tensor", "to_pil", "TrainTransform", "TestTransform"]

RESAMPLE = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "lanczos": Image.Resampling.LANCZOS,
}


def _resample(name: str) -> Image.Resampling:
    try:
        return RESAMPLE[name]
    except KeyError:
        raise ValueError(f"unknown resize filter {name!r}; expected one of {', '.join(RESAMPLE)}") from None


def to_tensor(img: Image.Image) -> torch.Tensor:
    """Convert a PIL image (made RGB if it is not) to a float32 ``3 x H x W`` tensor in [-1, 1]."""
    if img.mode != "RGB":
        img = img.convert("RGB")
    return TF.normalize(TF.to_tensor(img), [0.5, 0.5, 0.5], [0.5, 0.5, 0.5])


def to_pil(t: torch.Tensor) -> Image.Image:
    """Convert a ``C x H x W`` tensor in [-1, 1] (C = 1 or 3; a leading batch dim of 1 is
    allowed) to an 8-bit RGB PIL image.

    Uses ``((t + 1) / 2 * 255).clamp(0, 255)`` and then a *truncating* cast to uint8, like the
    official ``tensor2im`` (``.astype(np.uint8)``): 0.999 -> 254, not 255. Saved samples
    therefore match images written by the reference implementations bit for bit.
    """
    t = t.detach().to("cpu", torch.float32)
    if t.dim() == 4 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 3 or t.shape[0] not in (1, 3):
        raise ValueError(f"expected a C x H x W tensor with C in (1, 3), got shape {tuple(t.shape)}")
    if t.shape[0] == 1:
        t = t.expand(3, -1, -1)
    pixels = ((t + 1) / 2 * 255).clamp(0, 255).to(torch.uint8)  # float -> uint8 truncates
    return Image.fromarray(pixels.permute(1, 2, 0).contiguous().numpy())


@dataclass
class TrainTransform:
    """Training augmentation of CycleGAN's ``resize_and_crop`` + flip, driven by a generator.

    ``__call__(img, generator)``: resize to ``load_size x load_size`` with the PIL filter
    ``resize``, crop a random ``crop_size`` square, flip horizontally with p = 0.5 (only when
    ``flip`` is true) and, with ``vflip`` (ours; off in every official code), vertically with p = 0.5,
    convert with :func:`to_tensor`. Random draws, in this order: crop x offset, crop y offset
    (``torch.randint``), then the flip coin (``torch.rand``) if ``flip``, then the vertical flip coin if
    ``vflip`` (so ``vflip`` off draws exactly what it did before the switch existed).
    The output depends only on the image and the generator state.
    """

    load_size: int
    crop_size: int
    flip: bool = True
    resize: str = "bicubic"
    vflip: bool = False

    def __post_init__(self) -> None:
        if self.crop_size < 1 or self.load_size < self.crop_size:
            raise ValueError(
                f"need 1 <= crop_size <= load_size, got crop_size={self.crop_size}, "
                f"load_size={self.load_size}"
            )
        _resample(self.resize)

    def __call__(self, img: Image.Image, generator: torch.Generator) -> torch.Tensor:
        """Return the augmented ``3 x crop_size x crop_size`` tensor in [-1, 1]."""
        if img.size != (self.load_size, self.load_size):
            img = img.resize((self.load_size, self.load_size), _resample(self.resize))
        span = self.load_size - self.crop_size + 1
        x = int(torch.randint(0, span, (1,), generator=generator))
        y = int(torch.randint(0, span, (1,), generator=generator))
        img = img.crop((x, y, x + self.crop_size, y + self.crop_size))
        if self.flip and float(torch.rand(1, generator=generator)) < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if self.vflip and float(torch.rand(1, generator=generator)) < 0.5:
            img = img.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        return to_tensor(img)


@dataclass
class TestTransform:
    """Deterministic test-time transform: resize to ``size x size`` (PIL filter ``resize``),
    then :func:`to_tensor`."""

    __test__ = False  # not a pytest test class

    size: int
    resize: str = "bicubic"

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"size must be >= 1, got {self.size}")
        _resample(self.resize)

    def __call__(self, img: Image.Image) -> torch.Tensor:
        """Return the resized ``3 x size x size`` tensor in [-1, 1]."""
        if img.size != (self.size, self.size):
            img = img.resize((self.size, self.size), _resample(self.resize))
        return to_tensor(img)
