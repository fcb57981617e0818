"""AttentionGAN generation Scheme I's networks (Tang et al., IJCNN 2019 "AGGAN"; official ``AttentionGAN-v1/``).
Its losses and training step are in ``attentiongan.py`` (``AttentionGAN(scheme=1)``), beside Scheme II's.

The generator, as the paper's figure draws it::

    x ─► ResNet encoder ─► 2 × pixel-shuffle up-sampling ─► 4-channel head ─┬─ ch 0 → sigmoid → mask A
                                                                            └─ ch 1..3 (linear) → content C
    G(x) = C·A + x·(1 − A)

The official v1 discriminator is a global one (strided 4×4 convs without padding, BatchNorm, LeakyReLU 0.01,
global average pool, 1×1 conv → one logit per image); it needs ≥ 94 px at its official depth, so its depth
and width are arguments (``n_layers_d``, ``ndf``) defaulting to the official 64-128-256-512-512.

Losses (official ``train.py``; weights are ``loss.*`` with these defaults, ModelSpec.defaults):

* GAN: LSGAN, the two directions averaged (``loss.adv`` 0.5);
* attention TV: ``loss.tv`` 1e-6 × Σ |neighbour differences| of the mask repeated to 3 channels, SUMMED
  over batch, channels and pixels (not averaged);
* cycle ``loss.cycle`` 10; pixel ``loss.pixel`` 1: L1(G(a), a) (the output stays close to its OWN input);
  identity ``loss.identity`` 0 (computed by the official code, weighted 0);
* G total = (1 − r)·[GAN + TV] + r·[cycle + pixel + identity], r = 0.01 during the first
  ``curriculum_fraction`` of ``train.steps`` (official ``--gan_curriculum`` 10 of 200 epochs = 0.05),
  then 0.5;
* D: 0.25·Σ over both D's of [MSE(real, 1) + MSE(pool(fake), 0)] (CycleGAN's 0.5·… per D, halved).

Per step, as the official loop: the identity passes run first (G(b), F(a): with BatchNorm their batch
statistics enter the running statistics even at weight 0), then G(a), F(G(a)), F(b), G(F(b)); G step, then
D step on pooled fakes. Naming: G = ``generators["AtoB"]`` (official netG_A2B), F = ``["BtoA"]`` (netG_B2A),
``discriminators["A"]`` = netD_A (judges A), ``["B"]`` = netD_B.

Paper vs code (shared/spec/models.md §3, §8): the paper describes an attention-guided discriminator for
Scheme I, the code has none (here: ``model.discriminator=attention``, see ``attentiongan.py``); the code's
generator uses BatchNorm (paper/README style suggests instance norm, UNVERIFIED); the content C is not
tanh-bounded, so G(x) may leave [-1, 1]; the D is global, not a PatchGAN; the loss curriculum and pixel loss
are in the code only; the code's targets have shape (batch,) against D's (N,1,1,1) output — a broadcast that
does not change the value, since the targets are constant; the code leaves conv biases at PyTorch's default
initialisation (``train.init=normal`` here zeroes them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from ..nn.blocks import ResnetEncoder, make_norm
from ..nn.outputs import DiscriminatorOutput
from .base import GeneratorOutput


@dataclass
class AttentionGANS1Args:
    ngf: int = 64  # generator base channels
    ndf: int = 64  # discriminator base channels (official D: 64-128-256-512-512, hard-coded)
    n_blocks: int = 6  # official Generator() default
    n_layers_d: int = 4  # stride-2 convs of the global D (official 4; needs >= 94 px input)
    norm: Literal["batch", "instance"] = "batch"  # official: BatchNorm2d (train.py uses the default)
    discriminator: Literal["global", "attention"] = "global"  # attention: add attention-guided D's
    curriculum_fraction: float = 0.05  # --gan_curriculum 10 of --n_epochs 200
    curriculum_start_rate: float = 0.01  # --starting_rate: r while in the curriculum
    curriculum_rate: float = 0.5  # --default_rate: r afterwards

    def validate(self) -> None:
        if not 0.0 <= self.curriculum_fraction <= 1.0:
            raise ValueError(f"curriculum_fraction must be in [0, 1], got {self.curriculum_fraction}")
        for name in ("curriculum_start_rate", "curriculum_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")


class PixelShuffleUp(nn.Sequential):
    """×2 up-sampling: reflect-pad conv3×3 → norm → ReLU → 1×1 conv to 4× channels → PixelShuffle(2) →
    norm → ReLU."""

    def __init__(self, in_ch: int, out_ch: int, norm: str = "batch"):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=1, padding_mode="reflect")
        self.norm1 = make_norm(norm, out_ch)
        self.act1 = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(out_ch, 4 * out_ch, 1)
        self.shuffle = nn.PixelShuffle(2)
        self.norm2 = make_norm(norm, out_ch)
        self.act2 = nn.ReLU(inplace=True)


class AttentionGANS1Generator(nn.Module):
    """Scheme I: one network whose 4-channel head gives a sigmoid mask and a linear content image."""

    size_multiple = 4
    fixed_size = None
    streamable = True  # forward begins with self.encoder(x) of the image alone (tiling/stream.py)

    def __init__(self, ngf: int = 64, n_blocks: int = 6, norm: str = "batch"):
        super().__init__()
        self.encoder = ResnetEncoder(3, ngf, n_blocks, norm)
        self.decoder = nn.Sequential()
        self.decoder.add_module("up1", PixelShuffleUp(4 * ngf, 2 * ngf, norm))
        self.decoder.add_module("up2", PixelShuffleUp(2 * ngf, ngf, norm))
        self.decoder.add_module("head", nn.Conv2d(ngf, 4, 7, padding=3, padding_mode="reflect"))

    def forward(self, x: Tensor) -> GeneratorOutput:
        return compose_scheme1(self.decoder(self.encoder(x)), x)


def compose_scheme1(out: Tensor, x: Tensor) -> GeneratorOutput:
    """Scheme I's composition of a 4-channel head ``out``: A = sigmoid(ch 0), C = ch 1..3 (linear),
    G(x) = C·A + x·(1 − A)."""
    attention = torch.sigmoid(out[:, :1])  # N×1×H×W, 1 = take the content
    content = out[:, 1:]  # N×3×H×W, no activation (official)
    image = content * attention + x * (1 - attention)
    return GeneratorOutput(image=image, attention=attention, content=content)


class GlobalDiscriminator(nn.Module):
    """Scheme I's D: ``n_layers`` × [conv4×4 s2 (no padding), norm, LeakyReLU 0.01], conv4×4 s1, LeakyReLU,
    global average pool, 1×1 conv: one logit per image (N×1×1×1)."""

    def __init__(self, in_ch: int = 3, ndf: int = 64, n_layers: int = 4, norm: str = "batch"):
        super().__init__()
        layers, prev = [], in_ch
        for i in range(n_layers):
            ch = ndf * min(2 ** i, 8)
            layers += [nn.Conv2d(prev, ch, 4, stride=2), make_norm(norm, ch), nn.LeakyReLU(0.01, True)]
            prev = ch
        layers += [nn.Conv2d(prev, prev, 4, stride=1), nn.LeakyReLU(0.01, True),
                   nn.AdaptiveAvgPool2d(1), nn.Conv2d(prev, 1, 1)]
        self.model = nn.Sequential(*layers)
        self.n_layers = n_layers
        self.min_size = self.smallest_input(n_layers)

    @staticmethod
    def smallest_input(n_layers: int) -> int:
        """The smallest H (= W) for which every unpadded conv still has a 4×4 window (94 px for 4 layers)."""
        size = 4  # the stride-1 conv needs 4
        for _ in range(n_layers):
            size = 2 * size + 2  # inverse of (s - 4) // 2 + 1
        return size

    def forward(self, x: Tensor) -> DiscriminatorOutput:
        if min(x.shape[-2:]) < self.min_size:
            raise ValueError(f"GlobalDiscriminator with n_layers_d={self.n_layers} needs inputs of at least "
                             f"{self.min_size}×{self.min_size} px, got {tuple(x.shape[-2:])}; "
                             f"lower model.n_layers_d or raise data.crop_size")
        return DiscriminatorOutput(logits=self.model(x))


#: AttentionGAN-v1/train.py defaults
S1_DEFAULTS = {
    "loss": {"gan_mode": "lsgan", "adv": 0.5, "cycle": 10.0, "pixel": 1.0, "tv": 1e-6, "identity": 0.0},
    "train": {"lr": 1e-4, "beta1": 0.5, "beta2": 0.999, "batch_size": 1, "decay_fraction": 0.5, "pool_size": 50},
}
