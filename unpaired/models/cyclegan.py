"""CycleGAN (Zhu et al., 2017): the baseline every attention model is measured against.

G: A→B and F: B→A are ResNet generators (c7s1-64, d128, d256, 9×R256, u128, u64, c7s1-3, tanh);
D_A and D_B are 70×70 PatchGANs. Losses: LSGAN, cycle ‖F(G(a)) − a‖₁ + ‖G(F(b)) − b‖₁ (λ 10), identity
‖G(b) − b‖₁ + ‖F(a) − a‖₁ (λ 0.5 × 10). Each step: one forward pass, a G update with the discriminators
frozen, then a D update on fakes drawn from a 50-image history pool (0.5 × the real+fake loss per D).
Paper mapping: G = ``generators["AtoB"]``, F = ``generators["BtoA"]``, D_Y = ``discriminators["B"]``,
D_X = ``discriminators["A"]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from .. import losses
from ..nn.blocks import PatchGANDiscriminator, ResnetDecoder, ResnetEncoder
from . import ModelSpec, register
from .base import DIRECTIONS, GeneratorOutput, LossOutput, Phase, StepContext, TranslationMethod


@dataclass
class CycleGANArgs:
    ngf: int = 64  # generator base channels
    ndf: int = 64  # discriminator base channels
    n_blocks: int = 9  # residual blocks (9 for 256 px, 6 for 128 px in the paper)
    n_layers_d: int = 3  # PatchGAN depth (3 = 70×70 receptive field)
    norm: Literal["instance", "batch"] = "instance"
    dropout: float = 0.0


class CycleGANGenerator(nn.Module):
    size_multiple = 4  # two stride-2 convolutions: H and W must divide by 4
    fixed_size = None

    def __init__(self, in_ch: int = 3, out_ch: int = 3, ngf: int = 64, n_blocks: int = 9,
                 norm: str = "instance", dropout: float = 0.0):
        super().__init__()
        self.encoder = ResnetEncoder(in_ch, ngf, n_blocks, norm, dropout)
        self.decoder = ResnetDecoder(out_ch, ngf, norm, head_kernel=7)

    def forward(self, x: Tensor) -> GeneratorOutput:
        return GeneratorOutput(image=torch.tanh(self.decoder(self.encoder(x))))


class CycleGAN(TranslationMethod):
    """Two generators, two discriminators, adversarial + cycle + identity losses."""

    pooled_domains = ("A", "B")

    def __init__(self, args: CycleGANArgs, weights) -> None:
        super().__init__()
        self.args, self.weights = args, weights
        self.generators = nn.ModuleDict({d: self.make_generator(args) for d in DIRECTIONS})
        self.discriminators = nn.ModuleDict({dom: self.make_discriminator(args) for dom in ("A", "B")})

    @staticmethod
    def make_generator(args: CycleGANArgs) -> nn.Module:
        return CycleGANGenerator(ngf=args.ngf, n_blocks=args.n_blocks, norm=args.norm, dropout=args.dropout)

    @staticmethod
    def make_discriminator(args) -> nn.Module:
        return PatchGANDiscriminator(ndf=args.ndf, n_layers=args.n_layers_d, norm=args.norm)

    def phases(self):
        return [
            Phase("G", "G", ("generators",), self.generator_loss),
            Phase("D", "D", ("discriminators",), self.discriminator_loss),
        ]

    @property
    def per_sample(self) -> bool:
        """True when no layer mixes the images of a batch (instance norm, no dropout): then several inputs of
        one network can share a call, with the same results, and fewer, larger calls run faster."""
        return self.args.norm == "instance" and getattr(self.args, "dropout", 0.0) == 0.0

    def prepare(self, ctx: StepContext) -> None:
        """The shared forward pass: fake_B = G(a), rec_A = F(fake_B), fake_A = F(b), rec_B = G(fake_A) (and,
        with identity loss, G(b) and F(a)). With per-sample layers, inputs of one generator that are ready share a
        call: G(a, b), then F(b, G(a), a), then G(F(b)): three calls instead of four (six with identity)."""
        G, F = self.generators["AtoB"], self.generators["BtoA"]
        real_A, real_B = ctx.batch["A"], ctx.batch["B"]
        identity = self.weights.identity > 0 and "idt_B" not in ctx.cache  # Scheme I computes its own first
        if self.per_sample:
            first = [real_A, real_B] if identity else [real_A]
            fake_B, *idt_B = split_batch(G(torch.cat(first)), [len(x) for x in first])
            second = [real_B, fake_B.image, real_A] if identity else [real_B, fake_B.image]
            fake_A, rec_A, *idt_A = split_batch(F(torch.cat(second)), [len(x) for x in second])
            if identity:
                ctx.cache.update(idt_B=idt_B[0], idt_A=idt_A[0])
        else:
            fake_B = G(real_A)
            rec_A = F(fake_B.image)
            fake_A = F(real_B)
        rec_B = G(fake_A.image)
        ctx.cache.update(fake_B=fake_B, rec_A=rec_A, fake_A=fake_A, rec_B=rec_B)

    def real_and_fake_logits(self, D: nn.Module, real: Tensor, fake: Tensor) -> tuple:
        """D's logits on a real and a fake batch: one call when D's layers are per-sample."""
        if not self.per_sample:
            return D(real).logits, D(fake).logits
        logits = D(torch.cat([real, fake])).logits
        return logits[:len(real)], logits[len(real):]

    def adversarial_terms(self, ctx: StepContext) -> dict:
        """Generator adversarial terms: each generator tries to make its domain's D call its fakes real."""
        mode = self.weights.gan_mode
        D_A, D_B = self.discriminators["A"], self.discriminators["B"]
        return {
            "adv_B": losses.adversarial_loss(D_B(ctx.cache["fake_B"].image).logits, True, mode, for_discriminator=False),
            "adv_A": losses.adversarial_loss(D_A(ctx.cache["fake_A"].image).logits, True, mode, for_discriminator=False),
        }

    def generator_loss(self, ctx: StepContext) -> LossOutput:
        real_A, real_B, c, w = ctx.batch["A"], ctx.batch["B"], ctx.cache, self.weights
        terms = self.adversarial_terms(ctx)
        terms["cycle_A"] = losses.cycle_loss(c["rec_A"].image, real_A)
        terms["cycle_B"] = losses.cycle_loss(c["rec_B"].image, real_B)
        weighted = [w.adv * terms["adv_B"], w.adv * terms["adv_A"], w.cycle * terms["cycle_A"], w.cycle * terms["cycle_B"]]
        if w.identity > 0:
            idt_B = c["idt_B"] if "idt_B" in c else self.generators["AtoB"](real_B)  # G(b): b should stay b
            idt_A = c["idt_A"] if "idt_A" in c else self.generators["BtoA"](real_A)
            terms["idt_B"] = losses.identity_loss(idt_B.image, real_B)
            terms["idt_A"] = losses.identity_loss(idt_A.image, real_A)
            weighted += [w.identity * terms["idt_B"], w.identity * terms["idt_A"]]
        weighted += self.extra_generator_terms(ctx, terms)
        return LossOutput(total=sum(weighted), terms=terms)

    def extra_generator_terms(self, ctx: StepContext, terms: dict) -> list:
        """Weighted terms a subclass adds to the generator loss (recording raw values in ``terms``)."""
        return []

    def discriminator_loss(self, ctx: StepContext) -> LossOutput:
        mode, terms = self.weights.gan_mode, {}
        for domain, fake_key in (("B", "fake_B"), ("A", "fake_A")):
            D = self.discriminators[domain]
            fake = ctx.pool(domain, ctx.cache[fake_key].image.detach())
            real_logits, fake_logits = self.real_and_fake_logits(D, ctx.batch[domain], fake)
            terms[f"real_{domain}"] = losses.adversarial_loss(real_logits, True, mode)
            terms[f"fake_{domain}"] = losses.adversarial_loss(fake_logits, False, mode)
            terms[f"D_{domain}"] = 0.5 * (terms[f"real_{domain}"] + terms[f"fake_{domain}"])
        return LossOutput(total=terms["D_B"] + terms["D_A"], terms=terms)


def split_batch(out: GeneratorOutput, sizes) -> list:
    """The outputs of one call on ``cat(inputs)`` as the outputs of a call on each input (``sizes``: their lengths)."""
    fields = {k: v.split(list(sizes)) for k, v in vars(out).items() if v is not None}
    return [GeneratorOutput(**{k: parts[i] for k, parts in fields.items()}) for i in range(len(sizes))]


register(ModelSpec(
    name="cyclegan",
    args=CycleGANArgs,
    build=CycleGAN,
    build_generator=CycleGAN.make_generator,
    summary="CycleGAN: ResNet generators, 70×70 PatchGAN, LSGAN + cycle + identity (the baseline)",
))
