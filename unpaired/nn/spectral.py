"""Spectral-normalised convolution and linear layers (Miyato et al., 2018), numerically the same as
``torch.nn.utils.spectral_norm`` with its defaults (one power iteration per training-mode forward,
eps 1e-12, the same ``weight_orig`` / ``weight_u`` / ``weight_v`` state-dict entries):

    train mode:  v ← normalize(Wᵀu), u ← normalize(W v)   (in place, no gradient)
    sigma = uᵀ W v   (gradient flows into W through sigma; u, v are constants)
    y = layer(x; W / sigma)

Since a convolution or a linear map is linear in its weight, layer(x; W / sigma) = layer(x; W) / sigma.
These layers divide the (small) output instead of the (large) weight: a deep discriminator layer at
64 px has a 1024×512×4×4 weight but a 1024×3×3 output, so this skips two weight-sized passes forward
and three backward. ``weight`` is an alias of the raw ``weight_orig`` parameter, so weight initialisers
(``unpaired.nn.init``) reach it.
"""

from __future__ import annotations

from typing import Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SNConv2d", "SNLinear"]


class _SpectralNormed(nn.Module):
    eps = 1e-12

    def _register_weight(self, weight: Tensor) -> None:
        self.weight_orig = nn.Parameter(weight.detach().clone())
        with torch.no_grad():
            u = F.normalize(weight.new_empty(weight.shape[0]).normal_(0, 1), dim=0, eps=self.eps)
            v = F.normalize(weight.new_empty(weight[0].numel()).normal_(0, 1), dim=0, eps=self.eps)
        self.register_buffer("weight_u", u)
        self.register_buffer("weight_v", v)

    @property
    def weight(self) -> nn.Parameter:
        """The raw, un-normalised weight (``weight_orig``)."""
        return self.weight_orig

    def sigma(self) -> Tensor:
        """The spectral-norm estimate uᵀWv, after one power iteration in training mode."""
        w = self.weight_orig.flatten(1)
        u, v = self.weight_u, self.weight_v
        if self.training:
            with torch.no_grad():
                F.normalize(torch.mv(w.t(), u), dim=0, eps=self.eps, out=v)
                F.normalize(torch.mv(w, v), dim=0, eps=self.eps, out=u)
            u, v = u.clone(), v.clone()  # autograd keeps these; the buffers change at the next call
        return torch.dot(u, torch.mv(w, v))


class SNConv2d(_SpectralNormed):
    """Conv2d(in_ch, out_ch, kernel, stride, bias) with optional reflection padding, spectral-normalised.
    ``reflect_pad``: one int for every side, or (left, right, top, bottom) as ``F.pad`` takes it."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, *,
                 reflect_pad: Union[int, Tuple[int, int, int, int]] = 0, bias: bool = True):
        super().__init__()
        conv = nn.Conv2d(in_ch, out_ch, kernel, stride, bias=bias)  # PyTorch's default initialisation
        self.stride, self.reflect_pad = stride, reflect_pad
        self.bias = conv.bias
        self._register_weight(conv.weight)

    def forward(self, x: Tensor) -> Tensor:
        if self.reflect_pad:
            pad = self.reflect_pad if isinstance(self.reflect_pad, tuple) else (self.reflect_pad,) * 4
            x = F.pad(x, pad, mode="reflect")
        y = F.conv2d(x, self.weight_orig, None, self.stride) / self.sigma()
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        out_ch, in_ch, k, _ = self.weight_orig.shape
        return f"{in_ch}, {out_ch}, kernel={k}, stride={self.stride}, reflect_pad={self.reflect_pad}, " \
               f"bias={self.bias is not None}"


class SNLinear(_SpectralNormed):
    """Linear(in_features, out_features, bias), spectral-normalised."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        linear = nn.Linear(in_features, out_features, bias=bias)
        self.bias = linear.bias
        self._register_weight(linear.weight)

    def forward(self, x: Tensor) -> Tensor:
        y = F.linear(x, self.weight_orig) / self.sigma()
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return f"{self.weight_orig.shape[1]}, {self.weight_orig.shape[0]}, bias={self.bias is not None}"
