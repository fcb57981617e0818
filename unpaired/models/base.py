"""What every model provides to the engine: output dataclasses, phases and the method base class.

Vocabulary (CycleGAN's): domain A and domain B; generators keyed by direction, ``"AtoB"`` (paper G)
and ``"BtoA"`` (paper F); discriminators keyed by the domain they judge, ``"A"`` (paper D_X) and ``"B"``
(paper D_Y). Tensors inside losses are named ``real_A``, ``fake_B``, ``rec_A``, ``idt_A``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import torch
from torch import Tensor, nn

from ..nn.outputs import DiscriminatorOutput, GeneratorOutput

__all__ = ["DIRECTIONS", "MULTI", "InputSize", "GeneratorOutput", "DiscriminatorOutput", "LossOutput", "StepContext", "Phase",
           "TranslationMethod", "split_batch", "to_unit", "normalise_heatmap", "set_requires_grad"]

DIRECTIONS = ("AtoB", "BtoA")
#: the key of a multi-domain model's one generator (and discriminator): it translates to any target domain
MULTI = "multi"


@dataclass(frozen=True)
class InputSize:
    """How a generator takes images (one rule, written on its model card).

    train:    the side it was trained at (``data.crop_size``): what evaluation resizes a test split to.
    multiple: H and W must divide by it; other inputs are reflection-padded up to it and the outputs cropped.
    fixed:    the generator takes only ``fixed`` × ``fixed`` images (U-GAT-IT full, whose MLP is tied to the size):
              inputs are resized to it and the outputs back; None for any size.
    """

    train: Optional[int] = None
    multiple: int = 1
    fixed: Optional[int] = None


@dataclass
class LossOutput:
    """A phase's loss: the scalar to back-propagate and every named term, for logging."""

    total: Tensor
    terms: Dict[str, Tensor] = field(default_factory=dict)


@dataclass
class StepContext:
    """Handed to every phase of one training step.

    batch: ``{"A": N×3×H×W, "B": N×3×H×W, ...}`` already on the device.
    cache: whatever ``prepare`` or an earlier phase stored for later phases (e.g. the fakes).
    pool:  ``pool(domain, images) -> images`` draws from the trainer's image history pool for a domain
           (returns ``images`` unchanged when pooling is off).
    step:  0-based index of this optimisation step.
    total_steps: the run's ``train.steps`` (0 when unknown), for schedules inside a loss (AttentionGAN
           Scheme I's GAN/reconstruction curriculum).
    seed:  the run's ``train.seed``; with ``step`` it seeds ``rng``.
    """

    batch: Dict[str, Tensor]
    pool: Callable[[str, Tensor], Tensor]
    step: int = 0
    total_steps: int = 0
    cache: Dict[str, object] = field(default_factory=dict)
    seed: int = 0

    def rng(self, stream: int) -> torch.Generator:
        """A CPU generator that depends only on (seed, step, stream), never on what ran before: a resumed
        run draws exactly the numbers of an uninterrupted one (target labels, gradient-penalty mixing)."""
        mixed = ((self.seed * 1_000_003 + self.step) * 1_000_033 + stream) % (2 ** 63)
        return torch.Generator().manual_seed(mixed)


@dataclass
class Phase:
    """One optimiser update inside a training step.

    name:      statistic prefix (``"G"``, ``"D"``).
    optimizer: key into ``TranslationMethod.parameter_groups()``.
    trainable: attribute names of the method's networks this phase updates (``"generators"``,
               ``"discriminators"``, or any other ``nn.Module`` attribute); every other network any phase names is
               frozen while it runs. A name that is not a network of the method stops training with an error.
    loss:      ``loss(ctx) -> LossOutput``; a pure function of the networks and ``ctx``.
    after_step: called after the optimiser step (U-GAT-IT clips rho here).
    every:     run on steps where ``step % every == every - 1`` (n_critic for WGAN-GP generators).
    """

    name: str
    optimizer: str
    trainable: tuple
    loss: Callable[[StepContext], LossOutput]
    after_step: Optional[Callable[[], None]] = None
    every: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.trainable, str):  # one name, not its letters
            self.trainable = (self.trainable,)
        self.trainable = tuple(self.trainable)
        if not self.trainable or not all(isinstance(n, str) and n for n in self.trainable):
            raise ValueError(f"phase {self.name!r}: trainable must name at least one network attribute, "
                             f"got {self.trainable!r}")


class TranslationMethod(nn.Module):
    """A model: its networks as submodules and the phases that train them. No loop, no optimiser, no I/O.

    Subclasses set ``self.generators`` (``nn.ModuleDict`` keyed by direction) and
    ``self.discriminators`` (``nn.ModuleDict`` keyed by the judged domain), then implement ``phases``.
    """

    generators: nn.ModuleDict
    discriminators: nn.ModuleDict
    #: names of the domains whose fakes go through an image history pool
    pooled_domains: tuple = ()

    def parameter_groups(self) -> Dict[str, List[nn.Parameter]]:
        """Optimiser name -> parameters. The default: one Adam for all generators, one for all discriminators."""
        return {"G": list(self.generators.parameters()), "D": list(self.discriminators.parameters())}

    def phases(self) -> List[Phase]:
        raise NotImplementedError

    def prepare(self, ctx: StepContext) -> None:
        """Run once per step before the phases, with every network trainable (e.g. the shared forward pass)."""

    def translate(self, images: Tensor, direction: str) -> GeneratorOutput:
        return self.generators[direction](images)

    @torch.no_grad()
    def visuals(self, real_A: Tensor, real_B: Tensor) -> List[Dict[str, Tensor]]:
        """Rows of a sample grid, one dict per direction: name -> N×3×H×W in [0, 1]."""
        rows = []
        for direction, real, back in (("AtoB", real_A, "BtoA"), ("BtoA", real_B, "AtoB")):
            out = self.translate(real, direction)
            rec = self.translate(out.image, back)
            row = {"real": to_unit(real), "fake": to_unit(out.image), "rec": to_unit(rec.image)}
            fg = out.foreground()
            if fg is not None:
                row["attention"] = fg.expand(-1, 3, -1, -1)
            elif out.heatmap is not None:
                row["heatmap"] = normalise_heatmap(out.heatmap, real.shape[-2:]).expand(-1, 3, -1, -1)
            rows.append(row)
        return rows


def split_batch(out: GeneratorOutput, sizes) -> List[GeneratorOutput]:
    """The outputs of one call on ``cat(inputs)`` as the outputs of a call on each input (``sizes``: their lengths)."""
    fields = {k: v.split(list(sizes)) for k, v in vars(out).items() if v is not None}
    return [GeneratorOutput(**{k: parts[i] for k, parts in fields.items()}) for i in range(len(sizes))]


def to_unit(images: Tensor) -> Tensor:
    """[-1, 1] -> [0, 1]."""
    return (images.float().clamp(-1, 1) + 1) / 2


def normalise_heatmap(heatmap: Tensor, size) -> Tensor:
    """Per-image min-max scaling of an N×1×h×w heatmap to [0, 1], resized (bilinear) to ``size``."""
    heatmap = heatmap.float()
    lo = heatmap.amin(dim=(1, 2, 3), keepdim=True)
    hi = heatmap.amax(dim=(1, 2, 3), keepdim=True)
    heatmap = (heatmap - lo) / (hi - lo).clamp_min(1e-8)
    return nn.functional.interpolate(heatmap, size=tuple(size), mode="bilinear", align_corners=False)


def set_requires_grad(modules, flag: bool) -> None:
    for module in modules:
        for p in module.parameters():
            p.requires_grad_(flag)
