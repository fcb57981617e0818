"""Translating images larger than memory: tiles whose results equal (``exact``) or closely follow (``fast``)
whole-image inference, with the global statistics of the whole image (:mod:`.sites`), tile geometry and
output assembly (:mod:`.runner`) and the choice of mode and tile size (:mod:`.plan`).

Entry points: :func:`translate_pixels` (an H×W×3 uint8 image -> uint8 outputs, what ``Translator`` uses) and
:func:`run_tiled` (an N×3×H×W tensor -> a float ``GeneratorOutput``, what ``run_any_size`` uses).
"""

from __future__ import annotations

import contextlib
from typing import Callable, Optional

import numpy as np
import torch
from PIL import Image

from ..host_memory import release_freed_memory
from ..models.base import normalise_heatmap

from .plan import DEFAULT_MAX_MEMORY, MODES, Plan, attention_maps, parse_bytes, plan
from .runner import ArraySource, Canvas, TensorSource, grid, run_exact, run_fast, trim_above
from .stream import run_streamed

__all__ = ["MODES", "DEFAULT_MAX_MEMORY", "Plan", "plan", "attention_maps", "parse_bytes", "translate_pixels",
           "translate_resized", "heatmap_u8", "run_tiled"]


TRIM_SHARE = 0.9  # of the budget: above it, memory kept after a tile goes back to the system (runner.trim_above)


def _run(generator, source, height, width, chosen: Plan, extra, canvas, progress):
    with trim_above(int(TRIM_SHARE * chosen.budget)) if chosen.budget else contextlib.nullcontext():
        if chosen.mode == "exact" and chosen.streamed:
            return run_streamed(generator, source, source.height, source.width, chosen.core, chosen.halo, extra,
                                canvas, progress)
        tiles = grid(source.height, source.width, chosen.core, chosen.halo)
        if chosen.mode == "exact":
            return run_exact(generator, source, tiles, extra, canvas, progress)
        return run_fast(generator, source, tiles, extra, canvas, preview_pixels=chosen.preview)


def translate_pixels(generator, pixels: np.ndarray, chosen: Plan, extra=(), *, attention: bool = True,
                     device="cpu", progress: Optional[Callable[[str], None]] = None):
    """Translate one H×W×3 uint8 image tile by tile -> (PIL image, masks K×H×W uint8 or None, attention H×W uint8
    or None): the foreground, or U-GAT-IT's heatmap min-max scaled and resized with PIL. ``attention=False``:
    no masks kept."""
    h, w = pixels.shape[:2]
    source = ArraySource(pixels, 4, device)
    canvas = Canvas(source.height, source.width, uint8=True, masks=attention)
    _run(generator, source, h, w, chosen, extra, canvas, progress)
    if (source.height, source.width) != (h, w):  # padded to the stride: crop back (views, no copies)
        canvas.image = canvas.image[:h, :w]
        canvas.masks = None if canvas.masks is None else canvas.masks[:, :h, :w]
        canvas.foreground = None if canvas.foreground is None else canvas.foreground[:h, :w]
    fg = canvas.foreground
    if fg is None and canvas.heatmap is not None:
        fg = heatmap_u8(canvas.heatmap, w, h)
    release_freed_memory()  # the tiles' memory, before the full-size PIL copy of the output is made
    return Image.fromarray(np.ascontiguousarray(canvas.image)), canvas.masks, fg


def heatmap_u8(heatmap: torch.Tensor, width: int, height: int) -> np.ndarray:
    """A 1×1×h×w heatmap min-max scaled to 0-255 and resized (PIL bilinear) to width×height, uint8."""
    small = normalise_heatmap(heatmap[:1].float().cpu(), heatmap.shape[-2:])[0, 0].numpy()
    return np.asarray(Image.fromarray((small * 255).round().astype(np.uint8)).resize((width, height), Image.BILINEAR))


def translate_resized(generator, pixels: np.ndarray, fixed: int, extra=()):
    """A fixed-size generator (full U-GAT-IT) on a large image: resized to fixed×fixed and back with PIL
    (bilinear, antialiased) on uint8 pixels, so that no full-size float copy is made -> as ``translate_pixels``."""
    from ..data import to_pil, to_tensor

    h, w = pixels.shape[:2]
    small = Image.fromarray(pixels).resize((fixed, fixed), Image.BILINEAR)
    out = generator(to_tensor(small)[None].to(next(generator.parameters()).device), *extra)
    image = to_pil(out.image[0].float().cpu()).resize((w, h), Image.BILINEAR)
    return image, None, None if out.heatmap is None else heatmap_u8(out.heatmap, w, h)


def run_tiled(generator, batch, chosen: Plan, extra=()):
    """``generator`` on an N×3×H×W tensor (H, W multiples of 4) tile by tile -> float ``GeneratorOutput``."""
    source = TensorSource(batch)
    canvas = Canvas(source.height, source.width, uint8=False)
    return _run(generator, source, source.height, source.width, chosen, extra, canvas, None).output()
