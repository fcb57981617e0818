import pytest

from unpaired.config import ConfigError, list_presets, read_preset, resolve


def test_every_preset_resolves():
    for name in list_presets():
        cfg = resolve(read_preset(name))
        assert cfg.data.crop_size <= cfg.data.load_size, name


def test_set_overrides_with_types():
    cfg = resolve(read_preset("quick"), ["train.lr=1e-4", "train.steps=7", "data.flip=false", "model.ngf=8"])
    assert cfg.train.lr == 1e-4 and isinstance(cfg.train.lr, float)
    assert cfg.train.steps == 7 and cfg.data.flip is False and cfg.model.ngf == 8


@pytest.mark.parametrize("override, words", [
    ("train.lrr=1", ["train.lrr", "train.lr"]),
    ("trian.lr=1", ["trian.lr"]),
    ("model.ngff=3", ["model.ngff", "model.ngf"]),
    ("train.steps=many", ["train.steps", "integer", "many"]),
    ("train.precision=fp8", ["train.precision", "fp8", "bf16"]),
    ("data.flip=maybe", ["data.flip", "true or false"]),
    ("train.lr", ["key=value"]),
    ("model.name=cyclegam", ["cyclegan"]),
])
def test_bad_overrides_name_the_key(override, words):
    with pytest.raises(ConfigError) as e:
        resolve(read_preset("quick"), [override])
    for word in words:
        assert word in str(e.value)


def test_unknown_preset_suggests():
    with pytest.raises(ConfigError, match="quick"):
        read_preset("quikc")


def test_unknown_key_in_yaml_is_rejected(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  name: cyclegan\ntrain:\n  stpes: 3\n")
    with pytest.raises(ConfigError, match="train.stpes.*train.steps"):
        resolve(read_preset(str(path)))
    path.write_text("trainer:\n  steps: 3\n")
    with pytest.raises(ConfigError, match="trainer"):
        resolve(read_preset(str(path)))


def test_crop_larger_than_load_is_an_error():
    with pytest.raises(ConfigError, match="crop_size"):
        resolve(read_preset("quick"), ["data.crop_size=128", "data.load_size=64"])


def test_yaml_round_trip():
    cfg = resolve(read_preset("quick"), ["train.steps=5"])
    import yaml

    again = resolve(yaml.safe_load(cfg.to_yaml()))
    assert again.to_dict() == cfg.to_dict()


def test_switching_model_keeps_understood_settings():
    with pytest.warns(UserWarning, match="n_masks"):
        cfg = resolve(read_preset("quick"), ["model.name=cyclegan"])
    assert cfg.model_name == "cyclegan" and cfg.model.ngf == 16
