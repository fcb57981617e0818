"""Exact tiling in a few forward passes: the encoder streamed stage by stage through files.

``run_exact`` (runner.py) reaches each global-statistics site by a pass over the tiles from the image up to that
site: about sites/2 + 1 forward passes, 13.5 for the 9-block ResNets (25 instance norms in AttentionGAN). For the
generators whose ``forward`` begins with ``self.encoder(x)`` of the image alone (or of ``encoder_input(x, *extra)``:
the multi-domain model's image and label channels), the encoder a Sequential of ``stem``, ``down1``, ``down2``
and ``blocks`` (CycleGAN, AttentionGAN Schemes I and II, U-GAT-IT light, the multi-domain model: ``streamable``),
the encoder's output is built at its own resolution (1/4 of the image's) one stage at a time, each from the file
its predecessor wrote:

1. the stem and the two down-sampling layers (3 sites, cheap): ``run_exact`` over image tiles, their output
   written to a file;
2. each residual block, from the file of its input to a new file: layer by layer where the block declares
   ``by_layers`` (:func:`_block_by_layers`: each convolution once, through a third file), else a statistics
   pass for each of its two norms and a pass that writes its output (``run_exact``);
3. the rest (decoders and the composition with the input; U-GAT-IT's CAM, MLP, AdaLIN blocks and up-sampling):
   ``run_exact`` over image tiles with the encoder replaced by a read of the last file, so its passes cost only
   the layers after the encoder, with their own, smaller halo (:func:`decoder_halo`).

Every global statistic is still the whole image's and every tile's core is read or written with a halo of at
least its stage's receptive-field radius, so the result is the whole-image result (tests/test_tiling.py: max abs
≤ 1e-4 for each family). The files are float32, N × H/4 × W/4 × 4·ngf (6000²: 2.3 GB; three at a time), in the
temporary directory (``TMPDIR``), unnamed (gone when closed or when the process dies); rows are read and written
with seek + read/write, so they live in the page cache, not in the process's memory.
"""

from __future__ import annotations

import math
import tempfile
from contextlib import contextmanager
from typing import Callable, Optional

import numpy as np
import torch
from torch import Tensor, nn

from .runner import Tile, change_reach, grid, run_exact
from .sites import GlobalStatistics, Totals

__all__ = ["streamable", "decoder_halo", "channels", "feature_bytes", "run_streamed", "FeatureFile", "FeatureFileError"]

# Receptive-field radii, rounded up to the 4-px stride, of the encoder's stages (tests/test_tiling.py fails if one
# is short); the decoders' is measured per generator (decoder_halo):
STEM_HALO = 12  # image px: stem 7×7 (3) + down1 3×3/2 (1) + down2 3×3/2 (2) = 6; with 4×4/2 (StarGAN's) 3+2+4 = 9
BLOCK_HALO = 4  # encoder px: two 3×3 convolutions = 2
CONV_HALO = 1  # encoder px: one 3×3 convolution (a block streamed layer by layer, _block_by_layers)


def streamable(generator: nn.Module) -> bool:
    """Whether the generator declares ``streamable`` (its forward begins with ``self.encoder(x)`` of the image
    alone, or of ``self.encoder_input(x, *extra)``) and its encoder is a Sequential of ``stem``, ``down1``,
    ``down2`` and ``blocks`` (one tensor in, one out, each)."""
    encoder = getattr(generator, "encoder", None)
    return bool(getattr(generator, "streamable", False)) and isinstance(encoder, nn.Sequential) and all(
        hasattr(encoder, name) for name in ("stem", "down1", "down2", "blocks"))


@torch.no_grad()
def decoder_halo(generator: nn.Module, extra=(), device="cpu") -> int:
    """The receptive-field radius in image px of everything after the encoder (decoders, U-GAT-IT's AdaLIN
    blocks and up-sampling), + 4 px, rounded up to 4: one encoder pixel of random features is changed with every
    global statistic frozen and the reach of the change in the outputs is measured (as plan.receptive_halo does
    for the whole network). Default sizes: CycleGAN and AttentionGAN 12 px (their whole networks: 92), Scheme I 16
    (72), U-GAT-IT light 44 (84). Cached."""
    cached = getattr(generator, "_unpaired_decoder_halo", None)
    if cached is not None:
        return cached
    encoder, size = generator.encoder, 16  # encoder px
    while True:
        features = torch.randn(1, channels(generator), size, size, generator=torch.Generator().manual_seed(0))
        features = [features.to(device)]
        image = torch.zeros(1, 3, 4 * size, 4 * size, device=device)
        with _forward_replaced(encoder, lambda x: features[0]), GlobalStatistics(generator, exclude=encoder) as switch:
            switch.collect(switch.sites)
            generator(image, *extra)
            switch.finish()
            base = generator(image, *extra)
            features[0] = features[0].clone()
            features[0][..., size // 2, size // 2] += 1.0
            moved = generator(image, *extra)
        centre = 4 * (size // 2)  # the changed encoder pixel covers image px centre .. centre + 3
        reach = change_reach(base, moved, centre, centre + 3)
        if reach < 2 * size - 8 or size >= 256:
            break
        size *= 2
    generator._unpaired_decoder_halo = 4 * math.ceil((reach + 4) / 4)
    return generator._unpaired_decoder_halo


@contextmanager
def _forward_replaced(module: nn.Module, forward):
    """``module.forward`` is ``forward`` inside the block; afterwards what it was (lean_inference's, or the class's)."""
    previous = module.__dict__.get("forward")
    module.forward = forward
    try:
        yield
    finally:
        if previous is None:
            del module.forward
        else:
            module.forward = previous


def channels(generator: nn.Module) -> int:
    """The encoder's output channels (its last down-sampling convolution's; the blocks keep them)."""
    return [m for m in generator.encoder.down2.modules() if isinstance(m, nn.Conv2d)][-1].out_channels


def feature_bytes(generator: nn.Module, height: int, width: int, batch: int = 1) -> int:
    """The size of one feature file (the encoder's output, float32) for ``batch`` height×width images."""
    return 4 * batch * (height // 4) * (width // 4) * channels(generator)


class FeatureFileError(RuntimeError):
    """A feature file could not be made, written or read back (the temp directory full or gone)."""


class FeatureFile:
    """An N×H×W×C float32 array in an unnamed temporary file; windows are read and written row by row, read
    windows go to ``device`` as ``dtype`` (the generator's)."""

    def __init__(self, batch: int, height: int, width: int, channels: int, device="cpu", dtype=torch.float32):
        self.shape, self.device, self.dtype = (batch, height, width, channels), device, dtype
        try:
            self.file = tempfile.TemporaryFile()
            self.file.truncate(4 * batch * height * width * channels)  # sparse until written
        except OSError as e:
            raise _failed(e) from None

    def _offset(self, n: int, y: int, x: int) -> int:
        _, h, w, c = self.shape
        return 4 * c * ((n * h + y) * w + x)

    def read(self, top: int, bottom: int, left: int, right: int) -> Tensor:
        """The window as an N×C×h×w tensor (channels-last in memory)."""
        batch, _, _, c = self.shape
        window = np.empty((batch, bottom - top, right - left, c), np.float32)
        for n in range(batch):
            for i, y in enumerate(range(top, bottom)):
                self.file.seek(self._offset(n, y, left))
                if self.file.readinto(memoryview(window[n, i]).cast("B")) != window[n, i].nbytes:
                    raise _failed(OSError("a feature file was shorter than written"))
        return torch.from_numpy(window).permute(0, 3, 1, 2).to(self.device, self.dtype)

    def write(self, top: int, left: int, x: Tensor) -> None:
        rows = x.detach().float().cpu().permute(0, 2, 3, 1).contiguous().numpy()  # N×h×w×C
        try:
            for n in range(rows.shape[0]):
                for i in range(rows.shape[1]):
                    self.file.seek(self._offset(n, top + i, left))
                    self.file.write(memoryview(rows[n, i]).cast("B"))
        except OSError as e:
            raise _failed(e) from None

    def close(self) -> None:
        self.file.close()


def _failed(error: OSError) -> FeatureFileError:
    return FeatureFileError(f"exact tiling: its feature files in {tempfile.gettempdir()} failed "
                            f"({error.strerror or error}): free space there, set TMPDIR to a larger disk, or use "
                            "--tiling fast")


class _FileCanvas:
    """``run_exact``'s canvas for a stage whose output is a tensor: each tile's core goes to ``file``."""

    def __init__(self, file: FeatureFile):
        self.file = file

    def put(self, out: Tensor, tile: Tile) -> None:
        scale = (tile.box[1] - tile.box[0]) // out.shape[-2]  # input px per output px (1 or 4)
        reg = tile.region()
        core = out[..., reg.top // scale:reg.bottom // scale, reg.left // scale:reg.right // scale]
        self.file.write(tile.core[0] // scale, tile.core[2] // scale, core)


class _FileSource:
    def __init__(self, file: FeatureFile):
        self.file = file

    def read(self, box) -> Tensor:
        return self.file.read(*box)


class _EncoderInput:
    """Image tiles as the encoder reads them (the multi-domain model adds its label channels: ``encoder_input``)."""

    def __init__(self, source, generator, extra):
        self.source, self.extra = source, extra
        self.prepare = getattr(generator, "encoder_input", None)

    def read(self, box) -> Tensor:
        x = self.source.read(box)
        return x if self.prepare is None else self.prepare(x, *self.extra)


class _Recording:
    """A source that remembers the box of the last tile read (the encoder's replacement reads the same place)."""

    def __init__(self, source):
        self.source, self.box = source, None

    def read(self, box) -> Tensor:
        self.box = box
        return self.source.read(box)


def run_streamed(generator: nn.Module, source, height: int, width: int, core: int, halo: int, extra=(), canvas=None,
                 progress: Optional[Callable[[str], None]] = None):
    """The whole-image result of a :func:`streamable` generator (module docstring). ``core`` and ``halo``: the
    plan's image tiles (the decoders'); every stage's tiles take about their memory."""
    encoder = generator.encoder
    stem = nn.Sequential(encoder.stem, encoder.down1, encoder.down2)
    say = progress or (lambda _: None)
    stages = 2 + len(encoder.blocks)
    side = core + 2 * halo  # the plan's tile side in image px
    n, c, h, w = source.read((0, 4, 0, 4)).shape[0], channels(generator), height // 4, width // 4
    weight = next(generator.parameters())
    new_file = lambda: FeatureFile(n, h, w, c, weight.device, weight.dtype)  # noqa: E731
    files = [new_file()]  # [the current stage's input, spares]
    try:
        say(f"exact tiling: stage 1/{stages} (stem and down-sampling)")
        run_exact(stem, _EncoderInput(source, generator, extra), grid(height, width, side - 2 * STEM_HALO, STEM_HALO),
                  canvas=_FileCanvas(files[0]))
        # a block holds ~4 tensors of 4·ngf channels per encoder px: a third of the side keeps under the plan's bytes
        block_side = max(16, side // 3)
        for i, block in enumerate(encoder.blocks):
            say(f"exact tiling: stage {i + 2}/{stages} (residual block {i + 1})")
            layered = _layered(block)
            while len(files) < (3 if layered else 2):
                files.append(new_file())
            if layered:
                _block_by_layers(block, *files[:3], grid(h, w, block_side - 2 * CONV_HALO, CONV_HALO, stride=1),
                                 grid(h, w, block_side, 0, stride=1))
            else:
                run_exact(block, _FileSource(files[0]), grid(h, w, block_side - 2 * BLOCK_HALO, BLOCK_HALO, stride=1),
                          canvas=_FileCanvas(files[1]))
            files[:2] = files[1], files[0]  # the block's output (in the first spare) is the next one's input
        say(f"exact tiling: stage {stages}/{stages} (decoders)")
        recording, features = _Recording(source), files[0]
        with _forward_replaced(encoder, lambda x: features.read(*(v // 4 for v in recording.box))):
            return run_exact(generator, recording, grid(height, width, side - 2 * halo, halo), extra, canvas,
                             exclude=encoder)
    finally:
        for file in files:
            file.close()


def _layered(block: nn.Module) -> bool:
    """The block declares ``by_layers`` and both its norms are global-statistics sites (instance norms)."""
    if not getattr(block, "by_layers", False):
        return False
    sites = {site.module for site in GlobalStatistics(block).sites}
    return block.norm1 in sites and block.norm2 in sites


def _block_by_layers(block: nn.Module, inputs: FeatureFile, first: FeatureFile, second: FeatureFile, tiles,
                     cores) -> None:
    """A block whose forward is x + norm2(conv2(relu(norm1(conv1(x))))) with 3×3 convolutions (``by_layers``),
    each convolution run once: conv1 of ``inputs`` (tiles with a 1-px halo) to ``first``, norm1's statistics
    gathered on the way; norm1 (frozen), ReLU and conv2 of ``first`` to ``second``, the same for norm2; then
    x + norm2(``second``), core by core, to ``first``. ``run_exact`` would run conv1 twice and the block three
    times (two statistics passes and the writing pass)."""
    with GlobalStatistics(block) as switch:
        norm1, norm2 = (next(s for s in switch.sites if s.module is m) for m in (block.norm1, block.norm2))
        norm1.totals = Totals()
        for tile in tiles:
            _write_core(first, tile, block.conv1(inputs.read(*tile.box)), norm1.totals)
        norm1.finish()
        norm2.totals = Totals()
        for tile in tiles:
            _write_core(second, tile, block.conv2(torch.relu_(block.norm1(first.read(*tile.box)))), norm2.totals)
        norm2.finish()
        for tile in cores:
            top, bottom, left, right = tile.core
            first.write(top, left, inputs.read(top, bottom, left, right).add_(block.norm2(second.read(*tile.core))))


def _write_core(file: FeatureFile, tile: Tile, out: Tensor, totals: Totals) -> None:
    """The tile's core of ``out`` to ``file``, its statistics to ``totals``; copied channels-last once, which is
    both the file's row layout and the statistics' fast path (sites.var_mean_hw)."""
    reg = tile.region()
    core = out[..., reg.top:reg.bottom, reg.left:reg.right].contiguous(memory_format=torch.channels_last)
    file.write(tile.core[0], tile.core[2], core)
    totals.add(core)
