"""The layers of a generator that look at the whole image, and a switch that gives them statistics from outside.

A convolutional generator is local except where it pools over the whole image: every instance norm (mean and
variance per channel), U-GAT-IT's LIN/AdaLIN (per channel and over all channels), its CAM head (global average
and global max per channel) and the light model's gamma/beta MLP input (global average per channel). Each such
place is a *site*. Inside ``GlobalStatistics(generator)`` every site can:

* collect: add the statistics of the current tile's core region to its running totals (count, mean and sum of
  squared deviations per channel in float64, combined as Chan et al.'s parallel variance; and, for the CAM
  pool, the maximum);
* be frozen: compute with given statistics (those of the whole image) instead of the tile's own;
* stop the forward pass once it has collected (``StopForward``), so a pass that only collects one site costs only
  the layers before it.

The switch replaces one attribute of each site's module for the duration of the ``with`` block and restores it
afterwards: ``forward`` of ``nn.InstanceNorm2d``, ``statistics`` of LIN/AdaLIN, ``pool`` of the CAM head and
``pool_features`` of the light U-GAT-IT generator. Outside it the models run their own code, unchanged.
BatchNorm in eval mode (and an instance norm using running statistics) is local and no site.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import torch
from torch import Tensor, nn

from ..nn.cam import CAMHead
from ..nn.lean import instance_norm_
from ..nn.norms import LIN, AdaLIN

__all__ = ["GlobalStatistics", "StopForward", "Region"]


class StopForward(Exception):
    """Raised by a site set to stop: the rest of the forward pass is not needed."""


@dataclass
class Region:
    """The current tile's core (rows top:bottom, columns left:right) in input pixels, relative to the tile,
    and the tile's input height: a site at another resolution scales the core by its own height."""

    top: int
    bottom: int
    left: int
    right: int
    height: int

    def crop(self, x: Tensor) -> Tensor:
        scale = self.height // x.shape[-2]
        if scale * x.shape[-2] != self.height or any(v % scale for v in (self.top, self.bottom, self.left, self.right)):
            raise RuntimeError(f"tile core {self} does not map onto a {tuple(x.shape[-2:])} feature map")
        return x[..., self.top // scale:self.bottom // scale, self.left // scale:self.right // scale]


def var_mean_hw(x: Tensor) -> Tuple[Tensor, Tensor]:
    """(biased variance, mean) over (H, W) per (sample, channel), N×C. A contiguous or channels-last tensor in two
    passes over a view of its pixels (the mean, then the norm of the centred pixels in ~4 MB chunks): on a
    channels-last 256 × 250² tensor 28 ms against 106 ms for ``torch.var_mean`` (one thread); others (a tile's
    core, a view) are copied channels-last first."""
    n, c = x.shape[:2]
    if x.is_contiguous(memory_format=torch.channels_last):
        rows, dim = x.permute(0, 2, 3, 1).reshape(n, -1, c), 1
    elif x.is_contiguous():
        rows, dim = x.reshape(n, c, -1), 2
    else:  # a tile's core cut from its output: copied channels-last (a copy and the fast path: 3x as fast)
        return var_mean_hw(x.contiguous(memory_format=torch.channels_last))
    mean = rows.mean(dim=dim, keepdim=True)
    squares = sum(torch.linalg.vector_norm(part - mean, dim=dim, keepdim=True).square_()
                  for part in rows.split(max(1, (1 << 20) // c), dim=dim))
    return (squares / rows.shape[dim]).view(n, c), mean.view(n, c)


class Totals:
    """Per (sample, channel): count, mean, sum of squared deviations (float64) and, where ``maxima`` (the CAM
    head's global max pooling), max, over the tiles added."""

    def __init__(self, maxima: bool = False):
        self.count, self.mean, self.m2, self.max, self.maxima = 0, None, None, None, maxima

    def add(self, x: Tensor) -> None:
        n = x.shape[-2] * x.shape[-1]
        if n == 0:
            return
        var, mean = var_mean_hw(x.float())
        mean, m2 = mean.double(), var.double() * n
        top = x.amax(dim=(2, 3)).double() if self.maxima else None  # 10% of a streamed run where not needed
        if self.mean is None:
            self.count, self.mean, self.m2, self.max = n, mean, m2, top
            return
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta * delta * (self.count * n / total)
        self.max = torch.maximum(self.max, top) if self.maxima else None
        self.count = total


class Site:
    """One global-statistics layer: ``attr`` of ``module`` is replaced while the switch is on."""

    attr = "forward"
    maxima = False  # whether its statistics include the maximum (Totals)

    def __init__(self, module: nn.Module, switch: "GlobalStatistics"):
        self.module, self.switch = module, switch
        self.stats = None  # the whole image's statistics, as ``frozen`` takes them; None: compute its own
        self.totals: Optional[Totals] = None  # collecting into these when not None
        self.stop = False
        self.previous = None

    def install(self) -> None:
        original = getattr(self.module, self.attr)
        self.previous = self.module.__dict__.get(self.attr)  # an instance-level override (lean_inference's)

        def call(*args):
            if self.totals is not None:
                self.totals.add(self.switch.region.crop(args[0]) if self.switch.region else args[0])
            if self.stop:  # the pass was for these statistics: nothing after them is needed
                raise StopForward
            return original(*args) if self.stats is None else self.frozen(*args)

        setattr(self.module, self.attr, call)

    def remove(self) -> None:
        if self.previous is None:
            self.module.__dict__.pop(self.attr, None)
        else:
            setattr(self.module, self.attr, self.previous)

    def finish(self) -> None:
        """The totals collected become the statistics."""
        self.stats, self.totals = self.finalise(self.totals), None

    def finalise(self, t: Totals):
        raise NotImplementedError

    def frozen(self, *args):
        raise NotImplementedError


def _f32(t: Tensor, x: Tensor) -> Tensor:
    return t.to(x.dtype)[:, :, None, None]


class InstanceNormSite(Site):
    def finalise(self, t: Totals):
        return t.mean, t.m2 / t.count  # the biased variance, as F.instance_norm

    def frozen(self, x: Tensor) -> Tensor:
        mean, var = self.stats
        m = self.module
        if self.previous is not None:  # the module runs in place (lean_inference): so do its frozen statistics
            return instance_norm_(x, m.eps, m.weight, m.bias, mean, var)
        y = (x - _f32(mean, x)) * _f32(torch.rsqrt(var + m.eps), x)
        if m.affine:
            y = y * m.weight[:, None, None] + m.bias[:, None, None]
        return y


class LayerInstanceSite(Site):
    attr = "statistics"

    def finalise(self, t: Totals):
        c = 1 if self.module.unbiased else 0
        ln_mean = t.mean.mean(dim=1, keepdim=True)  # every channel has the same count
        ln_m2 = t.m2.sum(dim=1, keepdim=True) + t.count * ((t.mean - ln_mean) ** 2).sum(dim=1, keepdim=True)
        return t.mean, t.m2 / (t.count - c), ln_mean, ln_m2 / (t.count * t.mean.shape[1] - c)

    def frozen(self, x: Tensor):
        return tuple(_f32(s, x) for s in self.stats)


class CAMPoolSite(Site):
    attr = "pool"
    maxima = True

    def finalise(self, t: Totals):
        return t.mean, t.max

    def frozen(self, features: Tensor) -> Tuple[Tensor, Tensor]:
        return tuple(s.to(features.dtype) for s in self.stats)


class MeanPoolSite(Site):
    attr = "pool_features"

    def finalise(self, t: Totals):
        return t.mean

    def frozen(self, features: Tensor) -> Tensor:
        return self.stats.to(features.dtype)


def _site_kind(module: nn.Module) -> Optional[Callable]:
    if isinstance(module, nn.InstanceNorm2d):
        return None if (module.track_running_stats and not module.training) else InstanceNormSite
    if isinstance(module, (LIN, AdaLIN)):
        return LayerInstanceSite
    if isinstance(module, CAMHead):
        return CAMPoolSite
    if getattr(module, "light", False) and hasattr(module, "pool_features"):
        return MeanPoolSite
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.training:
        raise ValueError("tiled inference needs BatchNorm in eval mode (its batch statistics are global)")
    return None


class GlobalStatistics:
    """``with GlobalStatistics(generator) as g:`` the generator's sites, switchable (module docstring)."""

    def __init__(self, generator: nn.Module, exclude: Optional[nn.Module] = None):
        if getattr(generator, "fixed_size", None):
            raise ValueError("a generator tied to one input size (full U-GAT-IT) is resized, not tiled")
        self.sites: List[Site] = []
        skipped = set(exclude.modules()) if exclude is not None else set()
        for module in generator.modules():
            if module in skipped:
                continue
            kind = _site_kind(module)
            if kind is not None:
                self.sites.append(kind(module, self))
        self.region: Optional[Region] = None

    def __enter__(self) -> "GlobalStatistics":
        for site in self.sites:
            site.install()
        return self

    def __exit__(self, *exc) -> None:
        for site in self.sites:
            site.remove()

    @property
    def pending(self) -> List[Site]:
        return [s for s in self.sites if s.stats is None]

    def collect(self, sites, stop: bool = False) -> None:
        """``sites`` start collecting (each stops the pass once it has collected, when ``stop``)."""
        for site in sites:
            site.totals, site.stop = Totals(site.maxima), stop

    def finish(self) -> List[Site]:
        """Every site that collected anything takes its totals as statistics; returns them."""
        done = [s for s in self.sites if s.totals is not None and s.totals.mean is not None]
        for site in self.sites:
            if site in done:
                site.finish()
            site.totals, site.stop = None, False
        return done
