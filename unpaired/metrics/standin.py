"""Feature extractors for FID/KID besides the standard Inception, registered with torch-fidelity.

* ``unpaired-tiny``: a small convolutional network with fixed random weights (seed 0) and 64-d
  features. No download, runs anywhere in milliseconds: what the tests use, and a sanity check.
  Numbers from it are NOT comparable with published FID/KID (those use Inception-v3 pool3).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch_fidelity import FeatureExtractorBase, register_feature_extractor
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY


class EagerFeatureExtractor(FeatureExtractorBase):
    """What our extractors share: uint8 N×3×H×W in, eager mode (torch-fidelity never compiles them), one
    default feature layer ``DEFAULT`` for every metric."""

    DEFAULT = ""

    @classmethod
    def get_default_feature_layer_for_metric(cls, metric):
        return cls.DEFAULT

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 3, 64, 64, dtype=torch.uint8)


class TinyFeatureExtractor(EagerFeatureExtractor):
    INPUT_SIZE = 64
    DEFAULT = "64"

    def __init__(self, name, features_list, **kwargs):
        super().__init__(name, features_list)
        generator = torch.Generator().manual_seed(0)
        layers, channels = [], 3
        for width in (16, 32, 64):
            conv = nn.Conv2d(channels, width, 3, stride=2, padding=1)
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * (2.0 / (9 * channels)) ** 0.5)
                conv.bias.zero_()
            layers += [conv, nn.ReLU()]
            channels = width
        self.net = nn.Sequential(*layers)
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def get_provided_features_list():
        return ("64",)

    def forward(self, x):
        x = x.float() / 127.5 - 1.0
        x = F.interpolate(x, size=(self.INPUT_SIZE, self.INPUT_SIZE), mode="bilinear", align_corners=False)
        features = self.net(x).mean(dim=(2, 3)).double()
        return (features,)


def register() -> None:
    if "unpaired-tiny" not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor("unpaired-tiny", TinyFeatureExtractor)
