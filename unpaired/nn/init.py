"""Weight initialisation as the official CycleGAN/AttentionGAN code (``init_net``)."""

from __future__ import annotations

from torch import nn


def init_weights(module: nn.Module, kind: str = "normal", gain: float = 0.02) -> nn.Module:
    """Conv/ConvTranspose/Linear weights ~ N(0, gain) (or xavier/kaiming/orthogonal), biases 0;
    BatchNorm weights ~ N(1, gain), biases 0. ``kind='default'`` keeps PyTorch's own initialisation."""
    if kind == "default":
        return module

    def init(m: nn.Module) -> None:
        name = type(m).__name__
        if hasattr(m, "weight") and ("Conv" in name or "Linear" in name) and m.weight is not None:
            if kind == "normal":
                nn.init.normal_(m.weight, 0.0, gain)
            elif kind == "xavier":
                nn.init.xavier_normal_(m.weight, gain=gain)
            elif kind == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            elif kind == "orthogonal":
                nn.init.orthogonal_(m.weight, gain=gain)
            else:
                raise ValueError(f"unknown init {kind!r}; choose normal, xavier, kaiming, orthogonal or default")
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif "BatchNorm2d" in name and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)

    module.apply(init)
    return module
