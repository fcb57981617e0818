"""The speed switches change the arithmetic only as far as their precision says: bf16 autocast, channels_last
memory format, torch.compile (opt-in test: slow on a CPU)."""

import os

import pytest
import torch

from conftest import TINY_CYCLEGAN
from unpaired.config import read_preset, resolve
from unpaired.training.trainer import Trainer


def first_steps(tmp_path, *overrides, steps=2):
    cfg = resolve(read_preset("quick"), [*TINY_CYCLEGAN, "model.name=attentiongan", "train.pool_size=0", *overrides])
    trainer = Trainer(cfg, tmp_path, progress=False)
    g = torch.Generator().manual_seed(0)
    losses = [trainer.train_step({d: torch.rand(2, 3, 32, 32, generator=g) * 2 - 1 for d in "AB"})
              for _ in range(steps)]
    return losses, trainer


def assert_losses_close(ours, reference, rel, abs):
    for mine, ref in zip(ours, reference):
        for key, value in ref.items():
            assert mine[key] == pytest.approx(value, rel=rel, abs=abs), (key, mine[key], value)


def test_bf16_autocast_stays_within_bf16_precision(tmp_path):
    reference, _ = first_steps(tmp_path / "fp32", steps=1)
    bf16, trainer = first_steps(tmp_path / "bf16", "train.precision=bf16", steps=1)
    # the first step's losses (later steps add Adam's ±lr sign steps on near-zero gradients): bf16 keeps 8 bits
    # of mantissa, ~0.4% per operation, accumulated through a dozen layers (small MSE terms: absolute 5e-3)
    assert_losses_close(bf16, reference, rel=3e-2, abs=5e-3)
    assert all(p.dtype == torch.float32 for p in trainer.method.parameters())  # weights stay float32


def test_channels_last_gives_the_same_losses(tmp_path):
    reference, _ = first_steps(tmp_path / "default")
    nhwc, trainer = first_steps(tmp_path / "nhwc", "train.channels_last=true")
    assert_losses_close(nhwc, reference, rel=1e-5, abs=1e-7)
    conv = trainer.method.generators["AtoB"].encoder.stem.conv.weight
    assert conv.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.skipif(not os.environ.get("UNPAIRED_TEST_COMPILE"), reason="compiling on a CPU takes minutes: "
                    "UNPAIRED_TEST_COMPILE=1 pytest tests/test_precision.py")
def test_compile_gives_the_same_losses(tmp_path):
    reference, _ = first_steps(tmp_path / "eager")
    compiled, trainer = first_steps(tmp_path / "compiled", "train.compile=true")
    assert_losses_close(compiled, reference, rel=1e-4, abs=1e-6)
    assert "generators.AtoB.encoder.stem.conv.weight" in trainer.method.state_dict()  # checkpoints unchanged
