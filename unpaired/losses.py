"""Loss terms as pure functions of tensors. Each returns a scalar mean unless it says otherwise."""

from __future__ import annotations

from typing import Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor

Logits = Union[Tensor, Sequence[Tensor]]

ADVERSARIAL_MODES = ("lsgan", "vanilla", "hinge", "wgan")


def adversarial_loss(logits: Logits, real: bool, mode: str = "lsgan", *, for_discriminator: bool = True) -> Tensor:
    """GAN loss of ``logits`` judged against the target ``real``; a list of logits (several discriminators,
    CAM heads) gives the sum of each one's mean.

    lsgan:   MSE to 1 (real) or 0 (fake).  vanilla: BCE-with-logits to 1/0.
    hinge:   D: mean(relu(1 - x)) / mean(relu(1 + x)); G (``for_discriminator=False``): -mean(x).
    wgan:    -mean(x) for real, mean(x) for fake.
    """
    if not isinstance(logits, Tensor):
        return sum(adversarial_loss(x, real, mode, for_discriminator=for_discriminator) for x in logits)
    x = logits.float()
    if mode == "lsgan":
        return F.mse_loss(x, torch.full_like(x, 1.0 if real else 0.0))
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(x, torch.full_like(x, 1.0 if real else 0.0))
    if mode == "hinge":
        if not for_discriminator:
            return -x.mean()
        return F.relu(1.0 - x).mean() if real else F.relu(1.0 + x).mean()
    if mode == "wgan":
        return -x.mean() if real else x.mean()
    raise ValueError(f"unknown adversarial mode {mode!r}; choose one of {', '.join(ADVERSARIAL_MODES)}")


def cycle_loss(reconstruction: Tensor, original: Tensor) -> Tensor:
    """L1 between x and F(G(x))."""
    return F.l1_loss(reconstruction, original)


def identity_loss(same_domain_output: Tensor, original: Tensor) -> Tensor:
    """L1 between y and G(y): a generator fed its own target domain should change nothing."""
    return F.l1_loss(same_domain_output, original)


def cam_loss(logits: Tensor, is_source: bool) -> Tensor:
    """U-GAT-IT auxiliary-classifier loss of a generator: BCE-with-logits against 1 (the image comes from
    the domain being translated) or 0 (it already belongs to the target domain)."""
    x = logits.float()
    return F.binary_cross_entropy_with_logits(x, torch.full_like(x, 1.0 if is_source else 0.0))


def total_variation(mask: Tensor) -> Tensor:
    """Summed (not averaged) absolute differences between neighbouring pixels of ``mask`` (N×C×H×W),
    as AttentionGAN Scheme I's attention regulariser."""
    dx = (mask[:, :, :, 1:] - mask[:, :, :, :-1]).abs().sum()
    dy = (mask[:, :, 1:, :] - mask[:, :, :-1, :]).abs().sum()
    return dx + dy


def mask_sparsity(foreground: Tensor) -> Tensor:
    """Mean of a foreground mask (N×1×H×W in [0, 1]): the share of the image a generator rewrites. As a loss,
    an L1 prior that keeps the input wherever the translation does not need to change it."""
    return foreground.mean()


def mask_smoothness(foreground: Tensor) -> Tensor:
    """Mean absolute difference of horizontally and vertically neighbouring mask values (total variation
    per pixel, so its weight does not depend on the image size)."""
    return ((foreground[..., :, 1:] - foreground[..., :, :-1]).abs().mean()
            + (foreground[..., 1:, :] - foreground[..., :-1, :]).abs().mean())


def gradient_penalty(critic_output: Tensor, inputs: Tensor) -> Tensor:
    """WGAN-GP: mean((‖∇_x D(x)‖₂ − 1)²) over the batch; ``inputs`` must require grad."""
    (grad,) = torch.autograd.grad(critic_output.sum(), inputs, create_graph=True)
    norm = grad.flatten(1).norm(2, dim=1)
    return ((norm - 1.0) ** 2).mean()


def classification_loss(logits: Tensor, target: Tensor, multi_label: bool) -> Tensor:
    """Domain classification: cross-entropy over exclusive domains (``target`` = class indices), or
    BCE-with-logits summed over attributes and averaged over the batch (``target`` = 0/1 float labels)."""
    if multi_label:
        return F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / logits.shape[0]
    return F.cross_entropy(logits, target)
