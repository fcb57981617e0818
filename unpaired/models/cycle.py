"""The pieces every CycleGAN-family model (CycleGAN, AttentionGAN Schemes I and II) forms its losses from, as
functions of networks and tensors: the shared forward pass, the generators' adversarial, cycle and identity
terms, and the discriminators' real/fake terms. A model file calls them; none subclasses another.

Tensors follow CycleGAN's naming: G = AtoB, F = BtoA; ``cache`` holds ``fake_B`` = G(a), ``rec_A`` = F(G(a)),
``fake_A`` = F(b), ``rec_B`` = G(F(b)) and, with identity loss, ``idt_B`` = G(b), ``idt_A`` = F(a), each a
``GeneratorOutput``.
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional

import torch
from torch import Tensor, nn

from .. import losses
from .base import split_batch


def cycle_forward(G: nn.Module, F: nn.Module, real_A: Tensor, real_B: Tensor, cache: Dict[str, object], *,
                  identity: bool, per_sample: bool) -> None:
    """Fill ``cache`` with fake_B, rec_A, fake_A, rec_B (and idt_B, idt_A when ``identity``).

    ``per_sample`` (no layer mixes the images of a batch: instance norm, no dropout): inputs of one generator that
    are ready at the same time share a call: G(a, b), then F(b, G(a), a), then G(F(b)): three calls instead of
    four (six with identity), the same numbers. Otherwise every call keeps its own batch, as the official code;
    the identity passes are then left to the caller (``identity_terms`` runs them when they are not cached)."""
    if per_sample:
        first = [real_A, real_B] if identity else [real_A]
        fake_B, *idt_B = split_batch(G(torch.cat(first)), [len(x) for x in first])
        second = [real_B, fake_B.image, real_A] if identity else [real_B, fake_B.image]
        fake_A, rec_A, *idt_A = split_batch(F(torch.cat(second)), [len(x) for x in second])
        if identity:
            cache.update(idt_B=idt_B[0], idt_A=idt_A[0])
    else:
        fake_B = G(real_A)
        rec_A = F(fake_B.image)
        fake_A = F(real_B)
    rec_B = G(fake_A.image)
    cache.update(fake_B=fake_B, rec_A=rec_A, fake_A=fake_A, rec_B=rec_B)


def real_and_fake_logits(D: nn.Module, real: Tensor, fake: Tensor, per_sample: bool) -> tuple:
    """D's logits on a real and a fake batch: one call when D's layers are per-sample."""
    if not per_sample:
        return D(real).logits, D(fake).logits
    logits = D(torch.cat([real, fake])).logits
    return logits[:len(real)], logits[len(real):]


def generator_adversarial_terms(discriminators: Mapping[str, nn.Module], cache: Mapping[str, object],
                                mode: str) -> Dict[str, Tensor]:
    """adv_B, adv_A: each generator tries to make its domain's D call its fakes real."""
    D_A, D_B = discriminators["A"], discriminators["B"]
    return {
        "adv_B": losses.adversarial_loss(D_B(cache["fake_B"].image).logits, True, mode, for_discriminator=False),
        "adv_A": losses.adversarial_loss(D_A(cache["fake_A"].image).logits, True, mode, for_discriminator=False),
    }


def cycle_terms(cache: Mapping[str, object], real_A: Tensor, real_B: Tensor) -> Dict[str, Tensor]:
    """cycle_A = ‖F(G(a)) − a‖₁, cycle_B = ‖G(F(b)) − b‖₁."""
    return {"cycle_A": losses.cycle_loss(cache["rec_A"].image, real_A),
            "cycle_B": losses.cycle_loss(cache["rec_B"].image, real_B)}


def identity_terms(generators: Mapping[str, nn.Module], cache: Mapping[str, object], real_A: Tensor,
                   real_B: Tensor) -> Dict[str, Tensor]:
    """idt_B = ‖G(b) − b‖₁, idt_A = ‖F(a) − a‖₁ (the passes from ``cache`` when the forward pass ran them)."""
    idt_B = cache["idt_B"] if "idt_B" in cache else generators["AtoB"](real_B)  # G(b): b should stay b
    idt_A = cache["idt_A"] if "idt_A" in cache else generators["BtoA"](real_A)
    return {"idt_B": losses.identity_loss(idt_B.image, real_B), "idt_A": losses.identity_loss(idt_A.image, real_A)}


def cyclegan_generator_terms(generators: Mapping[str, nn.Module], discriminators: Mapping[str, nn.Module],
                             cache: Mapping[str, object], real_A: Tensor, real_B: Tensor, weights) -> tuple:
    """CycleGAN's generator objective: (terms, weighted list) of adv_B, adv_A, cycle_A, cycle_B and, when
    ``weights.identity`` > 0, idt_B, idt_A; the loss is ``sum(weighted)`` (plus what a model adds)."""
    w = weights
    terms = generator_adversarial_terms(discriminators, cache, w.gan_mode)
    terms.update(cycle_terms(cache, real_A, real_B))
    weighted = [w.adv * terms["adv_B"], w.adv * terms["adv_A"], w.cycle * terms["cycle_A"], w.cycle * terms["cycle_B"]]
    if w.identity > 0:
        terms.update(identity_terms(generators, cache, real_A, real_B))
        weighted += [w.identity * terms["idt_B"], w.identity * terms["idt_A"]]
    return terms, weighted


def discriminator_terms(D: nn.Module, real: Tensor, fake: Tensor, mode: str, per_sample: bool, domain: str,
                        tag: Optional[str] = None) -> Dict[str, Tensor]:
    """real_<tag>, fake_<tag> and D_<tag> = 0.5·(real + fake) of one discriminator (``tag``: default ``domain``;
    ``fake`` already detached and drawn from the pool)."""
    tag = tag or domain
    real_logits, fake_logits = real_and_fake_logits(D, real, fake, per_sample)
    terms = {f"real_{tag}": losses.adversarial_loss(real_logits, True, mode),
             f"fake_{tag}": losses.adversarial_loss(fake_logits, False, mode)}
    terms[f"D_{tag}"] = 0.5 * (terms[f"real_{tag}"] + terms[f"fake_{tag}"])
    return terms
