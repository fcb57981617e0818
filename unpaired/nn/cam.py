"""The class-activation-map (CAM) attention head U-GAT-IT puts in its generators and discriminators.

Given a feature map E (N×C×h×w), an auxiliary classifier scores the globally average-pooled and the
globally max-pooled features with two separate bias-free linear layers (``gap_fc``, ``gmp_fc``): their
outputs, concatenated, are ``cam_logit`` (N×2, GAP then GMP). The classifier weights then re-weight the
channels of E, and a 1×1 convolution mixes the two re-weighted copies back to C channels:

    a = act(conv1x1(concat(E · w_gap, E · w_gmp)))        heatmap = Σ_c a   (N×1×h×w)

Official quirk kept on purpose (models.md §5.2): under spectral norm (the discriminators) the logits use
the normalised weight while the channel weighting uses the raw ``weight_orig``.

Official TensorFlow variant (``shared_fc=True``; taki0112/UGATIT ``fully_connected_with_w``): ONE classifier
``fc`` with a bias scores both pooled vectors (``logit = pool · w + b``) and the channel weights are ``w + b``
(so both re-weighted copies are equal); under spectral norm ``w`` is the normalised weight.

Implementation note: concat-then-1×1-conv equals one 1×1 conv of E with the folded kernel
``W[:, :C]·w_gap + W[:, C:]·w_gmp``; folding halves that convolution and skips the 2C-channel tensor.
"""

from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .spectral import SNLinear

__all__ = ["CAMHead"]


class CAMHead(nn.Module):
    def __init__(self, channels: int, *, negative_slope: float = 0.0, spectral_norm: bool = False,
                 shared_fc: bool = False):
        """channels: C of the feature map. negative_slope: 0 → ReLU (generator), 0.2 → LeakyReLU
        (discriminator). spectral_norm: wrap the classifier layer(s) (the discriminator's). shared_fc: one
        classifier ``fc`` with a bias for both poolings (the official TensorFlow code) instead of two."""
        super().__init__()
        linear = SNLinear if spectral_norm else nn.Linear
        self.shared_fc = shared_fc
        if shared_fc:
            self.fc = linear(channels, 1, bias=True)
        else:
            self.gap_fc = linear(channels, 1, bias=False)
            self.gmp_fc = linear(channels, 1, bias=False)
        self.conv1x1 = nn.Conv2d(2 * channels, channels, 1, bias=True)
        self.negative_slope = negative_slope

    @staticmethod
    def channel_weight(fc: nn.Linear) -> Tensor:
        """The 1×C channel weights: ``weight_orig`` under spectral norm (the official quirk)."""
        return fc.weight_orig if hasattr(fc, "weight_orig") else fc.weight

    def pool(self, features: Tensor) -> Tuple[Tensor, Tensor]:
        """(global average, global max) of each channel, N×C each (tiled inference replaces this method to give
        the whole image's)."""
        return features.mean(dim=(2, 3)), F.adaptive_max_pool2d(features, 1).flatten(1)

    def forward(self, features: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """-> (attended features N×C×h×w, cam_logit N×2, heatmap N×1×h×w)."""
        gap, gmp = self.pool(features)
        c = features.shape[1]
        kernel = self.conv1x1.weight  # C × 2C × 1 × 1
        if self.shared_fc:
            fc = self.fc
            w = fc.weight_orig / fc.sigma() if hasattr(fc, "weight_orig") else fc.weight  # 1×C
            gap_logit, gmp_logit = F.linear(gap, w, fc.bias), F.linear(gmp, w, fc.bias)
            weight = (w + fc.bias[:, None])[:, :, None, None]
            folded = kernel[:, :c] * weight + kernel[:, c:] * weight
        else:
            gap_logit, gmp_logit = self.gap_fc(gap), self.gmp_fc(gmp)
            folded = (kernel[:, :c] * self.channel_weight(self.gap_fc)[:, :, None, None]
                      + kernel[:, c:] * self.channel_weight(self.gmp_fc)[:, :, None, None])
        x = F.conv2d(features, folded, self.conv1x1.bias)
        if self.negative_slope:
            x = F.leaky_relu(x, self.negative_slope, inplace=True)
        else:
            x = F.relu(x, inplace=True)
        return x, torch.cat([gap_logit, gmp_logit], dim=1), x.sum(dim=1, keepdim=True)
