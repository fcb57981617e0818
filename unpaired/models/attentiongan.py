"""AttentionGAN (Tang et al., TNNLS 2021): generation Scheme II, AttentionGAN-geo, generation Scheme I, and the
attention-guided discriminator, as one method (``AttentionGAN(scheme=2|1)``) built from CycleGAN's loss
terms (``cycle.py``: functions, no subclassing). Scheme I's networks (generator, global D) and its settings
are in ``attentiongan_s1.py``, its losses here (``scheme1_generator_loss``; see that file's docstring).

The generator, as the paper's figure draws it::

    x ─► shared encoder G_E ─┬─► content decoder G_C ─► n−1 content images C_1..C_{n−1}   (tanh)
                             └─► attention decoder G_A ─► n masks A_1..A_n, softmax over k (A_n = background)
    G(x) = C_1·A_1 + … + C_{n−1}·A_{n−1} + x·A_n

n = 10 in the paper and the official code. AttentionGAN-geo (for translations with geometric change,
e.g. selfie2anime) generates n content images and does not pass the input through:
G(x) = C_1·A_1 + … + C_n·A_n.

Losses and schedule are CycleGAN's (the official ``attention_gan_model.py`` is CycleGAN's model with this
generator): LSGAN, cycle 10, identity 0.5 × 10, G step then D step on fakes from a 50-image pool.
Paper mapping: G = ``generators["AtoB"]`` (official G_A), F = ``generators["BtoA"]`` (G_B),
D_Y = ``discriminators["B"]`` (official D_A), D_X = ``discriminators["A"]`` (D_B).

Attention-guided discriminator (``model.discriminator=attention``; paper §3.3, in no official code).
D_YA judges an attention mask together with an image (4 channels: foreground mask, RGB):

* fake pair: ``[M_G(x), G(x)]``, M_G(x) = G's foreground mask on x (1 − background mask), i.e. where G
  wrote generated content into its output;
* real pair: ``[M_F(y), y]``, M_F(y) = the foreground mask the OTHER generator F predicts for the real y.
  F's foreground on y marks the Y-specific object of y (what F has to change to reach X), the same meaning
  as G's mask on G(x). Both masks are thus spatially tied to the image they come with. The paper's wording
  "[M_y, y]" could also be read as pairing y with G's mask of an unrelated x; we reject that reading: the
  unpaired x's mask does not line up with y, so D could tell real from fake by alignment alone, which
  teaches G nothing about the image. M_F(y) costs nothing: F(y) is computed for the cycle anyway.
* D loss (per domain): 0.5·[MSE(D_YA(real pair), 1) + MSE(D_YA(pool(fake pair)), 0)], added unweighted
  to the plain D loss (same optimiser; Adam is insensitive to the scale of a loss).
* G loss: ``loss.attention_adv`` · MSE(D_YA(fake pair), 1), IN ADDITION to the plain image term: the
  paper's objective has both L_GAN(G, D_Y) and the attention-guided L_AGAN(G, D_YA), and keeping D_Y
  keeps the official checkpoints' layout. The gradient reaches G through its image and its mask.
* The pool stores each fake as one 4-channel [mask, image] tensor, so the plain D sees exactly the image
  half of the pair that D_YA sees.
The attention discriminators are ``discriminators["B_attention"]`` (D_YA) and ``["A_attention"]`` (D_XA).

Paper vs code (shared/spec/models.md §8): the official attention head is a 1×1 conv (paper notes say
c7s1-10, UNVERIFIED); the code has no attention/TV or pixel loss in Scheme II (v1 only); ``define_G('our')``
ignores --norm/--netG/--n_blocks (always instance norm, 9 blocks) — here they are arguments, defaulting to
the code's values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Literal

import torch
from torch import Tensor, nn

from .. import losses
from ..nn.blocks import PatchGANDiscriminator, ResnetDecoder, ResnetEncoder
from . import ModelSpec, cycle, register
from .attentiongan_s1 import S1_DEFAULTS, AttentionGANS1Args, AttentionGANS1Generator, GlobalDiscriminator
from .base import DIRECTIONS, GeneratorOutput, LossOutput, Phase, StepContext, TranslationMethod


@dataclass
class AttentionGANArgs:
    ngf: int = 64  # generator base channels
    ndf: int = 64  # discriminator base channels
    n_blocks: int = 9  # residual blocks (the official define_G('our') always builds 9)
    n_masks: int = 10  # attention masks n: n−1 foreground + 1 background (geo: n foreground)
    n_layers_d: int = 3  # PatchGAN depth (3 = 70×70)
    norm: Literal["instance", "batch"] = "instance"  # official: instance norm, hard-wired
    discriminator: Literal["patch", "attention"] = "patch"  # attention: add the attention-guided D's
    background_prior: float = 0.0  # ours: the background mask's value at initialisation (0 = official: 1/n)
    background_prior_steps: int = 0  # ours: 0 = the warm start stays; N = it fades linearly over N steps ...
    background_prior_final: float = 0.0  # ours: ... to the offset that gives this background value (0: to none)

    def validate(self) -> None:
        if self.n_masks < 2:
            raise ValueError(f"n_masks must be at least 2 (foreground + background), got {self.n_masks}")
        if not 0.0 <= self.background_prior < 1.0:
            raise ValueError(f"model.background_prior must be in [0, 1) (0 = off), got {self.background_prior}")
        if self.background_prior_steps < 0:
            raise ValueError(f"model.background_prior_steps must be >= 0 (0 = no fade), got "
                             f"{self.background_prior_steps}")
        final = self.background_prior_final
        if final and not (self.background_prior_steps and 1.0 / self.n_masks < final < self.background_prior):
            raise ValueError(f"model.background_prior_final={final}: a fade's end value needs "
                             f"model.background_prior_steps > 0 and must lie between 1/n_masks "
                             f"({1.0 / self.n_masks:g}) and model.background_prior ({self.background_prior:g})")


class AttentionGANGenerator(nn.Module):
    """Scheme II: shared encoder, content decoder (tanh), attention decoder (1×1 head, softmax)."""

    size_multiple = 4  # two stride-2 convolutions
    fixed_size = None
    streamable = True  # forward begins with self.encoder(x) of the image alone (tiling/stream.py)

    def __init__(self, ngf: int = 64, n_blocks: int = 9, n_masks: int = 10, norm: str = "instance",
                 geo: bool = False, background_prior: float = 0.0, background_prior_steps: int = 0,
                 background_prior_final: float = 0.0):
        super().__init__()
        self.n_masks, self.geo, self.background_prior = n_masks, geo, background_prior
        self.background_prior_steps = background_prior_steps if background_prior else 0
        self.background_prior_final = background_prior_final if self.background_prior_steps else 0.0
        n_content = n_masks if geo else n_masks - 1
        self.encoder = ResnetEncoder(3, ngf, n_blocks, norm)
        self.content_decoder = ResnetDecoder(3 * n_content, ngf, norm, head_kernel=7)
        self.attention_decoder = ResnetDecoder(n_masks, ngf, norm, head_kernel=1)
        # Background warm start: a constant added to the background logit, the same as starting the head's
        # background bias there (the learnable bias moves from it with the same gradients), but kept through
        # weight initialisation. It makes the background mask `background_prior` where the other logits tie.
        offset = background_logit_offset(background_prior, n_masks) if background_prior and not geo else 0.0
        self.register_buffer("_logit_offset", torch.zeros(n_masks), persistent=False)
        self._logit_offset[-1] = offset
        if self.background_prior_steps:  # a fading warm start: the offset's share left, saved with the weights
            self.register_buffer("prior_scale", torch.ones(()))
            end = background_logit_offset(self.background_prior_final, n_masks) if self.background_prior_final else 0.0
            self._final_scale = end / offset if offset else 0.0  # the share the fade ends at

    def forward(self, x: Tensor) -> GeneratorOutput:
        features = self.encoder(x)
        attention_logits = self.attention_decoder(features)
        if self.background_prior:
            offset = self._logit_offset * self.prior_scale if self.background_prior_steps else self._logit_offset
            attention_logits = attention_logits + offset.to(attention_logits.dtype)[:, None, None]
        return compose_scheme2(self.content_decoder(features), attention_logits, x, self.geo)

    @torch.no_grad()
    def fade_prior(self, step: int) -> None:
        """Before training step ``step`` (0-based): the warm start's offset times f + (1 − f)·max(0, 1 − step / N),
        f the share kept at the end (0, or that of ``background_prior_final``)."""
        if self.background_prior_steps:
            left = max(0.0, 1.0 - step / self.background_prior_steps)
            self.prior_scale.fill_(self._final_scale + (1.0 - self._final_scale) * left)

    def extra_repr(self) -> str:
        fade = f", fading over {self.background_prior_steps} steps" if self.background_prior_steps else ""
        fade += f" to {self.background_prior_final}" if self.background_prior_final else ""
        return f"n_masks={self.n_masks}, geo={self.geo}, background_prior={self.background_prior}{fade}"


def background_logit_offset(prior: float, n_masks: int) -> float:
    """The background logit offset that makes softmax give the background ``prior`` when all logits are
    otherwise equal: e^b / (e^b + n − 1) = prior."""
    return math.log(prior * (n_masks - 1) / (1.0 - prior))


def compose_scheme2(content_logits: Tensor, attention_logits: Tensor, x: Tensor,
                    geo: bool = False) -> GeneratorOutput:
    """Scheme II's composition: tanh content images C_k, softmax masks A_k (the last = background unless
    ``geo``), G(x) = Σ C_k·A_k (+ x·A_n)."""
    content = torch.tanh(content_logits)  # N×3(n−1)×H×W (geo: 3n)
    attention = torch.softmax(attention_logits, dim=1)  # N×n×H×W, sums to 1
    masks = attention.split(1, dim=1)
    layers = [image_k * mask_k for image_k, mask_k in zip(content.split(3, dim=1), masks)]
    if not geo:
        layers.append(x * masks[-1])  # the background mask keeps the input
    image = layers[0]
    for layer in layers[1:]:  # o_1 + o_2 + … + o_n, left to right as the official code sums them
        image = image + layer
    return GeneratorOutput(image=image, attention=attention, content=content)


def attention_pair(mask: Tensor, image: Tensor) -> Tensor:
    """The attention-guided discriminator's input: [foreground mask, image] along channels (N×4×H×W)."""
    return torch.cat([mask, image], dim=1)


class AttentionGAN(TranslationMethod):
    """CycleGAN's losses (``cycle.py``) with attention generators, Scheme II (``scheme=2``, ``geo``) or Scheme I
    (``scheme=1``: its generator, global D, pixel + TV losses and curriculum), optionally with the
    attention-guided discriminators D_YA, D_XA."""

    pooled_domains = ("A", "B")

    def __init__(self, args, weights, scheme: int = 2, geo: bool = False) -> None:
        super().__init__()
        self.args, self.weights, self.scheme = args, weights, scheme
        self.generators = nn.ModuleDict({d: make_generator(args, scheme, geo) for d in DIRECTIONS})
        self.discriminators = nn.ModuleDict({dom: make_discriminator(args, scheme) for dom in ("A", "B")})
        self.has_attention_discriminator = args.discriminator == "attention"
        if self.has_attention_discriminator:
            for domain in ("A", "B"):
                self.discriminators[f"{domain}_attention"] = make_discriminator(args, scheme, in_ch=4)
        self.per_sample = args.norm == "instance"  # no layer mixes a batch: inputs of one network share a call

    def phases(self):
        return [
            Phase("G", "G", ("generators",), self.generator_loss),
            Phase("D", "D", ("discriminators",), self.discriminator_loss),
        ]

    def prepare(self, ctx: StepContext) -> None:
        """Scheme I runs the identity passes first (official order: with BatchNorm their batch statistics enter
        the running statistics even at weight 0); then CycleGAN's forward pass."""
        G, F = self.generators["AtoB"], self.generators["BtoA"]
        if self.scheme == 2:
            for generator in (G, F):
                generator.fade_prior(ctx.step)
        if self.scheme == 1:
            ctx.cache["idt_B"] = G(ctx.batch["B"])
            ctx.cache["idt_A"] = F(ctx.batch["A"])
        identity = self.weights.identity > 0 and "idt_B" not in ctx.cache
        cycle.cycle_forward(G, F, ctx.batch["A"], ctx.batch["B"], ctx.cache, identity=identity,
                            per_sample=self.per_sample)

    # ------------------------------------------------------------------------------------------------------
    # generator losses

    def generator_loss(self, ctx: StepContext) -> LossOutput:
        return self.scheme1_generator_loss(ctx) if self.scheme == 1 else self.scheme2_generator_loss(ctx)

    def scheme2_generator_loss(self, ctx: StepContext) -> LossOutput:
        """CycleGAN's G loss + the attention-guided terms + (ours, off by default) the mask priors."""
        terms, weighted = cycle.cyclegan_generator_terms(self.generators, self.discriminators, ctx.cache,
                                                         ctx.batch["A"], ctx.batch["B"], self.weights)
        weighted += self.attention_adversarial_terms(ctx, terms) + self.mask_prior_terms(ctx, terms)
        return LossOutput(total=sum(weighted), terms=terms)

    def scheme1_generator_loss(self, ctx: StepContext) -> LossOutput:
        """(1 − r)·[GAN + TV] + r·[cycle + pixel + identity], r from the curriculum."""
        real_A, real_B, c, w = ctx.batch["A"], ctx.batch["B"], ctx.cache, self.weights
        terms = cycle.generator_adversarial_terms(self.discriminators, c, w.gan_mode)
        # TV of the mask repeated to 3 channels, as the official code computes it on the 3-channel mask
        terms["tv_B"] = losses.total_variation(c["fake_B"].attention.expand(-1, 3, -1, -1))
        terms["tv_A"] = losses.total_variation(c["fake_A"].attention.expand(-1, 3, -1, -1))
        terms.update(cycle.cycle_terms(c, real_A, real_B))
        terms["pixel_A"] = losses.identity_loss(c["fake_B"].image, real_A)  # G(a) stays close to a
        terms["pixel_B"] = losses.identity_loss(c["fake_A"].image, real_B)
        terms.update(cycle.identity_terms(self.generators, c, real_A, real_B))
        gan = (w.adv * (terms["adv_B"] + terms["adv_A"]) + w.tv * (terms["tv_B"] + terms["tv_A"])
               + sum(self.attention_adversarial_terms(ctx, terms)))
        reconstruction = (w.cycle * (terms["cycle_A"] + terms["cycle_B"])
                          + w.pixel * (terms["pixel_A"] + terms["pixel_B"])
                          + w.identity * (terms["idt_B"] + terms["idt_A"]))
        r = self.curriculum_rate(ctx)
        terms["rate"] = torch.tensor(r)
        return LossOutput(total=(1 - r) * gan + r * reconstruction, terms=terms)

    def curriculum_rate(self, ctx: StepContext) -> float:
        """Scheme I's r: the weight of the reconstruction part of G's loss (1 − r weighs the GAN part)."""
        early = ctx.step < round(self.args.curriculum_fraction * ctx.total_steps)
        return self.args.curriculum_start_rate if early else self.args.curriculum_rate

    def attention_adversarial_terms(self, ctx: StepContext, terms: dict) -> list:
        """G's attention-guided terms: D_YA should call [M_G(x), G(x)] real. Raw values go to ``terms``."""
        if not self.has_attention_discriminator:
            return []
        mode, c = self.weights.gan_mode, ctx.cache
        for domain, fake_key in (("B", "fake_B"), ("A", "fake_A")):
            pair = attention_pair(c[fake_key].foreground(), c[fake_key].image)
            logits = self.discriminators[f"{domain}_attention"](pair).logits
            terms[f"adv_att_{domain}"] = losses.adversarial_loss(logits, True, mode, for_discriminator=False)
        w = self.weights.attention_adv
        return [w * terms["adv_att_B"], w * terms["adv_att_A"]]

    def mask_prior_terms(self, ctx: StepContext, terms: dict) -> list:
        """Ours, off by default: an L1 (sparsity) and a TV (smoothness) prior on the foreground masks of the
        translations G(a) and F(b), so that the input passes through wherever nothing needs to change."""
        w, c, weighted = self.weights, ctx.cache, []
        for name, weight, loss in (("sparsity", w.attention_sparsity, losses.mask_sparsity),
                                   ("smoothness", w.attention_smoothness, losses.mask_smoothness)):
            if weight > 0:
                for key, fake in (("B", "fake_B"), ("A", "fake_A")):
                    terms[f"mask_{name}_{key}"] = loss(c[fake].foreground())
                    weighted.append(weight * terms[f"mask_{name}_{key}"])
        return weighted

    # ------------------------------------------------------------------------------------------------------
    # discriminator losses

    def discriminator_loss(self, ctx: StepContext) -> LossOutput:
        """Σ over domains of 0.5·(real + fake) per D (+ the same for D_YA on [mask, image] pairs); Scheme I:
        halved (official 0.25·Σ_D)."""
        mode, c, terms = self.weights.gan_mode, ctx.cache, {}
        # domain judged, its fake, and the output of the other generator on the real image of that domain
        for domain, fake_key, other_key in (("B", "fake_B", "fake_A"), ("A", "fake_A", "fake_B")):
            real, D = ctx.batch[domain], self.discriminators[domain]
            if not self.has_attention_discriminator:
                fake = ctx.pool(domain, c[fake_key].image.detach())
                terms.update(cycle.discriminator_terms(D, real, fake, mode, self.per_sample, domain))
                continue
            real_pair = attention_pair(c[other_key].foreground().detach(), real)  # [M_F(y), y]
            fake_pair = ctx.pool(domain, attention_pair(c[fake_key].foreground(), c[fake_key].image).detach())
            terms.update(cycle.discriminator_terms(D, real, fake_pair[:, 1:], mode, self.per_sample, domain))
            terms.update(cycle.discriminator_terms(self.discriminators[f"{domain}_attention"], real_pair, fake_pair,
                                                   mode, self.per_sample, domain, tag=f"att_{domain}"))
        total = terms["D_B"] + terms["D_A"]
        if self.has_attention_discriminator:
            total = total + terms["D_att_B"] + terms["D_att_A"]
        return LossOutput(total=0.5 * total if self.scheme == 1 else total, terms=terms)


def make_generator(args, scheme: int = 2, geo: bool = False) -> nn.Module:
    """Scheme II (``geo``: no input passthrough) or Scheme I's generator."""
    if scheme == 1:
        return AttentionGANS1Generator(ngf=args.ngf, n_blocks=args.n_blocks, norm=args.norm)
    return AttentionGANGenerator(ngf=args.ngf, n_blocks=args.n_blocks, n_masks=args.n_masks, norm=args.norm,
                                 geo=geo, background_prior=args.background_prior,
                                 background_prior_steps=args.background_prior_steps,
                                 background_prior_final=args.background_prior_final)


def make_discriminator(args, scheme: int = 2, in_ch: int = 3) -> nn.Module:
    """The image D (``in_ch`` 3) or the attention-guided D_YA (4: [mask, image]): PatchGAN (Scheme II) or
    the global D (Scheme I)."""
    if scheme == 1:
        return GlobalDiscriminator(in_ch=in_ch, ndf=args.ndf, n_layers=args.n_layers_d, norm=args.norm)
    return PatchGANDiscriminator(in_ch=in_ch, ndf=args.ndf, n_layers=args.n_layers_d, norm=args.norm)


for _name, _args, _scheme, _geo, _defaults, _summary in (
    ("attentiongan", AttentionGANArgs, 2, False, {},
     "AttentionGAN Scheme II: n−1 content images + input mixed by n softmax masks; CycleGAN losses"),
    ("attentiongan-geo", AttentionGANArgs, 2, True, {},
     "AttentionGAN-geo: n content images mixed by n softmax masks, no input passthrough"),
    ("attentiongan-s1", AttentionGANS1Args, 1, False, S1_DEFAULTS,
     "AttentionGAN Scheme I (v1): sigmoid mask + linear content, global D, pixel + TV losses"),
):
    register(ModelSpec(name=_name, args=_args, build=partial(AttentionGAN, scheme=_scheme, geo=_geo),
                       build_generator=partial(make_generator, scheme=_scheme, geo=_geo), summary=_summary,
                       defaults=_defaults))
