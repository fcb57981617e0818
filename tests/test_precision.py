"""Speed switches change no mathematics: channels_last and torch.compile give the float32 losses, bf16 autocast
stays within its precision. Two steps each, so the second loss also checks the first update."""

import pytest
import torch

from unpaired.config import resolve
from unpaired.training.trainer import Trainer

from conftest import TINY_CYCLEGAN


def two_step_losses(data, tmp_path, *switches):
    torch.manual_seed(0)
    batches = [{d: torch.rand(2, 3, 32, 32) * 2 - 1 for d in "AB"} for _ in range(2)]
    trainer = Trainer(resolve({}, [*TINY_CYCLEGAN, f"data.root={data}", *switches]),
                      tmp_path / "_".join(switches or ["plain"]), progress=False)
    out = []
    for batch in batches:
        values = trainer.train_step(trainer.to_device(batch))
        out += [values["Loss/G/total"], values["Loss/D/total"], values["Loss/G/cycle_A"]]
    return out, trainer


def test_channels_last_gives_the_float32_losses(synth_data, tmp_path):
    plain, _ = two_step_losses(synth_data, tmp_path)
    nhwc, trainer = two_step_losses(synth_data, tmp_path, "train.channels_last=true")
    weight = trainer.method.generators["AtoB"].encoder.stem.conv.weight
    assert weight.is_contiguous(memory_format=torch.channels_last)
    assert nhwc == pytest.approx(plain, rel=1e-5)


def test_bf16_with_channels_last_stays_within_bf16_precision(synth_data, tmp_path):
    plain, _ = two_step_losses(synth_data, tmp_path)
    fast, _ = two_step_losses(synth_data, tmp_path, "train.precision=bf16", "train.channels_last=true")
    assert fast == pytest.approx(plain, rel=0.05)


@pytest.mark.slow  # about 80 s on a 2-core CPU (inductor compiles forward and backward); pytest -m slow
def test_compile_gives_the_eager_losses_and_checkpoint_names(synth_data, tmp_path):
    eager, ref = two_step_losses(synth_data, tmp_path)
    compiled, trainer = two_step_losses(synth_data, tmp_path, "train.compile=true")
    assert compiled == pytest.approx(eager, rel=1e-4)
    assert trainer.method.state_dict().keys() == ref.method.state_dict().keys()  # no "_orig_mod." prefixes
