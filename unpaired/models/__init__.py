"""The model registry: a name (the CLI's ``model.name``) -> how to build the method and its generator.

Adding a model = one file in this package that defines its classes plus one ``register(ModelSpec(...))``
call, and one import line at the bottom of this file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from torch import nn

from .base import InputSize, TranslationMethod


@dataclass(frozen=True)
class ModelSpec:
    name: str
    args: type  # dataclass of the model's own settings: the ``model.*`` config keys besides ``name``
    build: Callable[[Any, Any], TranslationMethod]  # (args, loss weights) -> method with fresh weights
    build_generator: Callable[[Any], nn.Module]  # args -> one generator (for inference)
    summary: str
    # settings this model needs unless the preset says otherwise: {"loss": {...}, "train": {...}}
    defaults: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    # the training data it reads: "unpaired" (trainA/ trainB/) or "multidomain" (train/<domain>/, or a CSV
    # of attributes); unpaired/data/sources.py builds it
    dataset: str = "unpaired"
    # the input size is set once, as ``data.crop_size``; ``size_arg`` names the ``model.*`` argument derived from
    # it, for networks tied to one size (U-GAT-IT full's MLP, the multi-domain D's classifier)
    size_arg: Optional[str] = None
    # True: the generator itself takes only images of that size (else any size, padded to ``size_multiple``)
    fixed_input: bool = False
    size_multiple: int = 4  # H and W of a generator input must divide by it (two stride-2 convolutions)

    def input_size(self, args: Any, train: Optional[int] = None) -> InputSize:
        """The size rule of this model's generator with arguments ``args``, trained at ``train`` px."""
        fixed = getattr(args, self.size_arg) if self.fixed_input else None
        return InputSize(train=train if train is not None else fixed, multiple=self.size_multiple, fixed=fixed)


MODELS: Dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in MODELS:
        raise ValueError(f"model {spec.name!r} registered twice")
    if not dataclasses.is_dataclass(spec.args):
        raise TypeError(f"model {spec.name!r}: args must be a dataclass")
    MODELS[spec.name] = spec
    return spec


def list_models() -> List[str]:
    return sorted(MODELS)


def get_model(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(list_models())}") from None


def build_method(name: str, args: Any, loss_weights: Any) -> TranslationMethod:
    return get_model(name).build(args, loss_weights)


from . import cyclegan  # noqa: E402,F401  (registry lines: one per model file)
from . import ugatit  # noqa: E402,F401
from . import attentiongan  # noqa: E402,F401
from . import attentiongan_s1  # noqa: E402,F401
from . import multidomain  # noqa: E402,F401
