"""The run folder's owner: model cards (written, read, migrated, refused when newer), one input size, phases that
name real networks."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from conftest import TINY_CYCLEGAN, sets, unpaired
from unpaired import runfolder
from unpaired.config import ConfigError, check_input_size, read_preset, resolve
from unpaired.models.base import InputSize, Phase

LEGACY = Path(__file__).parent / "data" / "legacy_runs"


def test_card_round_trip_and_rules(tmp_path):
    cfg = resolve(read_preset("quick-ugatit"), ["model.name=ugatit", "data.load_size=36", "data.crop_size=32"])
    card = runfolder.ModelCard.for_config(cfg, "AtoB", step=7)
    assert card.input_size == InputSize(train=32, multiple=4, fixed=32) and card.args["img_size"] == 32
    card.write(tmp_path / "AtoB.json")
    again = runfolder.ModelCard.read(tmp_path / "AtoB.json")
    assert again == card and again.card_version == runfolder.CARD_VERSION
    light = runfolder.ModelCard.for_config(resolve(read_preset("quick-ugatit")), "BtoA")
    assert light.input_size == InputSize(train=64, multiple=4, fixed=None)


def test_legacy_card_is_migrated():
    card = runfolder.ModelCard.read(LEGACY / "ugatit" / "generators" / "AtoB.json")
    assert card.card_version == runfolder.CARD_VERSION and card.version == "0.1.0"
    assert card.input_size == InputSize(train=32, multiple=4, fixed=32) and card.step == 2
    light = runfolder.ModelCard.read(LEGACY / "ugatit-light" / "generators" / "AtoB.json")
    assert light.input_size.fixed is None and light.resize == "bilinear"


def test_newer_card_and_state_are_refused(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(LEGACY / "cyclegan", run)
    card = json.loads((run / "generators" / "AtoB.json").read_text())
    card.update(card_version=runfolder.CARD_VERSION + 1, version="9.0.0", model="cyclegan")
    (run / "generators" / "AtoB.json").write_text(json.dumps(card))
    from unpaired import Translator

    with pytest.raises(runfolder.CardVersionError, match=r"unpaired 9\.0\.0 .*upgrade unpaired"):
        Translator.load(run)
    path = tmp_path / "step_0000001.pt"
    torch.save({"step": 1, "format": runfolder.STATE_FORMAT + 1, "version": "9.0.0"}, path)
    with pytest.raises(runfolder.CardVersionError, match="training checkpoint format"):
        runfolder.load_training_state(path)


def test_one_input_size():
    """Set once (data.crop_size): the models tied to it follow; a different value set by hand is refused by
    --dry-run (check_input_size) and before training."""
    cfg = resolve(read_preset("selfie2anime-ugatit"), ["data.load_size=72", "data.crop_size=64"])
    check_input_size(cfg)
    assert cfg.model.img_size == 64
    multi = resolve(read_preset("faces-expressions-stargan"), ["data.load_size=40", "data.crop_size=32"])
    assert multi.model.image_size == 32
    bad = resolve(read_preset("selfie2anime-ugatit"), ["model.img_size=128"])
    with pytest.raises(ConfigError, match=r"model.img_size \(128\) must equal data.crop_size \(256\)"):
        check_input_size(bad)
    proc = unpaired("train", "selfie2anime-ugatit", "--dry-run", *sets("model.img_size=128"), ok=False)
    assert proc.returncode == 2 and "must equal data.crop_size" in proc.stderr
    proc = unpaired("train", "selfie2anime-ugatit", "--dry-run", *sets("data.load_size=72", "data.crop_size=64"))
    assert "img_size: 64" in proc.stdout


def test_phase_names_real_networks(synth_data, tmp_path):
    with pytest.raises(ValueError, match="trainable"):
        Phase("G", "G", (), lambda ctx: None)
    assert Phase("G", "G", "generators", lambda ctx: None).trainable == ("generators",)
    from unpaired.training.trainer import Trainer

    trainer = Trainer(resolve({}, [*TINY_CYCLEGAN, f"data.root={synth_data}", "train.steps=1"]), tmp_path,
                      progress=False)
    original = trainer.method.phases
    trainer.method.phases = lambda: [Phase("G", "G", ("generator",), p.loss) for p in original()[:1]]
    with pytest.raises(ValueError, match=r"'generator'.*not a network"):
        trainer.fit()


def test_importer_writes_a_run_without_a_trainer(tmp_path):
    from unpaired.compat import write_run
    from unpaired.models import get_model

    cfg = resolve({}, TINY_CYCLEGAN)
    method = get_model("cyclegan").build(cfg.model, cfg.loss)
    state = {k: v for k, v in method.state_dict().items() if k.startswith("generators.")}
    model = {"name": "cyclegan", **{k: v for k, v in vars(cfg.model).items()}}
    path = write_run(tmp_path / "run", model, state, step=5, partial=("discriminators",), overrides=TINY_CYCLEGAN)
    assert path == runfolder.latest_checkpoint(tmp_path / "run") and path.name == "step_0000005.pt"
    assert (tmp_path / "run" / "config.yaml").exists()
    card = runfolder.ModelCard.read(tmp_path / "run" / "generators" / "BtoA.json")
    assert card.step == 5 and card.model == "cyclegan" and card.input_size.train == 32
