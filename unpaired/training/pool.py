"""The image history pool of Shrivastava et al. (2017), as CycleGAN uses it, with its own RNG.

Until ``size`` images are stored, each new fake is stored and returned as it is; afterwards each new
fake, with probability 0.5, replaces a random stored one, which is returned in its place.
"""

from __future__ import annotations

from typing import Dict, List

import torch
from torch import Tensor


class ImagePool:
    def __init__(self, size: int = 50, seed: int = 0):
        self.size = size
        self.images: List[Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, images: Tensor) -> Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self.generator).item() > 0.5:
                i = int(torch.randint(0, self.size, (), generator=self.generator))
                out.append(self.images[i].clone())
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> Dict[str, object]:
        return {"images": [im.cpu() for im in self.images], "generator": self.generator.get_state()}

    def load_state_dict(self, state: Dict[str, object], device=None) -> None:
        self.images = [im.to(device) for im in state["images"]]
        self.generator.set_state(state["generator"])
