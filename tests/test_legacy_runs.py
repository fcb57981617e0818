"""Run folders written by unpaired before the model card (commit 737f584; tests/data/legacy_runs/make_legacy_runs.py)
still load and translate as they did, within 1/255."""

from pathlib import Path

import pytest
from safetensors.torch import load_file

from unpaired.inference import Translator, run_any_size

LEGACY = Path(__file__).parent / "data" / "legacy_runs"
RUNS = ["cyclegan", "attentiongan", "ugatit-light", "ugatit"]


@pytest.mark.parametrize("name", RUNS)
def test_legacy_run_translates_as_before(name):
    inputs = load_file(str(LEGACY / "inputs.safetensors"))
    expected = load_file(str(LEGACY / name / "expected.safetensors"))
    translator = Translator.load(LEGACY / name)
    checked = 0
    for key, want in expected.items():
        direction, x, field = key.split(".")
        out = run_any_size(translator.generator(direction), inputs[x], size=translator.cards[direction].input_size)
        got = getattr(out, field)
        assert got is not None and got.shape == want.shape, key
        assert (got - want).abs().max().item() <= 1 / 255, key
        checked += 1
    assert checked >= 2


@pytest.mark.parametrize("name", RUNS)
def test_legacy_config_resolves(name):
    from unpaired.config import read_preset, resolve

    cfg = resolve(read_preset(str(LEGACY / name / "config.yaml")))
    assert cfg.model_name == name and cfg.data.crop_size == 32
