"""How to translate one image within a memory budget: whole, or tiled (fast or exact), and with which tiles.

The budget (``--max-memory``, default 2 GiB) is for the whole process: what it holds already (Python, PyTorch,
the model: about 0.6 GB for an ngf-64 model, /proc/self/statm) is taken off first. Two numbers per generator,
measured on first use and kept on the module:

* ``bytes_per_pixel``: the peak of live tensor bytes per input pixel in one pass on 128×128 inside
  ``lean_inference`` (the in-place layers every inference here runs with), counted by ``LiveTensorBytes``, times
  ``MARGIN`` for what that count cannot see (kernel scratch, the heap's free blocks). Counted at 128² / measured
  peak RSS growth of whole-image inference at 1000², ngf 64 (docs/benchmarks.md, session 8): AttentionGAN 0.76 /
  0.95 KB/px, CycleGAN 0.62 / 0.98 KB/px, U-GAT-IT light 1.66 / 2.13 KB/px (the rule before it, 8 × the largest
  layer output, said 2.0-2.1 KB/px for all three); since lean's Sequentials let go of a padded convolution's
  input, counted: 0.63, 0.59 and 1.36;
* ``halo``: the receptive-field radius, found by perturbing the centre of a random input with every global
  statistic frozen and seeing how far the outputs change, plus 8 px, rounded up to the stride. A halo this
  large makes tiling with frozen statistics exact (no core depends on anything outside its tile): the fast
  mode's only error is that of its statistics, which shows no seams.

Auto picks the whole image when its estimate fits; else, for the generators whose encoder can be streamed through
files (all that tile here: CycleGAN, AttentionGAN, U-GAT-IT light, the multi-domain model; stream.py), the exact
mode that way (a few passes, small halos), and otherwise (a generator that cannot stream, or too little room in
the temp directory) the fast mode, with the largest tiles that fit.
What the process holds (the decoded input among it) and the full-size buffers still to come (the uint8 output
image and masks: :func:`kept_bytes`) are counted against the budget first. Cores are never smaller than
``MIN_CORE`` (256 px) nor than twice the halo: below that the halos are most of the work for little memory (an
8000² image once went to 15625 tiles of 64 px: 8.5 min instead of 3, for the same peak). When even those tiles do
not fit beside the full-size buffers the plan says by how much it goes over (``Plan.over``, in the progress line).
"""

from __future__ import annotations

import math
import shutil
import tempfile
import weakref
from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from ..host_memory import release_freed_memory, resident_bytes
from ..nn.lean import lean_inference
from .runner import change_reach
from .sites import GlobalStatistics
from .stream import decoder_halo, feature_bytes, streamable

__all__ = ["MODES", "DEFAULT_MAX_MEMORY", "Plan", "plan", "kept_bytes", "parse_bytes", "bytes_per_pixel",
           "attention_maps", "receptive_halo", "resident_bytes"]

MODES = ("auto", "whole", "fast", "exact")
DEFAULT_MAX_MEMORY = 2 * 1024 ** 3  # what a laptop spares a command without swapping
MIN_CORE = 256
PROBE = 128  # side of the pass that measures a generator's bytes per pixel
#: peak RSS growth of whole-image inference in lean_inference with glibc's freed memory kept (as Translator runs),
#: ngf 64, over the live tensor bytes counted here (benchmarks/lean_inference.py, docs/benchmarks.md): 1000², one
#: image, 4 passes: AttentionGAN 1.25, CycleGAN 1.58, U-GAT-IT light 1.28; 256², batch 8: 1.5 (the weights'
#: channels-last copy taken off). The heap's free blocks that no later request fits make most of the difference.
MARGIN = 1.6
#: the share of the room left after the full-size buffers that one pass (a tile, or the fast mode's pass over the
#: shrunk copy) may plan to take: the per-pixel rule is a rule, and glibc's heap does not give back every freed
#: block. tests/test_tiling.py's 2000² run under --max-memory 1200M, peak over repeated runs at 1 and 2 threads:
#: share 1: 1174-1330 MB; 0.75: 1104-1265 MB; 0.6: 1010-1084 MB.
PASS_SHARE = 0.6
DISK_SPARE = 1024 ** 3  # free disk left beside the exact mode's three feature files


@dataclass(frozen=True)
class Plan:
    mode: str  # whole, fast, exact (or resized: a fixed-size generator)
    core: int = 0  # tile core side (px; resized: the fixed size)
    halo: int = 0
    tiles: int = 1
    preview: int = 0  # fast: pixels of the shrunk copy its statistics come from
    budget: int = 0
    kept: int = 0  # bytes of the full-size buffers made while the tiles run (outputs, masks, a padded input copy)
    over: int = 0  # bytes by which even the smallest sensible tiles overshoot the budget (0: within it)
    streamed: bool = False  # exact, with the encoder streamed through files (stream.py); core, halo: the decoders'
    note: str = ""  # why not streamed, where it could have been

    def describe(self, width: int, height: int) -> str:
        if self.mode == "whole":
            return f"{width}x{height}: whole image"
        if self.mode == "resized":
            return (f"{width}x{height}: resized to {self.core}x{self.core} (this generator's fixed size) and back "
                    f"with PIL on uint8 pixels, budget {self.budget / 1024 ** 3:.1f} GB")
        line = (f"tiling {width}x{height} into {self.tiles} tiles of {self.core}x{self.core} px (+{self.halo} px "
                f"halo), {self.mode} mode{', the encoder streamed through files' if self.streamed else ''}, "
                f"budget {self.budget / 1024 ** 3:.1f} GB{self.note}")
        if self.over:
            line += (f"; over the budget by about {self.over / 1024 ** 3:.2f} GB: the full-size outputs alone take "
                     f"{self.kept / 1024 ** 3:.2f} GB besides the image "
                     "(fewer attention maps or a larger --max-memory)")
        return line


def parse_bytes(text: str) -> int:
    """'2G', '1.5GB', '800M', '500000000' -> bytes (powers of 1024)."""
    value = str(text).strip().upper().rstrip("B")
    scale = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4}.get(value[-1:], 1)
    try:
        number = float(value[:-1] if scale > 1 else value)
    except ValueError:
        raise ValueError(f"--max-memory {text!r}: expected a size such as 2G, 800M or a number of bytes") from None
    if number <= 0:
        raise ValueError(f"--max-memory {text!r}: must be positive")
    return int(number * scale)


class LiveTensorBytes(TorchDispatchMode):
    """``with LiveTensorBytes() as live:`` the peak sum of the CPU tensor storages alive at once (``live.peak``),
    counting each storage once from the op that made it until it is freed. Buffers inside a kernel (oneDNN's
    scratch) and the allocator's free lists are not seen: ``MARGIN`` covers them."""

    def __init__(self):
        super().__init__()
        self.live = self.peak = 0
        self.seen = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type == "cpu":
                storage = t.untyped_storage()
                key = storage.data_ptr()
                if key and key not in self.seen:
                    self.seen.add(key)
                    self.live += storage.nbytes()
                    self.peak = max(self.peak, self.live)
                    weakref.finalize(storage, self._freed, key, storage.nbytes())
        return out

    def _freed(self, key: int, nbytes: int) -> None:
        self.live -= nbytes
        self.seen.discard(key)


@torch.no_grad()
def bytes_per_pixel(generator, extra=(), device="cpu") -> float:
    """``MARGIN`` × the peak bytes of live tensors per input pixel in one pass on 128×128 inside
    ``lean_inference`` (module docstring); cached on the generator."""
    cached = getattr(generator, "_unpaired_bytes_per_pixel", None)
    if cached is not None:
        return cached
    with lean_inference(generator), LiveTensorBytes() as live:
        out = generator(torch.zeros(1, 3, PROBE, PROBE, device=device), *extra)
    generator._unpaired_attention_maps = 0 if out.attention is None else out.attention.shape[1]
    generator._unpaired_bytes_per_pixel = MARGIN * live.peak / PROBE ** 2
    return generator._unpaired_bytes_per_pixel


def one_sample(extra) -> tuple:
    """The extra inputs (the multi-domain model's labels) of a batch cut to its first sample: what the probes,
    which run on one image, take."""
    return tuple(e[:1] for e in extra)


def attention_maps(generator, extra=(), device="cpu") -> int:
    """How many full-size attention maps the generator returns (Scheme II: n, Scheme I: 1, CycleGAN and U-GAT-IT:
    0; U-GAT-IT's heatmap is at 1/4 of the size): seen in the pass of :func:`bytes_per_pixel`. ``extra``: a
    batch's or one sample's."""
    bytes_per_pixel(generator, one_sample(extra), device)
    return generator._unpaired_attention_maps


@torch.no_grad()
def receptive_halo(generator, extra=(), stride: int = 4, device="cpu") -> int:
    """The receptive-field radius + 8 px, rounded up to ``stride`` (module docstring); cached."""
    cached = getattr(generator, "_unpaired_halo", None)
    if cached is not None:
        return cached
    size = 128
    while True:
        x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device) * 2 - 1
        with GlobalStatistics(generator) as switch:
            switch.collect(switch.sites)
            generator(x, *extra)
            switch.finish()  # frozen from here on: the network is local
            base = generator(x, *extra)
            y = x.clone()
            c = size // 2
            y[..., c - 2:c + 2, c - 2:c + 2] += 0.5
            moved = generator(y, *extra)
        reach = change_reach(base, moved, c - 2, c + 1)
        if reach < c - 8 or size >= 1024:
            break
        size *= 2
    generator._unpaired_halo = stride * math.ceil((reach + 8) / stride)
    return generator._unpaired_halo


def kept_bytes(*, masks: int = 0, uint8: bool = True, batch: int = 1, padded: bool = False) -> int:
    """Bytes per image pixel of the full-size buffers made while the tiles run: the input's copy padded to the
    stride, the output image and ``masks`` attention maps (uint8 path: + the foreground and the output's PIL
    copy; float path: ``batch`` images of float32). The input itself is already in memory when the plan is
    made, so it is in the process's resident memory, not here."""
    if uint8:
        # padded copy of the H×W×3 input, canvas image, K masks + the foreground + the grey PIL copy of the one
        # being written, and the output's PIL RGB image (4 B/px)
        return 3 * padded + 3 + (masks + 2 if masks else 0) + 4
    return 4 * batch * (3 * padded + 3 + masks)  # N×3 padded input, N×3 output, N×K masks


def plan(generator, height: int, width: int, *, mode: str = "auto", budget: int = DEFAULT_MAX_MEMORY,
         masks: int = 0, uint8: bool = True, batch: int = 1, padded: bool = False, extra=(), stride: int = 4,
         device="cpu") -> Plan:
    """The plan for ``batch`` height×width images: the one place that decides (Translator, evaluate and the demo
    come here). ``masks``: attention maps kept at full size; ``uint8``: outputs kept as uint8 (Translator) or as
    float32 tensors (``run_any_size``); ``padded``: the input is copied to pad it to the stride; ``extra``: the
    batch's extra inputs (the probes take its first sample's)."""
    extra = one_sample(extra)
    if mode not in MODES:
        raise ValueError(f"--tiling {mode!r}: choose one of {', '.join(MODES)}")
    if mode == "whole":
        return Plan("whole", budget=budget)
    per_pixel = bytes_per_pixel(generator, extra, device)
    pixels = height * width * batch
    kept = kept_bytes(masks=masks, uint8=uint8, batch=batch, padded=padded) * height * width
    whole = per_pixel * pixels + 4 * (3 + 3 + masks) * pixels  # the network + its float input and outputs
    room = budget - resident_bytes()
    if whole > room:  # memory glibc kept from an earlier, larger image is not held: hand it back, look again
        release_freed_memory()
        room = budget - resident_bytes()
    if mode == "auto" and whole <= room:
        return Plan("whole", budget=budget)
    streamed, note = mode != "fast" and streamable(generator), ""
    if streamed:
        need, free = 3 * feature_bytes(generator, height, width, batch), shutil.disk_usage(tempfile.gettempdir()).free
        if need > free - DISK_SPARE:
            streamed = False
            note = (f"; no room to stream the exact mode through {tempfile.gettempdir()} ({need / 1024 ** 3:.1f} GB "
                    f"needed, {free / 1024 ** 3:.1f} GB free: set TMPDIR to a larger disk)")
    halo = decoder_halo(generator, extra, device) if streamed else receptive_halo(generator, extra, stride, device)
    release_freed_memory()  # memory freed earlier (e.g. the decoded file) but kept by glibc is not held
    held = resident_bytes()  # again: finding the halo may have grown the process
    room = max(budget - held - kept, 0)
    side = int(math.sqrt(PASS_SHARE * room / (per_pixel * batch))) if room else 0
    smallest = max(MIN_CORE, stride * math.ceil(2 * halo / stride))
    core = max(smallest, stride * ((side - 2 * halo) // stride))
    core = min(core, stride * math.ceil(max(height, width) / stride))
    tiles = math.ceil(height / core) * math.ceil(width / core)
    tile_bytes = per_pixel * batch * min(core + 2 * halo, height) * min(core + 2 * halo, width)
    preview = max(64 ** 2, int(PASS_SHARE * room / (per_pixel * batch)))
    over = max(0, int(held + kept + tile_bytes - budget))
    chosen = "exact" if mode == "exact" or streamed else "fast"
    return Plan(chosen, core, halo, tiles, min(preview, height * width), budget, kept=int(kept), over=over,
                streamed=streamed, note=note)
