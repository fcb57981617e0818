"""Multi-domain translation with one generator: StarGAN (Choi et al., CVPR 2018) and the multi-domain
AttentionGAN (official ``AttentionGAN-v1-multi/``: StarGAN with AttentionGAN's Scheme I head).

The generator, as the paper's figure draws it::

    x ──┐
        ├─ concat ─► c7s1-64 ─► d128 ─► d256 ─► n_blocks × R256 ─► u128 ─► u64 ─► c7s1 head
    c ──┘ (the target label, tiled to H×W)
    head, ``attention=scheme1`` (AttentionGAN):  A = sigmoid(ch 0), C = ch 1..3,  G(x, c) = C·A + x·(1 − A)
    head, ``attention=none``    (StarGAN):       G(x, c) = tanh(head)
    head, ``attention=scheme2`` (ours, option):  n_masks softmax masks over n−1 tanh contents + the input

Convolutions have no bias, padding is zero padding, down-sampling uses 4×4 stride-2 convs and up-sampling
4×4 stride-2 transposed convs; every norm is an affine instance norm with per-instance statistics (the
official code keeps running statistics but never uses them: its test never calls ``eval()``).

The discriminator: ``n_layers_d`` × [conv4×4 s2 (bias), LeakyReLU 0.01] (64, 128, … channels, doubling),
then two heads: ``src`` = conv3×3 → the real/fake map, ``cls`` = a conv as large as the remaining map
(image_size / 2^n_layers_d) → N×c_dim domain logits. It therefore takes images of exactly ``image_size``.

Losses (official ``solver.train``; weights are ``loss.*``, official values as ModelSpec.defaults):

* D: −mean D_src(x) + mean D_src(G(x, c')) + ``loss.cls``·cls(D_cls(x), c) + ``loss.gp``·GP, where GP =
  mean((‖∇ D_src(x̂)‖₂ − 1)²) at x̂ = αx + (1 − α)G(x, c'), α ~ U(0, 1) per image (WGAN-GP);
* G, every ``n_critic`` D steps: −mean D_src(G(x, c')) + ``loss.cycle``·|x − G(G(x, c'), c)|₁ +
  ``loss.cls``·cls(D_cls(G(x, c')), c');
* cls = cross-entropy over exclusive domains (RaFD; ``multi_label=false``) or BCE-with-logits summed over
  attributes and averaged over the batch (CelebA; ``multi_label=true``);
* the target labels c' are the labels of a random permutation of the batch (official), drawn from a
  generator seeded by (train.seed, step) so that a resumed run draws the same ones; the G step reuses the
  fakes of the D step (G has not changed in between, so they equal the official re-computed ones).

Paper vs code (shared/spec/models.md §4, §8): no attention TV or pixel loss in the multi-domain code; the
official "decay" lowers the lr by only 0.1 % in total (here: constant, ``train.decay_fraction=0``); with
batch 1 the permutation is the identity, so every target is the image's own label (as in the official code).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import List, Literal, Optional

import torch
from torch import Tensor, nn

from .. import losses
from ..nn.blocks import ConvNormReLU
from ..nn.outputs import DiscriminatorOutput
from . import ModelSpec, register
from .attentiongan import compose_scheme2
from .attentiongan_s1 import compose_scheme1
from .base import MULTI, GeneratorOutput, LossOutput, Phase, StepContext, TranslationMethod, to_unit

_STREAM_TARGET, _STREAM_GP = 1, 2  # ctx.rng streams


@dataclass
class MultiDomainArgs:
    domains: str = ""  # comma-separated names in label order; "" = every domain of the data, sorted
    c_dim: int = 5  # label length; follows model.domains when that is set (official default 5)
    multi_label: bool = False  # false: exclusive domains, one-hot, cross-entropy (RaFD); true: attributes, BCE
    attention: Literal["scheme1", "scheme2", "none"] = "scheme1"  # official multi AttentionGAN: scheme1
    n_masks: int = 10  # scheme2 only: n−1 content images + the input, mixed by n softmax masks
    ngf: int = 64  # official g_conv_dim 64
    n_blocks: int = 6  # official g_repeat_num 6
    ndf: int = 64  # official d_conv_dim 64
    n_layers_d: int = 6  # official d_repeat_num 6
    image_size: Optional[int] = None  # the D's classifier size; follows data.crop_size (set that); official 128
    n_critic: int = 5  # one G step every n_critic D steps (official 5)

    def domain_names(self) -> List[str]:
        return split_names(self.domains) or [f"domain{i}" for i in range(self.c_dim)]

    def validate(self) -> None:
        """Checks the settings; ``c_dim`` is set to the number of ``domains`` when those are named."""
        names = split_names(self.domains)
        if len(set(names)) != len(names):
            raise ValueError(f"domains {self.domains!r} names a domain twice")
        if names:
            self.c_dim = len(names)
        if self.c_dim < 1 or self.n_critic < 1 or self.n_layers_d < 1:
            raise ValueError("c_dim, n_critic and n_layers_d must be at least 1")
        if self.image_size is not None and self.image_size % 2 ** self.n_layers_d:
            raise ValueError(f"image_size {self.image_size} must be a multiple of 2^n_layers_d "
                             f"= {2 ** self.n_layers_d}")
        if self.attention == "scheme2" and self.n_masks < 2:
            raise ValueError(f"n_masks must be at least 2 (foreground + background), got {self.n_masks}")


def split_names(text: Optional[str]) -> List[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]``: the one parser of comma-separated domain names."""
    return [name.strip() for name in (text or "").split(",") if name.strip()]


@dataclass
class StarGANArgs(MultiDomainArgs):
    attention: Literal["scheme1", "scheme2", "none"] = "none"  # StarGAN: tanh output, no attention


def conv_in_relu(in_ch: int, out_ch: int, kernel: int, stride: int, padding: int, transposed: bool = False):
    """StarGAN's block: conv (no bias, zero padding; 4×4 transposed: no output padding) → affine instance norm
    (per-instance statistics) → ReLU."""
    layer = (nn.ConvTranspose2d if transposed else nn.Conv2d)(in_ch, out_ch, kernel, stride, padding, bias=False)
    return ConvNormReLU(layer, nn.InstanceNorm2d(out_ch, affine=True))


class ResidualBlock(nn.Module):
    """StarGAN's block: x + [conv3×3, IN, ReLU, conv3×3, IN](x), zero padding, no bias."""

    by_layers = True  # x + norm2(conv2(relu(norm1(conv1(x))))), 3×3: tiled inference streams it layer by layer

    def __init__(self, dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, 3, padding=1, bias=False)
        self.norm1 = nn.InstanceNorm2d(dim, affine=True)
        self.act = nn.ReLU()
        self.conv2 = nn.Conv2d(dim, dim, 3, padding=1, bias=False)
        self.norm2 = nn.InstanceNorm2d(dim, affine=True)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.norm2(self.conv2(self.act(self.norm1(self.conv1(x)))))


class MultiDomainGenerator(nn.Module):
    """G(x, c): the image and the target label c (N×c_dim, one-hot or multi-hot) tiled as extra channels."""

    size_multiple = 4  # two stride-2 convolutions
    fixed_size = None
    streamable = True  # forward begins with self.encoder(self.encoder_input(x, c)) (tiling/stream.py)

    def __init__(self, c_dim: int = 5, ngf: int = 64, n_blocks: int = 6, attention: str = "scheme1",
                 n_masks: int = 10):
        super().__init__()
        self.c_dim, self.attention, self.n_masks = c_dim, attention, n_masks
        self.encoder = nn.Sequential(OrderedDict(
            stem=conv_in_relu(3 + c_dim, ngf, 7, 1, 3),
            down1=conv_in_relu(ngf, 2 * ngf, 4, 2, 1),
            down2=conv_in_relu(2 * ngf, 4 * ngf, 4, 2, 1),
            blocks=nn.Sequential(*[ResidualBlock(4 * ngf) for _ in range(n_blocks)])))
        self.decoder = nn.Sequential(OrderedDict(
            up1=conv_in_relu(4 * ngf, 2 * ngf, 4, 2, 1, transposed=True),
            up2=conv_in_relu(2 * ngf, ngf, 4, 2, 1, transposed=True)))
        head = {"scheme1": 4, "none": 3, "scheme2": 3 * (n_masks - 1) + n_masks}[attention]
        self.head = nn.Conv2d(ngf, head, 7, padding=3, bias=False)

    def encoder_input(self, x: Tensor, c: Tensor) -> Tensor:
        """The image with the label map (N×c_dim×H×W) as extra channels: what the encoder reads."""
        return torch.cat([x, c.to(x.dtype)[:, :, None, None] * torch.ones_like(x[:, :1])], dim=1)

    def forward(self, x: Tensor, c: Tensor) -> GeneratorOutput:
        out = self.head(self.decoder(self.encoder(self.encoder_input(x, c))))
        if self.attention == "scheme1":
            return compose_scheme1(out, x)
        if self.attention == "scheme2":
            split = 3 * (self.n_masks - 1)
            return compose_scheme2(out[:, :split], out[:, split:], x)
        return GeneratorOutput(image=torch.tanh(out))

    def extra_repr(self) -> str:
        return f"c_dim={self.c_dim}, attention={self.attention}"


class MultiDomainDiscriminator(nn.Module):
    """StarGAN's D: a stride-2 conv tower with a real/fake map head and a domain-classifier head."""

    def __init__(self, c_dim: int = 5, ndf: int = 64, n_layers: int = 6, image_size: int = 128):
        super().__init__()
        if image_size is None:
            raise ValueError("the multi-domain discriminator needs its image_size (model.image_size follows "
                             "data.crop_size once the settings are resolved)")
        layers, ch = [nn.Conv2d(3, ndf, 4, 2, 1), nn.LeakyReLU(0.01)], ndf
        for _ in range(1, n_layers):
            layers += [nn.Conv2d(ch, 2 * ch, 4, 2, 1), nn.LeakyReLU(0.01)]
            ch *= 2
        self.main = nn.Sequential(*layers)
        self.src = nn.Conv2d(ch, 1, 3, padding=1, bias=False)  # official conv1: real/fake map
        self.cls = nn.Conv2d(ch, c_dim, image_size // 2 ** n_layers, bias=False)  # official conv2: classifier
        self.image_size = image_size

    def forward(self, x: Tensor) -> DiscriminatorOutput:
        if tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(f"the multi-domain discriminator takes {self.image_size}×{self.image_size} images "
                             f"(model.image_size), got {tuple(x.shape[-2:])}; "
                             f"set model.image_size = data.crop_size")
        h = self.main(x)
        return DiscriminatorOutput(logits=self.src(h), class_logits=self.cls(h).flatten(1))


class MultiDomainGAN(TranslationMethod):
    """One generator for every domain, one D with a classifier; WGAN-GP, n_critic D steps per G step."""

    def __init__(self, args: MultiDomainArgs, weights) -> None:
        super().__init__()
        self.args, self.weights = args, weights
        self.generators = nn.ModuleDict({MULTI: self.make_generator(args)})
        self.discriminators = nn.ModuleDict({MULTI: MultiDomainDiscriminator(
            c_dim=args.c_dim, ndf=args.ndf, n_layers=args.n_layers_d, image_size=args.image_size)})

    @staticmethod
    def make_generator(args: MultiDomainArgs) -> nn.Module:
        return MultiDomainGenerator(c_dim=args.c_dim, ngf=args.ngf, n_blocks=args.n_blocks,
                                    attention=args.attention, n_masks=args.n_masks)

    def phases(self):
        return [Phase("D", "D", ("discriminators",), self.discriminator_loss),
                Phase("G", "G", ("generators",), self.generator_loss, every=self.args.n_critic)]

    def prepare(self, ctx: StepContext) -> None:
        """Target labels = the labels of a permutation of the batch; fake = G(x, target)."""
        real, label = ctx.batch["image"], ctx.batch["label"]
        perm = torch.randperm(real.shape[0], generator=ctx.rng(_STREAM_TARGET)).to(real.device)
        target = label[perm]
        ctx.cache.update(target=target, fake=self.generators[MULTI](real, target))

    def classification(self, logits: Tensor, labels: Tensor) -> Tensor:
        multi = self.args.multi_label
        return losses.classification_loss(logits.float(), labels.float() if multi else labels.argmax(1), multi)

    def discriminator_loss(self, ctx: StepContext) -> LossOutput:
        D, mode, w = self.discriminators[MULTI], self.weights.gan_mode, self.weights
        real, fake = ctx.batch["image"], ctx.cache["fake"].image.detach()
        out_real = D(real)
        terms = {"real": losses.adversarial_loss(out_real.logits, True, mode),
                 "fake": losses.adversarial_loss(D(fake).logits, False, mode),
                 "cls_real": self.classification(out_real.class_logits, ctx.batch["label"])}
        total = w.adv * (terms["real"] + terms["fake"]) + w.cls * terms["cls_real"]
        if w.gp > 0:
            alpha = torch.rand(real.shape[0], 1, 1, 1, generator=ctx.rng(_STREAM_GP)).to(real)
            mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
            terms["gp"] = losses.gradient_penalty(D(mixed).logits, mixed)
            total = total + w.gp * terms["gp"]
        return LossOutput(total=total, terms=terms)

    def generator_loss(self, ctx: StepContext) -> LossOutput:
        G, D, w = self.generators[MULTI], self.discriminators[MULTI], self.weights
        real, label, target, fake = ctx.batch["image"], ctx.batch["label"], ctx.cache["target"], ctx.cache["fake"]
        out = D(fake.image)
        terms = {"adv": losses.adversarial_loss(out.logits, True, w.gan_mode, for_discriminator=False),
                 "cls_fake": self.classification(out.class_logits, target),
                 "rec": losses.cycle_loss(G(fake.image, label).image, real)}
        return LossOutput(total=w.adv * terms["adv"] + w.cycle * terms["rec"] + w.cls * terms["cls_fake"],
                          terms=terms)

    def target_labels(self, labels: Tensor, k: int) -> Tensor:
        """Sample targets for domain k: one-hot k (exclusive domains), or each image's own attributes with
        attribute k flipped (multi-label, as the official CelebA samples)."""
        if not self.args.multi_label:
            return torch.zeros_like(labels).index_fill_(1, torch.tensor([k], device=labels.device), 1.0)
        flipped = labels.clone()
        flipped[:, k] = 1.0 - flipped[:, k]
        return flipped

    @torch.no_grad()
    def visuals(self, images: Tensor, labels: Tensor) -> List[dict]:
        """One row per target domain: real | fake | reconstruction (back to the own label) | attention."""
        G, rows = self.generators[MULTI], []
        for k in range(self.args.c_dim):
            out = G(images, self.target_labels(labels, k))
            row = {"real": to_unit(images), "fake": to_unit(out.image), "rec": to_unit(G(out.image, labels).image)}
            if out.attention is not None:
                row["attention"] = out.foreground().expand(-1, 3, -1, -1)
            rows.append(row)
        return rows


OFFICIAL = {  # AttentionGAN-v1-multi/main.py defaults (= StarGAN's)
    "loss": {"gan_mode": "wgan", "adv": 1.0, "cycle": 10.0, "cls": 1.0, "gp": 10.0, "identity": 0.0},
    "train": {"lr": 1e-4, "beta1": 0.5, "beta2": 0.999, "batch_size": 16, "steps": 200000,
              "decay_fraction": 0.0, "pool_size": 0, "init": "default"},
    "data": {"load_size": 128, "crop_size": 128, "flip": True},
}

for name, args, summary in (
    ("attentiongan-multi", MultiDomainArgs, "multi-domain AttentionGAN: one label-conditioned Scheme I generator, "
                                            "StarGAN D + classifier, WGAN-GP"),
    ("stargan", StarGANArgs, "StarGAN: one label-conditioned generator (tanh output), D + classifier, WGAN-GP "
                             "(the baseline)"),
):
    register(ModelSpec(name=name, args=args, build=MultiDomainGAN, build_generator=MultiDomainGAN.make_generator,
                       summary=summary, defaults=OFFICIAL, dataset="multidomain",
                       size_arg="image_size"))
