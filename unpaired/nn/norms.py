"""U-GAT-IT's normalisations, with the paper's names: LIN (Layer-Instance Normalisation, up-sampling blocks)
and AdaLIN (Adaptive LIN, decoder residual blocks; the official code calls them ILN and adaILN).

Both mix instance-norm and layer-norm statistics with a learned per-channel ratio rho (paper eq. in §2.1.1;
``adalin_reference`` below is that formula, line by line):

    a_I = (x - mu_I) / sqrt(var_I + eps),   a_L = (x - mu_L) / sqrt(var_L + eps)
    AdaLIN(x, gamma, beta) = gamma * (rho * a_I + (1 - rho) * a_L) + beta

exactly as the official PyTorch code (znxlwm/UGATIT-pytorch ``networks.py``): mu_I, var_I over (H, W) per
(sample, channel); mu_L, var_L over (C, H, W) per sample; **unbiased** variances (``torch.var``'s default,
÷(n−1)); eps 1e-5. AdaLIN takes gamma, beta (N×C) from the generator's MLP and starts with rho = 0.9;
LIN owns gamma (1), beta (0) and starts with rho = 0. rho is clipped to [0, 1] after every generator
update (:func:`clip_rho_`).

Implementation note: since every statistic is per (sample, channel), the whole mix folds into one
per-channel affine map ``x * scale + shift`` (``layer_instance_norm``); only ``x`` and N×C×1×1 tensors are kept
for backward, where the literal formula keeps about eight full-size intermediates. ``tests/test_nn.py`` checks
that the two agree.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["adalin_reference", "layer_instance_norm", "layer_instance_norm_with", "lin_statistics", "LIN", "AdaLIN", "clip_rho_"]


def adalin_reference(x: Tensor, rho: Tensor, gamma: Tensor, beta: Tensor, eps: float = 1e-5) -> Tensor:
    """The paper's formula as written (slow; the reference for ``layer_instance_norm``)."""
    mu_I, var_I = x.mean(dim=(2, 3), keepdim=True), x.var(dim=(2, 3), keepdim=True)  # instance statistics
    mu_L, var_L = x.mean(dim=(1, 2, 3), keepdim=True), x.var(dim=(1, 2, 3), keepdim=True)  # layer statistics
    a_I = (x - mu_I) / torch.sqrt(var_I + eps)
    a_L = (x - mu_L) / torch.sqrt(var_L + eps)
    return gamma * (rho * a_I + (1 - rho) * a_L) + beta


def layer_instance_norm(x: Tensor, rho: Tensor, gamma: Tensor, beta: Tensor, eps: float = 1e-5,
                        unbiased: bool = True) -> Tensor:
    """gamma·(rho·IN(x) + (1−rho)·LN(x)) + beta with unbiased variances (``unbiased=False``: biased ones, as
    the official TensorFlow code's ``tf.nn.moments``).

    x: N×C×H×W; rho: 1×C×1×1; gamma, beta: N×C×1×1 or 1×C×1×1.
    """
    return layer_instance_norm_with(x, rho, gamma, beta, eps, *lin_statistics(x, unbiased))


def lin_statistics(x: Tensor, unbiased: bool = True):
    """(instance mean, instance variance, layer mean, layer variance) of x, keepdim (N×C×1×1, N×1×1×1)."""
    correction = 1 if unbiased else 0
    in_var, in_mean = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=correction)
    ln_var, ln_mean = torch.var_mean(x, dim=(1, 2, 3), keepdim=True, correction=correction)
    return in_mean, in_var, ln_mean, ln_var


def layer_instance_norm_with(x: Tensor, rho: Tensor, gamma: Tensor, beta: Tensor, eps: float, in_mean: Tensor,
                             in_var: Tensor, ln_mean: Tensor, ln_var: Tensor) -> Tensor:
    """``layer_instance_norm`` with given statistics (``lin_statistics``'s four; tiled inference gives those of
    the whole image)."""
    in_inv = torch.rsqrt(in_var + eps)
    ln_inv = torch.rsqrt(ln_var + eps)
    scale = rho * in_inv + (1 - rho) * ln_inv  # N×C×1×1
    shift = rho * (in_mean * in_inv) + (1 - rho) * (ln_mean * ln_inv)
    return torch.addcmul(beta - shift * gamma, x, scale * gamma)


class AdaLIN(nn.Module):
    """Adaptive Layer-Instance Normalisation: gamma, beta come from outside (N×C), rho is learned."""

    def __init__(self, channels: int, eps: float = 1e-5, rho_init: float = 0.9, unbiased: bool = True):
        super().__init__()
        self.eps, self.unbiased = eps, unbiased
        self.rho = nn.Parameter(torch.full((1, channels, 1, 1), float(rho_init)))

    def forward(self, x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        return layer_instance_norm_with(x, self.rho, gamma[:, :, None, None], beta[:, :, None, None], self.eps,
                                        *self.statistics(x))

    def statistics(self, x: Tensor):
        """``lin_statistics`` of x (tiled inference replaces this method to give the whole image's)."""
        return lin_statistics(x, self.unbiased)

    def extra_repr(self) -> str:
        return f"{self.rho.shape[1]}, eps={self.eps}" + ("" if self.unbiased else ", biased variance")


class LIN(nn.Module):
    """Layer-Instance Normalisation with its own affine parameters (gamma 1, beta 0, rho 0 at init)."""

    def __init__(self, channels: int, eps: float = 1e-5, rho_init: float = 0.0, unbiased: bool = True):
        super().__init__()
        self.eps, self.unbiased = eps, unbiased
        self.rho = nn.Parameter(torch.full((1, channels, 1, 1), float(rho_init)))
        self.gamma = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return layer_instance_norm_with(x, self.rho, self.gamma, self.beta, self.eps, *self.statistics(x))

    def statistics(self, x: Tensor):
        """``lin_statistics`` of x (tiled inference replaces this method to give the whole image's)."""
        return lin_statistics(x, self.unbiased)

    def extra_repr(self) -> str:
        return f"{self.rho.shape[1]}, eps={self.eps}" + ("" if self.unbiased else ", biased variance")


@torch.no_grad()
def clip_rho_(module: nn.Module, lo: float = 0.0, hi: float = 1.0) -> None:
    """Clamp, in place, every AdaLIN/LIN ``rho`` inside ``module`` to [lo, hi] (the official RhoClipper)."""
    for m in module.modules():
        rho = getattr(m, "rho", None)
        if isinstance(rho, torch.Tensor):
            rho.clamp_(lo, hi)
