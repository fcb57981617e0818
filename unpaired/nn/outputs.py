"""The output dataclasses every generator and discriminator returns (design.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from torch import Tensor


@dataclass
class GeneratorOutput:
    """What every generator's ``forward(x)`` returns (design.md).

    image:     N×C×H×W in [-1, 1].
    attention: N×K×H×W or None. Scheme II: K masks summing to 1, the LAST is the background mask
               (it keeps the input). Scheme I: K=1, the foreground mask (1 = take the content).
    content:   N×(C·(K−1))×H×W or None: the content images the masks select from.
    cam_logit: N×2 or None (U-GAT-IT auxiliary classifier logits: GAP then GMP).
    heatmap:   N×1×h×w or None (U-GAT-IT channel-summed attention feature map).
    """

    image: Tensor
    attention: Optional[Tensor] = None
    content: Optional[Tensor] = None
    cam_logit: Optional[Tensor] = None
    heatmap: Optional[Tensor] = None

    def foreground(self) -> Optional[Tensor]:
        """N×1×H×W in [0, 1]: where the output departs from the input (None without attention masks)."""
        if self.attention is None:
            return None
        if self.attention.shape[1] == 1:
            return self.attention
        return 1.0 - self.attention[:, -1:]


@dataclass
class DiscriminatorOutput:
    """logits: the real/fake map. cam_logit, heatmap: U-GAT-IT. class_logits: N×c_dim domain
    classification (multi-domain models: StarGAN's auxiliary classifier)."""

    logits: Tensor
    cam_logit: Optional[Tensor] = None
    heatmap: Optional[Tensor] = None
    class_logits: Optional[Tensor] = None
