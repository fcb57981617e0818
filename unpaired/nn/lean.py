"""Inference in less memory: instance norms and ReLUs overwrite their input, convolutions run channels-last.

Under ``torch.no_grad()`` nothing needs a layer's input after the layer has run, yet ``nn.InstanceNorm2d`` and
``nn.ReLU()`` (kept out of place for training: see blocks.py) each allocate a new full-size tensor, and on the
CPU a contiguous (NCHW) ``ConvTranspose2d`` takes a work buffer of about twice its output (128 -> 64 channels to
512²: 817 B/px of growth and 0.27 s, channels-last 298 B/px and 0.07 s). Inside ``with lean_inference(generator):``

* every ``nn.InstanceNorm2d`` without running statistics normalises its input in place (statistics by
  ``torch.var_mean``, the biased variance as ``F.instance_norm``; affine weight and bias applied in place);
* every ``nn.ReLU`` runs in place (``inplace=True`` for the block);
* every plain ``nn.Sequential`` lets go of a padded convolution's input as soon as it is padded
  (``_sequential_forward``), so the input, its padded copy and the output are never alive at once: the
  reflection-padded 7×7 head reads the largest map (live-tensor peak at 128², ngf 64: AttentionGAN 0.743 ->
  0.626 KB/px, CycleGAN 0.610 -> 0.586, U-GAT-IT light 1.66 -> 1.36);
* on the CPU, the 4-D weights are channels-last, so every convolution (and transposed convolution) takes
  oneDNN's channels-last path and its output stays channels-last through the in-place layers: no im2col buffer,
  no layout conversion between layers.

This is safe for the generators here because each instance norm reads a fresh convolution output and each ReLU
the norm's output: no other layer reads them (tests/test_lean_inference.py compares every family's outputs
with and without, and checks the weights are restored). Outputs differ from the plain forward by float rounding
(~1e-5). Peak RSS growth of whole-image inference at 1000², ngf 64, one thread (benchmarks/lean_inference.py,
docs/benchmarks.md): AttentionGAN 1586 -> 907 MB, CycleGAN 1491 -> 937 MB, and 0.85-0.90x the time.

With gradients on it does nothing (training keeps its layers as they are). It can be nested; the weights go back
to their contiguous layout when the outermost block ends. ``Translator`` and ``run_any_size`` use it.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["lean_inference", "instance_norm_"]


def instance_norm_(x: Tensor, eps: float, weight=None, bias=None, mean=None, var=None) -> Tensor:
    """Normalise N×C×H×W ``x`` per sample and channel, in place (``mean``/``var``: N×C statistics to use instead
    of x's own, as tiled inference gives them); returns x. Its own statistics in two passes over a view of the
    pixels (the mean; then, x centred in place, the mean square, summed over ~4 MB chunks): on a channels-last
    tensor ``torch.var_mean`` over (H, W) took 4-5x as long as this."""
    n, c = x.shape[:2]
    if x.is_contiguous():
        rows, dim, shape = x.view(n, c, -1), 2, (n, c, 1)
    elif x.is_contiguous(memory_format=torch.channels_last):
        rows, dim, shape = x.permute(0, 2, 3, 1).reshape(n, -1, c), 1, (n, 1, c)
    else:
        raise ValueError(f"instance_norm_: a contiguous or channels-last tensor, got strides {x.stride()}")
    if mean is None:
        mean = rows.mean(dim=dim, keepdim=True)
        rows.sub_(mean)
        squares = sum(torch.linalg.vector_norm(chunk, dim=dim, keepdim=True).square_()
                      for chunk in rows.split(max(1, (1 << 20) // c), dim=dim))
        rows.mul_(torch.rsqrt(squares / rows.shape[dim] + eps))
    else:
        rows.sub_(mean.to(x.dtype).view(shape)).mul_(torch.rsqrt(var.to(x.dtype).view(shape) + eps))
    if weight is not None:
        rows.mul_(weight.view(shape[1:])).add_(bias.view(shape[1:]))
    return x


def _sequential_forward(sequence: nn.Sequential):
    """``nn.Sequential.forward`` that lets go of a padded convolution's input once it is padded: the padded copy
    and the convolution's output are then never alive beside it (a reflection-padded head reads the largest map)."""
    children = list(sequence)

    def forward(x: Tensor) -> Tensor:
        for m in children:
            if type(m) is nn.Conv2d and m.padding_mode != "zeros" and "forward" not in m.__dict__:
                padded = F.pad(x, m._reversed_padding_repeated_twice, mode=m.padding_mode)
                del x
                x = F.conv2d(padded, m.weight, m.bias, m.stride, 0, m.dilation, m.groups)
                del padded
            else:
                x = m(x)
        return x
    return forward


def _in_place_forward(module: nn.InstanceNorm2d):
    def forward(x: Tensor) -> Tensor:
        return instance_norm_(x, module.eps, module.weight, module.bias)
    return forward


@contextmanager
def lean_inference(generator: nn.Module) -> Iterator[nn.Module]:
    """``with lean_inference(generator):`` its forward passes in less memory (module docstring)."""
    if torch.is_grad_enabled() or getattr(generator, "_unpaired_lean", False):
        yield generator
        return
    norms = [m for m in generator.modules() if isinstance(m, nn.InstanceNorm2d) and not m.track_running_stats
             and "forward" not in m.__dict__]
    relus = [m for m in generator.modules() if isinstance(m, nn.ReLU) and not m.inplace]
    sequences = [m for m in generator.modules() if isinstance(m, nn.Sequential)
                 and type(m).forward is nn.Sequential.forward and "forward" not in m.__dict__]
    first = next(generator.parameters(), None)
    channels_last = first is not None and first.device.type == "cpu"
    generator._unpaired_lean = True
    try:
        for m in norms:
            m.forward = _in_place_forward(m)
        for m in relus:
            m.inplace = True
        for m in sequences:
            m.forward = _sequential_forward(m)
        if channels_last:
            generator.to(memory_format=torch.channels_last)
        yield generator
    finally:
        if channels_last:
            generator.to(memory_format=torch.contiguous_format)
        for m in norms + sequences:
            m.__dict__.pop("forward", None)
        for m in relus:
            m.inplace = False
        generator._unpaired_lean = False
