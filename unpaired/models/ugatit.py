"""U-GAT-IT (Kim et al., ICLR 2020), as the official PyTorch code (znxlwm/UGATIT-pytorch) computes it.

Generator (encoder → CAM attention → AdaLIN decoder):
    c7s1-ngf, d2ngf, d4ngf (reflect pad, no bias, InstanceNorm, ReLU), n_blocks residual blocks;
    CAM head: auxiliary classifier on GAP and GMP features (cam_logit N×2), channel re-weighting,
    1×1 conv, ReLU; heatmap = channel sum;
    gamma/beta MLP: from the flattened attended features (full) or their global average (light);
    n_blocks residual blocks with AdaLIN(gamma, beta); two ×2 nearest up-samplings with conv3 + LIN + ReLU;
    c7s1-3, tanh.
Discriminator: n_layers − 1 spectral-norm convs 4×4 (stride 2, the last stride 1, LeakyReLU 0.2), the
    CAM head (spectral-norm classifiers, LeakyReLU) and a spectral-norm 4×4 conv to a patch of logits.
    Each domain has a global (7 layers, 286 px receptive field) and a local (5 layers, 70 px) one.
Losses: LSGAN on the patch logits and the CAM logits of both discriminators (weight 1), cycle L1 (10),
    identity L1 (10), generator CAM loss BCE(G_{B→A} on real B → 1, on real A → 0) (1000), and the same
    for the other direction. Each step: D update, G update, then rho of every AdaLIN/LIN clipped to [0, 1].

Where each piece is: the CAM head (auxiliary classifier, channel re-weighting, heatmap) is ``nn/cam.py``
``CAMHead``; AdaLIN and LIN (with the paper's formula, ``adalin_reference``) are ``nn/norms.py``; spectral-norm
layers ``nn/spectral.py``; the loss functions ``losses.py`` (``adversarial_loss``, ``cycle_loss``,
``identity_loss``, ``cam_loss``), combined below in ``UGATIT.discriminator_loss`` / ``generator_loss``.

Variant ``variant: tf`` (``model.variant``; default ``pytorch``): the layers of the official TensorFlow code
(taki0112/UGATIT, which made the only released U-GAT-IT weights), so its checkpoints run exactly
(``unpaired import --format ugatit-tf``): every generator conv has a bias; the encoder's instance norms are
affine; one CAM classifier with a bias (``nn/cam.py``, ``shared_fc``); the gamma/beta MLP has biases; AdaLIN and
LIN use biased variances; in the discriminator the final conv has a bias and the stride-1 convs pad by
reflection 1 top/left and 2 bottom/right (the map keeps its size). What the importer converts instead of the
model (NHWC flattening order of the MLP input, rho smoothing, spectral-norm vectors) is in ``compat/ugatit_tf.py``.

Paper mapping: G_s→t = ``generators["AtoB"]`` (official genA2B), G_t→s = ``generators["BtoA"]`` (genB2A);
``discriminators["A"]["global"]`` = disGA, ``["A"]["local"]`` = disLA, ``["B"]["global"]`` = disGB,
``["B"]["local"]`` = disLB (each judges the domain it is keyed by).

Leaner step, same mathematics: the official loop runs the generators twice per step (once for the D
update, again for the G update). They do not change in between, so ``prepare`` runs them once (batching
the inputs each generator sees: fake + identity + reconstruction), the D phase uses the detached fakes
(the official D update's generator gradients are discarded anyway), and the G phase reuses the outputs.
The D phase judges real and fake in one batch per discriminator, which costs one spectral-norm power
iteration fewer per step than the official two calls (u, v are converged after a few hundred steps).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from functools import partial
from typing import Literal, Optional

import torch
from torch import Tensor, nn

from .. import losses
from ..nn.blocks import ConvNormReLU
from ..nn.cam import CAMHead
from ..nn.norms import LIN, AdaLIN, clip_rho_
from ..nn.spectral import SNConv2d
from . import ModelSpec, register
from .base import (DIRECTIONS, DiscriminatorOutput, GeneratorOutput, LossOutput, Phase, StepContext,
                   TranslationMethod, split_batch)


@dataclass
class UGATITArgs:
    ngf: int = 64  # generator base channels (official --ch 64)
    ndf: int = 64  # discriminator base channels (official: the same --ch)
    n_blocks: int = 4  # residual blocks in the encoder and in the decoder (official --n_res 4)
    img_size: Optional[int] = None  # full: the MLP's size; follows data.crop_size (set that); light ignores it
    n_layers_global: int = 7  # global discriminator (official build_model: 7; needs img_size >= 96)
    n_layers_local: int = 5  # local discriminator (official: 5)
    variant: Literal["pytorch", "tf"] = "pytorch"  # tf: the official TensorFlow code's layers (module docstring)

    def validate(self) -> None:
        if min(self.ngf, self.ndf) < 1 or self.n_blocks < 0:
            raise ValueError("ngf and ndf must be >= 1 and n_blocks >= 0")
        if min(self.n_layers_global, self.n_layers_local) < 3:
            raise ValueError("n_layers_global and n_layers_local must be >= 3")
        if self.img_size is not None and self.img_size % 4:
            raise ValueError(f"img_size must be a multiple of 4, got {self.img_size}")
        if self.variant not in ("pytorch", "tf"):
            raise ValueError(f"variant must be pytorch or tf, got {self.variant!r}")


# ----------------------------------------------------------------------------------------------------------
# generator


def _conv(in_ch: int, out_ch: int, kernel: int, stride: int = 1, tf: bool = False) -> nn.Conv2d:
    """Reflection-padded ('same' for stride 1) convolution, without bias as every official PyTorch G conv (the TF
    code's have one). Stride 2 pads 1 on every side; TF pads top/left only, which gives the same output for even
    sizes (the extra row and column are never read)."""
    return nn.Conv2d(in_ch, out_ch, kernel, stride, padding=kernel // 2, padding_mode="reflect", bias=tf)


def _conv_in_relu(in_ch: int, out_ch: int, kernel: int, stride: int, tf: bool = False) -> nn.Sequential:
    return ConvNormReLU(_conv(in_ch, out_ch, kernel, stride, tf), nn.InstanceNorm2d(out_ch, affine=tf))


class EncoderResnetBlock(nn.Module):
    """x + [conv3, IN, ReLU, conv3, IN](x), no conv biases (TF: biases and affine norms)."""

    by_layers = True  # x + norm2(conv2(relu(norm1(conv1(x))))), 3×3: tiled inference streams it layer by layer

    def __init__(self, dim: int, tf: bool = False):
        super().__init__()
        self.conv1, self.norm1 = _conv(dim, dim, 3, tf=tf), nn.InstanceNorm2d(dim, affine=tf)
        self.conv2, self.norm2 = _conv(dim, dim, 3, tf=tf), nn.InstanceNorm2d(dim, affine=tf)

    def forward(self, x: Tensor) -> Tensor:
        y = torch.relu(self.norm1(self.conv1(x)))  # not in place: instance norm returns a view
        return x + self.norm2(self.conv2(y))


class AdaLINResnetBlock(nn.Module):
    """x + [conv3, AdaLIN(gamma, beta), ReLU, conv3, AdaLIN(gamma, beta)](x); both norms share gamma, beta."""

    by_layers = True  # x + norm2(conv2(relu(norm1(conv1(x), γ, β))), γ, β), 3×3: tiled inference streams it

    def __init__(self, dim: int, tf: bool = False):
        super().__init__()
        self.conv1, self.norm1 = _conv(dim, dim, 3, tf=tf), AdaLIN(dim, unbiased=not tf)
        self.conv2, self.norm2 = _conv(dim, dim, 3, tf=tf), AdaLIN(dim, unbiased=not tf)

    def forward(self, x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        y = torch.relu_(self.norm1(self.conv1(x), gamma, beta))
        return x + self.norm2(self.conv2(y), gamma, beta)


def _upsample_lin(in_ch: int, out_ch: int, tf: bool = False) -> nn.Sequential:
    """×2 nearest up-sampling, conv3, LIN, ReLU."""
    return nn.Sequential(OrderedDict(up=nn.Upsample(scale_factor=2, mode="nearest"),
                                     conv=_conv(in_ch, out_ch, 3, tf=tf),
                                     norm=LIN(out_ch, unbiased=not tf),
                                     act=nn.ReLU(inplace=True)))


class GammaBetaMLP(nn.Module):
    """Two bias-free (TF: with bias) Linear+ReLU layers, then one Linear each for AdaLIN's gamma and beta (N×C)."""

    def __init__(self, in_features: int, channels: int, bias: bool = False):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(in_features, channels, bias=bias), nn.ReLU(inplace=True),
                                nn.Linear(channels, channels, bias=bias), nn.ReLU(inplace=True))
        self.gamma = nn.Linear(channels, channels, bias=bias)
        self.beta = nn.Linear(channels, channels, bias=bias)

    def forward(self, x: Tensor):
        h = self.fc(x)
        return self.gamma(h), self.beta(h)


class UGATITGenerator(nn.Module):
    size_multiple = 4  # two stride-2 convolutions

    def __init__(self, ngf: int = 64, n_blocks: int = 4, img_size: int = 256, light: bool = False,
                 in_ch: int = 3, out_ch: int = 3, variant: str = "pytorch"):
        super().__init__()
        if img_size is None and not light:
            raise ValueError("full U-GAT-IT needs its img_size (model.img_size follows data.crop_size once the "
                             "settings are resolved)")
        self.light, self.img_size = light, img_size
        self.fixed_size = None if light else img_size  # the full MLP flattens an img_size/4 feature map
        self.streamable = light  # forward begins with self.encoder(x) of the image alone (tiling/stream.py)
        self.streams_decoder = light  # and goes on as below: cam (pointwise but for its logits), style, decoder blocks
        dim, tf = 4 * ngf, variant == "tf"
        self.encoder = nn.Sequential(OrderedDict(
            stem=_conv_in_relu(in_ch, ngf, 7, 1, tf),
            down1=_conv_in_relu(ngf, 2 * ngf, 3, 2, tf),
            down2=_conv_in_relu(2 * ngf, dim, 3, 2, tf),
            blocks=nn.Sequential(*[EncoderResnetBlock(dim, tf) for _ in range(n_blocks)]),
        ))
        self.cam = CAMHead(dim, shared_fc=tf)
        self.mlp = GammaBetaMLP(dim if light else dim * (img_size // 4) ** 2, dim, bias=tf)
        self.decoder = nn.ModuleList([AdaLINResnetBlock(dim, tf) for _ in range(n_blocks)])
        self.upsample = nn.Sequential(OrderedDict(
            up1=_upsample_lin(dim, 2 * ngf, tf),
            up2=_upsample_lin(2 * ngf, ngf, tf),
            head=_conv(ngf, out_ch, 7, tf=tf),
        ))

    def pool_features(self, attended: Tensor) -> Tensor:
        """The light MLP's input: each channel's global average, N×C (tiled inference replaces this method to
        give the whole image's)."""
        return attended.mean(dim=(2, 3))

    def forward(self, x: Tensor) -> GeneratorOutput:
        if self.fixed_size and tuple(x.shape[-2:]) != (self.fixed_size, self.fixed_size):
            size = self.fixed_size
            raise ValueError(f"full U-GAT-IT runs only at its training size {size}×{size}, "
                             f"got {tuple(x.shape[-2:])} (use ugatit-light for other sizes)")
        attended, cam_logit, heatmap = self.cam(self.encoder(x))
        gamma, beta = self.style(attended)
        y = attended
        for block in self.decoder:
            y = block(y, gamma, beta)
        return GeneratorOutput(image=self.to_image(y), cam_logit=cam_logit, heatmap=heatmap)

    def style(self, attended: Tensor):
        """AdaLIN's (gamma, beta), N×C each, from the MLP on the attended features (light: their global average)."""
        return self.mlp(self.pool_features(attended) if self.light else attended.flatten(1))

    def to_image(self, y: Tensor) -> Tensor:
        """The decoder blocks' output up-sampled to the image, tanh."""
        return torch.tanh(self.upsample(y))


# ----------------------------------------------------------------------------------------------------------
# discriminator


def _sn_conv(in_ch: int, out_ch: int, stride: int, bias: bool = True, tf: bool = False) -> SNConv2d:
    """Spectral-norm 4×4 convolution with reflection padding 1 (TF, stride 1: 1 top/left, 2 bottom/right)."""
    return SNConv2d(in_ch, out_ch, 4, stride, reflect_pad=(1, 2, 1, 2) if tf and stride == 1 else 1, bias=bias)


class UGATITDiscriminator(nn.Module):
    """n_layers − 1 convs (all stride 2 but the last), CAM head, a conv to one logit per patch."""

    def __init__(self, ndf: int = 64, n_layers: int = 7, in_ch: int = 3, variant: str = "pytorch"):
        super().__init__()
        tf = variant == "tf"
        widths = [in_ch] + [ndf * 2 ** i for i in range(n_layers - 1)]
        strides = [2] * (n_layers - 2) + [1]
        self.features = nn.Sequential(*[
            nn.Sequential(OrderedDict(conv=_sn_conv(widths[i], widths[i + 1], strides[i], tf=tf),
                                      act=nn.LeakyReLU(0.2, inplace=True)))
            for i in range(n_layers - 1)
        ])
        self.cam = CAMHead(widths[-1], negative_slope=0.2, spectral_norm=True, shared_fc=tf)
        self.head = _sn_conv(widths[-1], 1, 1, bias=tf, tf=tf)

    def forward(self, x: Tensor) -> DiscriminatorOutput:
        attended, cam_logit, heatmap = self.cam(self.features(x))
        return DiscriminatorOutput(logits=self.head(attended), cam_logit=cam_logit, heatmap=heatmap)


# ----------------------------------------------------------------------------------------------------------
# method


class UGATIT(TranslationMethod):
    """Two CAM/AdaLIN generators; a global and a local CAM discriminator per domain.

    ``discriminators`` is nested: ``discriminators[domain][scale]`` with scale ``"global"`` or ``"local"``.
    """

    def __init__(self, args: UGATITArgs, weights, light: bool = False) -> None:
        super().__init__()
        self.args, self.weights, self.light = args, weights, light
        self.generators = nn.ModuleDict({d: self.make_generator(args, light) for d in DIRECTIONS})
        self.discriminators = nn.ModuleDict({
            domain: nn.ModuleDict({scale: UGATITDiscriminator(args.ndf, n_layers, variant=args.variant)
                                   for scale, n_layers in (("global", args.n_layers_global),
                                                           ("local", args.n_layers_local))})
            for domain in ("A", "B")
        })

    @staticmethod
    def make_generator(args: UGATITArgs, light: bool = False) -> UGATITGenerator:
        return UGATITGenerator(ngf=args.ngf, n_blocks=args.n_blocks, img_size=args.img_size, light=light,
                               variant=args.variant)

    def phases(self):
        return [
            Phase("D", "D", ("discriminators",), self.discriminator_loss),
            Phase("G", "G", ("generators",), self.generator_loss, after_step=self.clip_rho),
        ]

    def prepare(self, ctx: StepContext) -> None:
        """Every generator output of the step, once: G(a)=fake_B, G(b)=idt_B, F(b)=fake_A, F(a)=idt_A,
        F(fake_B)=rec_A, G(fake_A)=rec_B (G = AtoB, F = BtoA)."""
        real_A, real_B = ctx.batch["A"], ctx.batch["B"]
        G, F = self.generators["AtoB"], self.generators["BtoA"]
        na, nb = real_A.shape[0], real_B.shape[0]
        fake_B, idt_B = split_batch(G(torch.cat([real_A, real_B])), (na, nb))
        fake_A, idt_A, rec_A = split_batch(F(torch.cat([real_B, real_A, fake_B.image])), (nb, na, na))
        rec_B = G(fake_A.image)
        ctx.cache.update(fake_A=fake_A, fake_B=fake_B, idt_A=idt_A, idt_B=idt_B, rec_A=rec_A, rec_B=rec_B)

    def discriminator_loss(self, ctx: StepContext) -> LossOutput:
        """Σ over domains and scales: LSGAN(D(real) → 1, D(fake) → 0) on the patch and the CAM logits."""
        mode, terms = self.weights.gan_mode, {}
        for domain in ("A", "B"):
            real, fake = ctx.batch[domain], ctx.cache[f"fake_{domain}"].image.detach()
            n = real.shape[0]
            on_real, on_fake = [], []
            for D in self.discriminators[domain].values():
                out = D(torch.cat([real, fake]))
                on_real += [out.logits[:n], out.cam_logit[:n]]
                on_fake += [out.logits[n:], out.cam_logit[n:]]
            terms[f"real_{domain}"] = losses.adversarial_loss(on_real, True, mode)
            terms[f"fake_{domain}"] = losses.adversarial_loss(on_fake, False, mode)
        total = self.weights.adv * sum(terms.values())
        return LossOutput(total=total, terms=terms)

    def generator_loss(self, ctx: StepContext) -> LossOutput:
        w, c, terms = self.weights, ctx.cache, {}
        for domain in ("A", "B"):
            real, fake, idt = ctx.batch[domain], c[f"fake_{domain}"], c[f"idt_{domain}"]
            judged = [D(fake.image) for D in self.discriminators[domain].values()]
            logits = [x for out in judged for x in (out.logits, out.cam_logit)]
            terms[f"adv_{domain}"] = losses.adversarial_loss(logits, True, w.gan_mode,
                                                             for_discriminator=False)
            terms[f"cycle_{domain}"] = losses.cycle_loss(c[f"rec_{domain}"].image, real)
            terms[f"idt_{domain}"] = losses.identity_loss(idt.image, real)
            # the generator INTO this domain must tell other-domain inputs (1) from own-domain ones (0)
            terms[f"cam_{domain}"] = (losses.cam_loss(fake.cam_logit, True)
                                      + losses.cam_loss(idt.cam_logit, False))
        total = sum(w.adv * terms[f"adv_{d}"] + w.cycle * terms[f"cycle_{d}"] + w.identity * terms[f"idt_{d}"]
                    + w.cam * terms[f"cam_{d}"] for d in ("A", "B"))
        return LossOutput(total=total, terms=terms)

    def clip_rho(self) -> None:
        clip_rho_(self.generators, 0.0, 1.0)


# official defaults (znxlwm/UGATIT-pytorch main.py, UGATIT.py build_model)
DEFAULTS = {
    "loss": {"gan_mode": "lsgan", "adv": 1.0, "cycle": 10.0, "identity": 10.0, "cam": 1000.0},
    "train": {"lr": 1e-4, "beta1": 0.5, "beta2": 0.999, "weight_decay": 1e-4, "decay_fraction": 0.5,
              "pool_size": 0, "init": "default"},
    "data": {"resize": "bilinear"},  # torchvision Resize's default (PIL bilinear)
}

for _name, _light, _summary in (
    ("ugatit", False, "U-GAT-IT full: CAM attention + AdaLIN generator (MLP tied to img_size), "
                      "global + local CAM discriminators"),
    ("ugatit-light", True, "U-GAT-IT light: gamma/beta from pooled features (any size, ~26× fewer G params)"),
):
    register(ModelSpec(name=_name, args=UGATITArgs, build=partial(UGATIT, light=_light),
                       build_generator=partial(UGATIT.make_generator, light=_light), summary=_summary,
                       defaults=DEFAULTS, size_arg=None if _light else "img_size", fixed_input=not _light))
