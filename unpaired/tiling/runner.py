"""Running a generator tile by tile: the grid, where tiles are read from and where their cores are written.

Geometry. The image (already padded to the generator's size multiple ``stride``) is cut into cores that tile it
exactly; each tile is its core grown by ``halo`` pixels on every side and clipped to the image. Core and tile
edges lie on multiples of ``stride`` (4 for the ResNet generators: two stride-2 layers), so every feature map of a
tile is an exact window of the whole image's; a tile that reaches the image border reaches it, so the padding
there is the whole image's. With every global statistic frozen at the whole image's value the network is local,
and a halo at least its receptive-field radius makes each core exactly the whole-image result.

Two runs (``exact``, ``fast``) share this; :mod:`.plan` picks tile and halo sizes and the mode.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..host_memory import release_freed_memory, resident_bytes
from ..nn.outputs import GeneratorOutput
from .sites import GlobalStatistics, Region, StopForward

__all__ = ["Tile", "grid", "ArraySource", "TensorSource", "Canvas", "run_exact", "run_fast", "trim_above",
           "change_reach"]

_trim_above = None  # bytes: see trim_above


@contextmanager
def trim_above(nbytes: int):
    """Inside the block, after each tile: when the process holds more than ``nbytes``, the memory glibc keeps for
    reuse (host_memory.keep_freed_memory) goes back to the system. Tiles of different sizes (those at the
    border are smaller) leave that kept heap in pieces the next tile cannot always reuse: an AttentionGAN 6000²
    run grew by 0.3 GB over its last stage that way and peaked 50 MB under its 2 GiB budget."""
    global _trim_above
    before, _trim_above = _trim_above, nbytes
    try:
        yield
    finally:
        _trim_above = before


@dataclass(frozen=True)
class Tile:
    """core: (top, bottom, left, right) in image pixels; box: the same for the tile (core + halo, clipped)."""

    core: tuple
    box: tuple

    def region(self) -> Region:
        t, b, l, r = self.core
        return Region(t - self.box[0], b - self.box[0], l - self.box[2], r - self.box[2], self.box[1] - self.box[0])


def grid(height: int, width: int, core: int, halo: int, stride: int = 4) -> List[Tile]:
    """Cores of about ``core`` px (multiples of ``stride``, as even as the size allows) covering height×width."""
    def cuts(n):
        parts = max(1, math.ceil(n / core))
        units = n // stride
        edges = [stride * round(units * i / parts) for i in range(parts + 1)]
        return [(a, b) for a, b in zip(edges, edges[1:]) if b > a]

    halo = stride * math.ceil(halo / stride)
    return [Tile((t, b, l, r), (max(0, t - halo), min(height, b + halo), max(0, l - halo), min(width, r + halo)))
            for t, b in cuts(height) for l, r in cuts(width)]


class ArraySource:
    """Tiles of an H×W×3 uint8 image (padded to a multiple of ``stride`` as ``run_any_size`` pads), as the
    1×3×h×w float tensors in [-1, 1] that ``data.to_tensor`` would give for the whole image."""

    def __init__(self, pixels: np.ndarray, stride: int, device):
        h, w = pixels.shape[:2]
        ph, pw = (-h) % stride, (-w) % stride
        if ph or pw:
            pixels = np.pad(pixels, ((0, ph), (0, pw), (0, 0)), mode="reflect" if ph < h and pw < w else "edge")
        self.pixels, self.device = pixels, device
        self.height, self.width = pixels.shape[:2]

    def read(self, box) -> torch.Tensor:
        t, b, l, r = box
        x = torch.from_numpy(np.array(self.pixels[t:b, l:r])).permute(2, 0, 1).float().div(255)
        return x.sub_(0.5).div_(0.5)[None].to(self.device)

    def preview(self, pixels: int, stride: int) -> torch.Tensor:
        """The whole image shrunk (PIL bilinear, antialiased) to at most ``pixels`` pixels, sides multiples of
        ``stride``: the fast mode's source of statistics."""
        scale = min(1.0, math.sqrt(pixels / (self.height * self.width)))
        size = [max(stride, stride * round(n * scale / stride)) for n in (self.width, self.height)]
        small = np.asarray(Image.fromarray(self.pixels).resize(size, Image.BILINEAR))
        return ArraySource(small, stride, self.device).read((0, size[1], 0, size[0]))


class TensorSource:
    """Tiles of an N×3×H×W float tensor already padded to the stride."""

    def __init__(self, batch: torch.Tensor):
        self.batch = batch
        self.height, self.width = batch.shape[-2:]

    def read(self, box) -> torch.Tensor:
        t, b, l, r = box
        return self.batch[..., t:b, l:r]

    def preview(self, pixels: int, stride: int) -> torch.Tensor:
        scale = min(1.0, math.sqrt(pixels / (self.height * self.width)))
        size = [max(stride, stride * round(n * scale / stride)) for n in (self.height, self.width)]
        return F.interpolate(self.batch, size=size, mode="bilinear", align_corners=False, antialias=True)


class Canvas:
    """The whole image's outputs, written core by core.

    ``uint8``: image H×W×3 (``data.to_pil``'s rounding), masks K×H×W and foreground H×W as round(255·m);
    else float32 tensors N×C×H×W as the generator returns them. U-GAT-IT's heatmap is kept at its own (1/4)
    resolution in float32 either way. ``masks=False``: no attention masks kept (only the image and heatmap)."""

    def __init__(self, height: int, width: int, uint8: bool, masks: bool = True):
        self.height, self.width, self.uint8, self.keep_masks = height, width, uint8, masks
        self.image = self.masks = self.foreground = self.heatmap = None

    def _array(self, shape, dtype):
        return np.empty(shape, dtype) if self.uint8 else torch.empty(shape, dtype=torch.float32)

    def put(self, out: GeneratorOutput, tile: Tile) -> None:
        reg = tile.region()
        t, b, l, r = tile.core
        crop = lambda x: x[..., reg.top:reg.bottom, reg.left:reg.right]  # noqa: E731
        n = out.image.shape[0]
        if self.image is None:
            self.image = self._array((self.height, self.width, 3) if self.uint8 else
                                     (n, out.image.shape[1], self.height, self.width), np.uint8)
        if self.uint8:
            pixels = ((crop(out.image[0]).float() + 1) / 2 * 255).clamp(0, 255).to(torch.uint8)
            self.image[t:b, l:r] = pixels.permute(1, 2, 0).cpu().numpy()
        else:
            self.image[..., t:b, l:r] = crop(out.image).float().cpu()
        if out.attention is not None and self.keep_masks:
            self._put_masks(out, crop, n, (t, b, l, r))
        if out.heatmap is not None:
            scale = out.image.shape[-2] // out.heatmap.shape[-2]
            if self.heatmap is None:
                self.heatmap = torch.empty(n, 1, self.height // scale, self.width // scale)
            hm = out.heatmap[..., reg.top // scale:reg.bottom // scale, reg.left // scale:reg.right // scale]
            self.heatmap[..., t // scale:b // scale, l // scale:r // scale] = hm.float().cpu()

    def _put_masks(self, out, crop, n, core) -> None:
        t, b, l, r = core
        k = out.attention.shape[1]
        if self.masks is None:
            self.masks = self._array((k, self.height, self.width) if self.uint8 else
                                     (n, k, self.height, self.width), np.uint8)
            if self.uint8:
                self.foreground = np.empty((self.height, self.width), np.uint8)
        if self.uint8:
            self.masks[:, t:b, l:r] = _unit_u8(crop(out.attention[0]))
            self.foreground[t:b, l:r] = _unit_u8(crop(out.foreground()[0, 0]))
        else:
            self.masks[..., t:b, l:r] = crop(out.attention).float().cpu()

    def output(self) -> GeneratorOutput:
        """(float mode) The whole outputs as the generator would return them (no ``content``)."""
        return GeneratorOutput(image=self.image, attention=self.masks, heatmap=self.heatmap)


def change_reach(base: GeneratorOutput, moved: GeneratorOutput, first: int, last: int) -> int:
    """How far (px) beyond the changed input square (rows and columns ``first``..``last``) the outputs (image and
    attention maps) of two passes differ: the receptive-field probes of plan.py and stream.py."""
    pairs = [(base.image, moved.image)] + ([(base.attention, moved.attention)] if base.attention is not None else [])
    changed = sum((a - b).abs().amax(dim=(0, 1)) for a, b in pairs)
    rows, cols = (torch.nonzero(changed.amax(dim=d) > 0).flatten() for d in (1, 0))
    if not len(rows):
        return 0
    return max(first - int(rows.min()), int(rows.max()) - last, first - int(cols.min()), int(cols.max()) - last)


def _unit_u8(m: torch.Tensor) -> np.ndarray:
    return (m.float() * 255).round_().clamp_(0, 255).to(torch.uint8).cpu().numpy()


def _run(generator, source, tiles: Sequence[Tile], extra, switch, canvas: Optional[Canvas]) -> Iterator[None]:
    """Every tile through ``generator``; a site set to stop ends a tile's pass early; cores go to ``canvas``."""
    for tile in tiles:
        switch.region = tile.region()
        try:
            out = generator(source.read(tile.box), *extra)
        except StopForward:
            continue
        if canvas is not None:
            canvas.put(out, tile)
        del out
        if _trim_above is not None and resident_bytes() > _trim_above:
            release_freed_memory()
        yield


def run_exact(generator, source, tiles: Sequence[Tile], extra=(), canvas: Canvas = None, progress=None,
              exclude: Optional[torch.nn.Module] = None) -> Canvas:
    """The whole-image result, tile by tile: the global sites in call order, each collected over every tile's core
    with the earlier ones frozen at their whole-image statistics (the pass stops right after it), then one pass
    with all frozen. Cost: about (number of sites)/2 + 1 forward passes over the tiles (with their halos).
    ``exclude``: a submodule whose sites are not run (stream.py replaces it by a read of its output)."""
    with GlobalStatistics(generator, exclude) as switch:
        passes = 0
        while switch.pending:
            switch.collect(switch.pending, stop=True)
            for _ in _run(generator, source, tiles, extra, switch, None):
                pass
            if not switch.finish():
                raise RuntimeError("exact tiling: a global-statistics layer was never reached")
            passes += 1
            if progress:
                progress(f"exact tiling: statistics pass {passes} ({len(switch.pending)} layer(s) to go)")
        switch.region = None
        for _ in _run(generator, source, tiles, extra, switch, canvas):
            pass
    return canvas


def run_fast(generator, source, tiles: Sequence[Tile], extra=(), canvas: Canvas = None,
             preview_pixels: int = 0) -> Canvas:
    """Statistics from one whole-image pass over a shrunk copy (at most ``preview_pixels``), then one tiled pass
    with them frozen that writes the cores. (Refining them by a tiled pass that collects full-resolution
    statistics with the shrunk ones frozen was measured: it made the error worse, e.g. 13.6 -> 75/255.)"""
    with GlobalStatistics(generator) as switch:
        switch.collect(switch.sites)
        generator(source.preview(preview_pixels, 4), *extra)
        switch.finish()
        release_freed_memory()  # the shrunk copy's pass (and its PIL copy of the image) is over: hand it back
        switch.region = None
        for _ in _run(generator, source, tiles, extra, switch, canvas):
            pass
    return canvas
