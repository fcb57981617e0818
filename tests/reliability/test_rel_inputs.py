"""Issue 18, inputs: the bad-image zoo through every reader (items 3, 7), tiny images and symlink loops in
translate (item 7), and the config bounds (item 8). Every refusal is one line naming the file or key."""

import pytest

from unpaired.cli import main
from unpaired.config import ConfigError, resolve
from unpaired.data import BadImageError, check_folder, load_rgb
from unpaired.training.trainer import Trainer

from _zoo import jpeg_bytes, make_zoo, png_header_only
from conftest import TINY_CYCLEGAN

INPUTS_TRIED = []  # figures for docs/reliability.md


@pytest.fixture(scope="module")
def tiny_run(synth_data, tmp_path_factory):
    run = tmp_path_factory.mktemp("tinyrun")
    cfg = resolve({}, TINY_CYCLEGAN + [f"data.root={synth_data}", "model.ngf=4", "model.ndf=4", "model.n_blocks=1",
                                       "train.steps=1"])
    Trainer(cfg, run, progress=False).fit()
    return run


def test_zoo_through_data_check_and_translate(synth_data, tiny_run, tmp_path, capsys):
    """Item 7 (+3): one line per bad file naming it and why; the rest translated; exit status 1; the symlink loop
    is named as one by `data check` and by translate."""
    good = synth_data / "testA" / sorted(p.name for p in (synth_data / "testA").iterdir())[0]
    zoo = make_zoo(tmp_path / "zoo", good)
    (tmp_path / "zoo" / "good.png").write_bytes(good.read_bytes())
    INPUTS_TRIED.append(len(zoo) + 1)

    problems = dict(check_folder(tmp_path / "zoo"))
    for name, (path, expected) in zoo.items():
        assert (path in problems) == (expected == "bad"), (name, problems.get(path))
    assert problems[zoo["loop.png"][0]] == "symbolic link loop"
    assert "over the limit" in problems[zoo["pixel_bomb.png"][0]]

    capsys.readouterr()
    code = main(["translate", "--checkpoint", str(tiny_run), "--input", str(tmp_path / "zoo"),
                 "--output", str(tmp_path / "out"), "--batch-size", "4"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    for name, (path, expected) in zoo.items():
        out = tmp_path / "out" / f"{path.stem}.png"
        named = [line for line in lines if line.startswith(f"{path}: ")]
        if expected == "ok":
            assert out.is_file() and not named, (name, named)
        elif expected == "bad":
            assert not out.exists() and len(named) == 1, (name, lines)
        else:  # tiny: translated, or one line naming it and why
            assert out.is_file() != bool(named), (name, named)
            assert not named or "too small" in named[0]
    assert f"{zoo['loop.png'][0]}: symbolic link loop" in lines
    assert (tmp_path / "out" / "good.png").is_file()
    assert not [p for p in (tmp_path / "out").iterdir() if p.stat().st_size == 0]


def test_tiny_images_do_not_crash_translate(synth_data, tiny_run, tmp_path, capsys):
    """Item 7: 1-4 px, 1x64, 2x64, 4x64 in one folder with a normal image: no traceback, the normal one written."""
    good = sorted((synth_data / "testA").iterdir())[0]
    zoo = make_zoo(tmp_path / "z", good)
    folder = tmp_path / "tiny"
    folder.mkdir()
    for name, (path, expected) in zoo.items():
        if expected == "tiny":
            (folder / name).write_bytes(path.read_bytes())
    (folder / "zz_good.png").write_bytes(good.read_bytes())
    code = main(["translate", "--checkpoint", str(tiny_run), "--input", str(folder), "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert (tmp_path / "o" / "zz_good.png").is_file()
    failed = [line for line in err.splitlines() if "too small" in line]
    assert code == (1 if failed else 0)
    assert any("tiny_1x1.png" in line for line in failed), err  # a 1x1 image cannot go through 2 stride-2 convs


def test_pixel_limit_in_every_reader(synth_data, tmp_path, monkeypatch):
    """Item 3: one limit (UNPAIRED_MAX_PIXELS, default Pillow's warning threshold) applied from the header by
    data check, training and evaluation (load_rgb, load_split), translate and the demo."""
    from unpaired.data.folders import load_split
    from unpaired.data.images import DEFAULT_MAX_PIXELS
    from unpaired.demo import check_payload

    assert DEFAULT_MAX_PIXELS == 89_478_485
    bomb = png_header_only(tmp_path / "bomb.png", 12000, 12000)  # 144 MP declared in 60 bytes
    with pytest.raises(BadImageError, match="over the limit of 89478485"):
        load_rgb(bomb)
    monkeypatch.setenv("UNPAIRED_MAX_PIXELS", "500")  # configurable: a 32x32 image is now too large
    image = sorted((synth_data / "testA").iterdir())[0]
    with pytest.raises(BadImageError, match="over the limit of 500"):
        load_rgb(image)
    assert "over the limit" in check_folder(synth_data / "testA")[0][1]
    with pytest.raises(BadImageError, match="over the limit"):
        load_split(synth_data / "testA", 32)
    import gradio as gr

    class Payload:
        url, path = None, str(image)

    with pytest.raises(gr.Error):
        check_payload(Payload(), 10 * 2**20, 500)


def test_demo_caps_data_urls_by_bytes_and_pixels(tmp_path):
    """Item 4: a base64 data: URL sent to the API goes through the same caps as an upload, before Gradio decodes
    it (the old demo decoded any size)."""
    import base64

    import gradio as gr

    from unpaired.demo import _capped

    big = jpeg_bytes(3000, 3000)  # 9 MP, small in bytes
    url = "data:image/jpeg;base64," + base64.b64encode(big).decode()
    component = _capped(gr.Image(type="pil"), max_bytes=len(big) * 2, max_pixels=4_000_000)
    from gradio.components.image import ImageData

    with pytest.raises(gr.Error, match="3000x3000 px refused"):
        component.preprocess(ImageData(url=url))
    small_cap = _capped(gr.Image(type="pil"), max_bytes=len(big) // 2, max_pixels=100_000_000)
    with pytest.raises(gr.Error, match="MB refused"):
        small_cap.preprocess(ImageData(url=url))
    ok = _capped(gr.Image(type="pil"), max_bytes=len(big) * 2, max_pixels=10_000_000)
    assert ok.preprocess(ImageData(url=url)).size == (3000, 3000)


@pytest.mark.parametrize("setting", ["model.ngf=0", "model.ngf=-3", "train.lr=-1", "train.lr=nan", "train.beta1=2",
                                     "train.device=cuda:abc", "model.n_blocks=-1", "model.ndf=0", "train.beta2=1",
                                     "loss.cycle=-1", "train.lr=inf", "data.load_size=0"])
def test_config_bounds_in_dry_run(setting, capsys):
    """Item 8: values that used to pass and crash later (or train silently) are refused by --dry-run, one line
    naming the key."""
    key = setting.split("=")[0]
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        resolve({}, [setting])
    assert main(["train", "quick", "--dry-run", "--set", setting]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and key in err[0], err
