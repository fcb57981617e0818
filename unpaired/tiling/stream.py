"""Exact tiling in a few forward passes: the encoder (and U-GAT-IT light's decoder blocks) streamed through files.

``run_exact`` (runner.py) reaches each global-statistics site by a pass over the tiles from the image up to that
site: about sites/2 + 1 forward passes, 13.5 for the 9-block ResNets (25 instance norms in AttentionGAN). For the
generators whose ``forward`` begins with ``self.encoder(x)`` of the image alone (or of ``encoder_input(x, *extra)``:
the multi-domain model's image and label channels), the encoder a Sequential of ``stem``, ``down1``, ``down2``
and ``blocks`` (CycleGAN, AttentionGAN Schemes I and II, U-GAT-IT light, the multi-domain model: ``streamable``),
the encoder's output is built at its own resolution (1/4 of the image's) one stage at a time, each from the file
its predecessor wrote (features.py):

1. the stem and the two down-sampling layers: the stem and down1's convolution by ``run_exact`` over image tiles
   to a file at 1/2 resolution, the rest from it to the first file at 1/4 (:func:`_stem`);
2. each residual block, from the file of its input to a new file: layer by layer where the block declares
   ``by_layers`` (:func:`_block_by_layers`: each convolution once, through a third file), else a statistics
   pass for each of its two norms and a pass that writes its output (``run_exact``);
3. where the generator declares ``streams_decoder`` (U-GAT-IT light: ``cam`` → ``style`` → ``decoder`` blocks
   → ``to_image``): the CAM head's attended features (a 1×1 convolution: pointwise; only its logits, not part of
   the output, pool the whole map) to a file, their global average on the way, which gives AdaLIN's gamma and
   beta (``style``); each decoder block layer by layer as in 2 (AdaLIN's instance and layer statistics both
   follow from per-channel totals);
4. the rest (decoders and the composition with the input; for U-GAT-IT light only ``to_image``: the up-sampling
   layers and tanh, or, where 3 does not apply, its CAM, MLP, AdaLIN blocks too): ``run_exact`` over image tiles
   with the streamed part replaced by a read of the last file, so its passes cost only the layers after it, with
   their own, smaller halo (:func:`decoder_halo`).

Every global statistic is still the whole image's and every tile's core is read or written with a halo of at
least its stage's receptive-field radius, so the result is the whole-image result (tests/test_tiling.py: max abs
≤ 1e-4 for each family). The files are float32, N × H/4 × W/4 × 4·ngf (6000²: 2.3 GB; three at a time), in the
temporary directory (``TMPDIR``).
"""

from __future__ import annotations

import math
from contextlib import contextmanager, nullcontext
from typing import Callable, Optional

import torch
from torch import Tensor, nn

from ..nn.outputs import GeneratorOutput
from .features import FeatureFile, FeatureFileError, FileCanvas, FileSource
from .runner import Tile, change_reach, grid, run_exact
from .sites import GlobalStatistics, Totals

__all__ = ["streamable", "streams_decoder", "decoder_halo", "channels", "feature_bytes", "run_streamed",
           "FeatureFile", "FeatureFileError"]

# Receptive-field radii, rounded up to the stride, of the encoder's stages (tests/test_tiling.py fails if one is
# short); the decoders' is measured per generator (decoder_halo):
STEM_CONV_HALO = 8  # image px: the stem (3) and down1's convolution (1; 4×4/2: 2), to a file at 1/2 resolution
DOWN_HALO = 2  # 1/2-resolution px: down2's convolution (3×3/2: 1; 4×4/2 with padding 1: 2)
BLOCK_HALO = 4  # encoder px: two 3×3 convolutions = 2
CONV_HALO = 1  # encoder px: one 3×3 convolution (a block streamed layer by layer, _block_by_layers; an up-sampling)


def streamable(generator: nn.Module) -> bool:
    """Whether the generator declares ``streamable`` (its forward begins with ``self.encoder(x)`` of the image
    alone, or of ``self.encoder_input(x, *extra)``) and its encoder is a Sequential of ``stem``, ``down1``,
    ``down2`` and ``blocks`` (one tensor in, one out, each), ``down1`` a Sequential that begins with its
    convolution (ConvNormReLU)."""
    encoder = getattr(generator, "encoder", None)
    if not (getattr(generator, "streamable", False) and isinstance(encoder, nn.Sequential)
            and all(hasattr(encoder, name) for name in ("stem", "down1", "down2", "blocks"))):
        return False
    down1 = encoder.down1
    return isinstance(down1, nn.Sequential) and len(down1) > 1 and isinstance(down1[0], nn.Conv2d)


def streams_decoder(generator: nn.Module) -> bool:
    """Whether, after the encoder, the generator runs ``cam`` (a CAMHead), ``style`` (gamma, beta from the attended
    features' global average), its ``decoder`` blocks on (y, gamma, beta), each ``by_layers`` with AdaLIN norms,
    and ``to_image`` (whose layers are ``upsample``'s): U-GAT-IT light declares ``streams_decoder``."""
    return streamable(generator) and bool(getattr(generator, "streams_decoder", False)) and all(
        _layered(block) for block in generator.decoder)


@torch.no_grad()
def decoder_halo(generator: nn.Module, extra=(), device="cpu") -> int:
    """The receptive-field radius in image px of what runs after the last file (:func:`run_streamed`'s last stage:
    the decoders; U-GAT-IT light's up-sampling after its first convolution), + 4 px, rounded up to 4: one pixel of
    random features in that file is changed with every global statistic frozen and the reach of the change in the
    outputs is measured (as plan.receptive_halo does for the whole network). Default sizes: CycleGAN and
    AttentionGAN 12 px (their whole networks: 92), Scheme I 16 (72), U-GAT-IT light 8 (84; from its encoder's
    output: 44). Cached."""
    tail = streams_decoder(generator)
    cache = vars(generator).setdefault("_unpaired_decoder_halo", {})
    if tail in cache:
        return cache[tail]
    held = [None]  # the features the stage reads
    if tail:
        _, rest, c, scale = _upsampling_split(generator)
        stage, exclude, replaced = _Tail(generator, rest, lambda: held[0]), None, nullcontext()
    else:
        stage, c, scale, exclude = generator, channels(generator), 4, generator.encoder
        replaced = _replaced(generator.encoder, lambda x: held[0])
    size = 16  # feature px
    with replaced:
        while True:
            held[0] = torch.randn(1, c, size, size, generator=torch.Generator().manual_seed(0)).to(device)
            image = torch.zeros(1, 3, scale * size, scale * size, device=device)
            with GlobalStatistics(stage, exclude=exclude) as switch:
                switch.collect(switch.sites)
                stage(image, *extra)
                switch.finish()
                base = stage(image, *extra)
                held[0] = held[0].clone()
                held[0][..., size // 2, size // 2] += 1.0
                moved = stage(image, *extra)
            centre = scale * (size // 2)  # the changed pixel covers image px centre .. centre + scale - 1
            reach = change_reach(base, moved, centre, centre + scale - 1)
            if reach < centre - 8 or size >= 256:
                break
            size *= 2
    cache[tail] = 4 * math.ceil((reach + 4) / 4)
    return cache[tail]


@contextmanager
def _replaced(module: nn.Module, method, attr: str = "forward"):
    """``module.<attr>`` (its forward unless named) is ``method`` inside the block; afterwards what it was
    (lean_inference's, or the class's)."""
    previous = module.__dict__.get(attr)
    setattr(module, attr, method)
    try:
        yield
    finally:
        if previous is None:
            delattr(module, attr)
        else:
            setattr(module, attr, previous)


def channels(generator: nn.Module) -> int:
    """The encoder's output channels (its last down-sampling convolution's; the blocks keep them)."""
    return [m for m in generator.encoder.down2.modules() if isinstance(m, nn.Conv2d)][-1].out_channels


def feature_bytes(generator: nn.Module, height: int, width: int, batch: int = 1) -> int:
    """The size of one feature file (the encoder's output, float32) for ``batch`` height×width images."""
    return 4 * batch * (height // 4) * (width // 4) * channels(generator)


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

    def box_in(self, scale: int) -> tuple:
        """The last box in px of a map at 1/``scale`` of the image's resolution."""
        return tuple(v // scale for v in self.box)


def run_streamed(generator: nn.Module, source, height: int, width: int, core: int, halo: int, extra=(), canvas=None,
                 progress: Optional[Callable[[str], None]] = None):
    """The whole-image result of a :func:`streamable` generator (module docstring). ``core`` and ``halo``: the
    plan's image tiles (the last stage's); every stage's tiles take about their memory."""
    encoder, decoder = generator.encoder, streams_decoder(generator)
    say = progress or (lambda _: None)
    stages = 1 + len(encoder.blocks) + (3 + len(generator.decoder) if decoder else 1)
    side = core + 2 * halo  # the plan's tile side in image px
    n, c, h, w = source.read((0, 4, 0, 4)).shape[0], channels(generator), height // 4, width // 4
    weight = next(generator.parameters())
    scratch = lambda *hwc: FeatureFile(n, *hwc, weight.device, weight.dtype)  # noqa: E731
    files = []  # [the current stage's input, spares]

    def spares(count: int) -> None:
        while len(files) < count:
            files.append(scratch(h, w, c))

    try:
        spares(1)
        say(f"exact tiling: stage 1/{stages} (stem and down-sampling)")
        _stem(encoder, _EncoderInput(source, generator, extra), height, width, side, files[0], scratch)
        # a block holds ~4 tensors of 4·ngf channels per encoder px: a third of the side keeps under the plan's bytes
        block_side = max(16, side // 3)
        tiles = grid(h, w, block_side - 2 * CONV_HALO, CONV_HALO, stride=1)
        cores = grid(h, w, block_side, 0, stride=1)
        stage = 1
        for i, block in enumerate(encoder.blocks):
            stage += 1
            say(f"exact tiling: stage {stage}/{stages} (residual block {i + 1})")
            layered = _layered(block)
            spares(3 if layered else 2)
            if layered:
                _block_by_layers(block, *files[:3], tiles, cores)
            else:
                run_exact(block, FileSource(files[0]), grid(h, w, block_side - 2 * BLOCK_HALO, BLOCK_HALO, stride=1),
                          canvas=FileCanvas(files[1]))
            files[:2] = files[1], files[0]  # the block's output (in the first spare) is the next one's input
        recording = _Recording(source)
        if not decoder:
            say(f"exact tiling: stage {stages}/{stages} (decoders)")
            features = files[0]
            with _replaced(encoder, lambda x: features.read(*recording.box_in(4))):
                return run_exact(generator, recording, grid(height, width, side - 2 * halo, halo), extra, canvas,
                                 exclude=encoder)
        say(f"exact tiling: stage {stage + 1}/{stages} (CAM attention)")
        spares(3)
        heatmap = torch.empty(n, 1, h, w)
        gamma, beta = _attended(generator, files[0], files[1], heatmap, cores)
        files[:2] = files[1], files[0]
        for i, block in enumerate(generator.decoder):
            say(f"exact tiling: stage {stage + 2 + i}/{stages} (AdaLIN residual block {i + 1})")
            _block_by_layers(block, *files[:3], tiles, cores, norm_args=(gamma, beta))
            files[:2] = files[1], files[0]
        for file in files[1:]:  # room on the disk for the up-sampled file
            file.close()
        del files[1:]
        say(f"exact tiling: stage {stages - 1}/{stages} (up-sampling: its first convolution)")
        first, rest, c, scale = _upsampling_split(generator)
        files.append(scratch(height // scale, width // scale, c))
        run_exact(first, FileSource(files[0]), tiles, canvas=FileCanvas(files[1]))
        say(f"exact tiling: stage {stages}/{stages} (up-sampling)")
        tail = _Tail(generator, rest, lambda: files[1].read(*recording.box_in(scale)),
                     lambda: _window(heatmap, recording.box_in(4)))
        return run_exact(tail, recording, grid(height, width, side - 2 * halo, halo), (), canvas)
    finally:
        for file in files:
            file.close()


def _window(x: Tensor, box) -> Tensor:
    top, bottom, left, right = box
    return x[..., top:bottom, left:right]


def _stem(encoder: nn.Sequential, inputs, height: int, width: int, side: int, out: FeatureFile, scratch) -> None:
    """The stem and the two down-sampling layers to ``out`` through a file at 1/2 resolution: the stem and down1's
    convolution over image tiles (two passes: the stem's statistics, then the writing one), then down1's norm and
    ReLU and down2 over its tiles (three, cheap: only down2's convolution, twice). All three by ``run_exact`` over
    image tiles took 3 statistics passes and the writing one, each through the 7×7 stem at full resolution."""
    down1 = encoder.down1
    half = scratch(height // 2, width // 2, down1[0].out_channels)
    try:
        run_exact(nn.Sequential(encoder.stem, down1[0]), inputs,
                  grid(height, width, side - 2 * STEM_CONV_HALO, STEM_CONV_HALO), canvas=FileCanvas(half))
        run_exact(nn.Sequential(*list(down1)[1:], encoder.down2), FileSource(half),
                  grid(height // 2, width // 2, side // 2 - 2 * DOWN_HALO, DOWN_HALO, stride=2), canvas=FileCanvas(out))
    finally:
        half.close()


def _leaves(module: nn.Module) -> list:
    """The layers of nested Sequentials, in order."""
    if isinstance(module, nn.Sequential):
        return [leaf for child in module for leaf in _leaves(child)]
    return [module]


@torch.no_grad()
def _upsampling_split(generator: nn.Module):
    """U-GAT-IT's ``upsample`` cut after its first convolution -> (the layers up to it, the rest, the channels of
    its output, image px per px of it): the first part runs once, to a file (at 1/2 resolution), before the rest
    needs the statistics of its output."""
    layers = _leaves(generator.upsample)
    cut = next(i for i, m in enumerate(layers) if isinstance(m, nn.Conv2d)) + 1
    first, rest = nn.Sequential(*layers[:cut]), nn.Sequential(*layers[cut:])
    weight = next(generator.parameters())
    probe = first(torch.zeros(1, channels(generator), 4, 4, device=weight.device, dtype=weight.dtype))
    return first, rest, probe.shape[1], 16 // probe.shape[-1]


class _Tail(nn.Module):
    """A streamed decoder's last stage: ``generator.to_image`` with ``upsample`` replaced by ``rest`` (its layers
    after the first convolution: the sites here), of the features read by ``features()`` in place of the image
    tile it is given; ``heatmap()``: the tile's CAM heatmap, passed through."""

    def __init__(self, generator: nn.Module, rest: nn.Sequential, features: Callable[[], Tensor],
                 heatmap: Callable[[], Optional[Tensor]] = lambda: None):
        super().__init__()
        self.rest = rest
        self.generator = [generator]  # not a submodule: its other sites are not this stage's
        self.features, self.heatmap = features, heatmap

    def forward(self, x: Tensor) -> GeneratorOutput:
        generator = self.generator[0]
        with _replaced(generator.upsample, lambda y: self.rest(y)):  # a Module would be registered
            return GeneratorOutput(image=generator.to_image(self.features()), heatmap=self.heatmap())


def _attended(generator: nn.Module, inputs: FeatureFile, out: FeatureFile, heatmap: Tensor, cores):
    """The CAM head's attended features of ``inputs`` to ``out`` core by core, its heatmap to ``heatmap``;
    -> AdaLIN's (gamma, beta) from their global average (``style``). The attended features are a 1×1 convolution
    of the encoder's with the classifier's weights: they do not depend on the pooled features (only the CAM logits
    do, which the tiled outputs do not include), so each core's own pooling is harmless."""
    totals = Totals()
    for tile in cores:
        top, bottom, left, right = tile.core
        attended, _, heat = generator.cam(inputs.read(*tile.core))
        _write_core(out, tile, attended, totals)
        heatmap[..., top:bottom, left:right] = heat.float().cpu()
    weight = next(generator.parameters())
    mean = totals.mean.to(weight.device, weight.dtype)
    with _replaced(generator, lambda attended: mean, attr="pool_features"):
        return generator.style(None)  # light: the MLP on the global average, which pool_features now gives


def _layered(block: nn.Module) -> bool:
    """The block declares ``by_layers`` and both its norms are global-statistics sites (instance norms, AdaLIN)."""
    if not getattr(block, "by_layers", False):
        return False
    sites = {site.module for site in GlobalStatistics(block).sites}
    return block.norm1 in sites and block.norm2 in sites


def _block_by_layers(block: nn.Module, inputs: FeatureFile, first: FeatureFile, second: FeatureFile, tiles,
                     cores, norm_args=()) -> None:
    """A block whose forward is x + norm2(conv2(relu(norm1(conv1(x))))) with 3×3 convolutions (``by_layers``;
    the norms called with ``norm_args`` too: AdaLIN's gamma and beta),
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
            normed = torch.relu_(block.norm1(first.read(*tile.box), *norm_args))
            _write_core(second, tile, block.conv2(normed), norm2.totals)
        norm2.finish()
        for tile in cores:
            top, bottom, left, right = tile.core
            residual = block.norm2(second.read(*tile.core), *norm_args)
            first.write(top, left, inputs.read(top, bottom, left, right).add_(residual))


def _write_core(file: FeatureFile, tile: Tile, out: Tensor, totals: Totals) -> None:
    """The tile's core of ``out`` to ``file``, its statistics to ``totals``; copied channels-last once, which is
    both the file's row layout and the statistics' fast path (sites.var_mean_hw)."""
    reg = tile.region()
    core = out[..., reg.top:reg.bottom, reg.left:reg.right].contiguous(memory_format=torch.channels_last)
    file.write(tile.core[0], tile.core[2], core)
    totals.add(core)
