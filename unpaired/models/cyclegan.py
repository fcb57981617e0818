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

from ..nn.blocks import PatchGANDiscriminator, ResnetDecoder, ResnetEncoder
from . import ModelSpec, cycle, register
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
    streamable = True  # forward begins with self.encoder(x) of the image alone (tiling/stream.py)

    def __init__(self, in_ch: int = 3, out_ch: int = 3, ngf: int = 64, n_blocks: int = 9,
                 norm: str = "instance", dropout: float = 0.0):
        super().__init__()
        self.encoder = ResnetEncoder(in_ch, ngf, n_blocks, norm, dropout)
        self.decoder = ResnetDecoder(out_ch, ngf, norm, head_kernel=7)

    def forward(self, x: Tensor) -> GeneratorOutput:
        return GeneratorOutput(image=torch.tanh(self.decoder(self.encoder(x))))


class CycleGAN(TranslationMethod):
    """Two generators, two discriminators, adversarial + cycle + identity losses (``cycle.py``'s terms)."""

    pooled_domains = ("A", "B")

    def __init__(self, args: CycleGANArgs, weights) -> None:
        super().__init__()
        self.args, self.weights = args, weights
        self.generators = nn.ModuleDict({d: self.make_generator(args) for d in DIRECTIONS})
        self.discriminators = nn.ModuleDict({dom: PatchGANDiscriminator(ndf=args.ndf, n_layers=args.n_layers_d,
                                                                        norm=args.norm) for dom in ("A", "B")})
        # no layer mixes the images of a batch: inputs of one network may share a call (same numbers, faster)
        self.per_sample = args.norm == "instance" and args.dropout == 0.0

    @staticmethod
    def make_generator(args: CycleGANArgs) -> nn.Module:
        return CycleGANGenerator(ngf=args.ngf, n_blocks=args.n_blocks, norm=args.norm, dropout=args.dropout)

    def phases(self):
        return [
            Phase("G", "G", ("generators",), self.generator_loss),
            Phase("D", "D", ("discriminators",), self.discriminator_loss),
        ]

    def prepare(self, ctx: StepContext) -> None:
        """fake_B = G(a), rec_A = F(fake_B), fake_A = F(b), rec_B = G(fake_A) (and G(b), F(a) with identity)."""
        cycle.cycle_forward(self.generators["AtoB"], self.generators["BtoA"], ctx.batch["A"], ctx.batch["B"],
                            ctx.cache, identity=self.weights.identity > 0, per_sample=self.per_sample)

    def generator_loss(self, ctx: StepContext) -> LossOutput:
        terms, weighted = cycle.cyclegan_generator_terms(self.generators, self.discriminators, ctx.cache,
                                                         ctx.batch["A"], ctx.batch["B"], self.weights)
        return LossOutput(total=sum(weighted), terms=terms)

    def discriminator_loss(self, ctx: StepContext) -> LossOutput:
        terms = {}
        for domain, fake_key in (("B", "fake_B"), ("A", "fake_A")):
            fake = ctx.pool(domain, ctx.cache[fake_key].image.detach())
            terms.update(cycle.discriminator_terms(self.discriminators[domain], ctx.batch[domain], fake,
                                                   self.weights.gan_mode, self.per_sample, domain))
        return LossOutput(total=terms["D_B"] + terms["D_A"], terms=terms)


register(ModelSpec(
    name="cyclegan",
    args=CycleGANArgs,
    build=CycleGAN,
    build_generator=CycleGAN.make_generator,
    summary="CycleGAN: ResNet generators, 70×70 PatchGAN, LSGAN + cycle + identity (the baseline)",
))
