"""Issue 18, files a user did not write and outputs that cannot be written: poisoned pickles in every cache and
checkpoint path (item 1; the payload would create a file, asserted absent), generator cards and safetensors files
that do not fit (items 2, 9), NaN weights (item 5), a truncated newest checkpoint (item 6), read-only folders
and a full disk (item 9)."""

import errno
import json
import os
from pathlib import Path

import pytest
import torch

from unpaired import runfolder
from unpaired.cli import main
from unpaired.config import resolve
from unpaired.inference import Translator
from unpaired.training.trainer import NonFiniteLossError, Trainer

from conftest import TINY_CYCLEGAN

PAYLOADS_REFUSED = []


class Payload:
    """A pickle that creates ``marker`` when loaded with weights_only=False."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def tiny_cfg(data, *extra):
    return resolve({}, TINY_CYCLEGAN + [f"data.root={data}", "model.ngf=4", "model.ndf=4", "model.n_blocks=1",
                                        *extra])


@pytest.fixture(scope="module")
def tiny_run(synth_data, tmp_path_factory):
    run = tmp_path_factory.mktemp("run") / "run"
    Trainer(tiny_cfg(synth_data, "train.steps=2", "train.checkpoint_every=1"), run, progress=False).fit()
    return run


def _copy_run(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_poisoned_inception_weights_refused(tmp_path, monkeypatch):
    from unpaired.metrics.fidelity import INCEPTION_FILE, MissingWeightsError, inception_weights

    marker = tmp_path / "pwned"
    hub = tmp_path / "torch_home" / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    torch.save({"w": Payload(marker)}, hub / "checkpoints" / INCEPTION_FILE)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    monkeypatch.delenv("UNPAIRED_INCEPTION_WEIGHTS", raising=False)
    with pytest.raises(MissingWeightsError, match="refused"):
        inception_weights()  # the hub cache: torch-fidelity would load it with weights_only=False
    with pytest.raises(MissingWeightsError, match="refused"):
        inception_weights(str(hub / "checkpoints" / INCEPTION_FILE))  # --inception-weights
    assert not marker.exists()
    PAYLOADS_REFUSED.extend(["hub inception", "--inception-weights"])


def test_poisoned_feature_cache_never_loaded(tmp_path, monkeypatch):
    """UNPAIRED_CACHE holding torch-fidelity's pickled entries (exactly the names it looks for) runs nothing; our
    cache is safetensors, and a second call reads it back to the same scores."""
    import torch_fidelity

    from unpaired.metrics.fidelity import fidelity_scores

    g = torch.Generator().manual_seed(0)
    fake = torch.randint(0, 255, (8, 3, 32, 32), dtype=torch.uint8, generator=g)
    real = torch.randint(0, 255, (8, 3, 32, 32), dtype=torch.uint8, generator=g)
    seen = []  # the file names torch-fidelity caches under
    original = torch_fidelity.calculate_metrics

    def spy(**kw):
        out = original(**kw)
        seen.extend(p.name for p in Path(kw["cache_root"]).glob("*.pt"))
        return out

    cache = tmp_path / "cache"
    monkeypatch.setenv("UNPAIRED_CACHE", str(cache))
    monkeypatch.setattr(torch_fidelity, "calculate_metrics", spy)
    first = fidelity_scores(fake, real, feature_extractor="unpaired-tiny", real_cache="unpaired-real-x")
    assert seen and all(n.startswith("unpaired-real-x") for n in seen)
    stored = sorted(p.name for p in cache.iterdir())
    assert stored and all(n.endswith(".safetensors") for n in stored)
    marker = tmp_path / "pwned"
    for n in seen:  # poison: the pickles torch-fidelity would load
        torch.save(Payload(marker), cache / n)
    for p in cache.glob("*.safetensors"):  # and our own entries: garbage in place of safetensors
        p.write_bytes(b"\x08\0\0\0\0\0\0\0{}garbage")
    again = fidelity_scores(fake, real, feature_extractor="unpaired-tiny", real_cache="unpaired-real-x")
    assert not marker.exists()
    assert again["fid"] == pytest.approx(first["fid"], rel=1e-5)
    third = fidelity_scores(fake, real, feature_extractor="unpaired-tiny", real_cache="unpaired-real-x")
    assert third["fid"] == pytest.approx(first["fid"], rel=1e-5)
    PAYLOADS_REFUSED.extend(f"feature cache {n}" for n in sorted(set(seen)))


def test_poisoned_checkpoint_refused(tiny_run, synth_data, tmp_path, capsys):
    run = _copy_run(tiny_run, tmp_path / "run")
    marker = tmp_path / "pwned"
    step = runfolder.checkpoint_path(run, 3)
    torch.save({"step": 3, "method": Payload(marker)}, step)
    with pytest.raises(RuntimeError, match="step_0000003.pt"):
        Translator.load(step)
    assert main(["translate", "--checkpoint", str(step), "--input", str(tmp_path), "--output", str(tmp_path / "o")]) != 0
    trainer = Trainer(tiny_cfg(synth_data, "train.steps=3"), run, resume=True, progress=False)  # falls back
    assert trainer.step == 2
    assert not marker.exists()
    PAYLOADS_REFUSED.extend(["checkpoint (translate)", "checkpoint (--resume)"])


def test_card_that_would_allocate_180_gb_is_refused_before_building(tiny_run, tmp_path):
    """Item 2: ngf 50000 in the card, weights of ngf 4: refused from the safetensors header, naming the file."""
    run = _copy_run(tiny_run, tmp_path / "run")
    card = run / "generators" / "AtoB.json"
    data = json.loads(card.read_text())
    data["args"]["ngf"] = 50000
    card.write_text(json.dumps(data))
    # "before building": the card's network is made on the meta device only (no memory), never with real weights;
    # checked on the layers made, not with a timing (which machine load varies)
    devices = []
    real_init = torch.nn.Conv2d.__init__

    def init(self, *a, **k):
        real_init(self, *a, **k)
        devices.append(self.weight.device.type)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.nn.Conv2d, "__init__", init)
        with pytest.raises(ValueError, match=r"AtoB\.safetensors: does not fit .*AtoB\.json"):
            runfolder.load_generator(run / "generators" / "AtoB.safetensors")
    assert devices and set(devices) == {"meta"}, devices


@pytest.mark.parametrize("damage", ["wrong_shapes", "missing_keys", "huge_header", "not_safetensors"])
def test_bad_safetensors_one_line_naming_the_file(tiny_run, tmp_path, capsys, damage):
    """Item 9: bad generator files: one line naming the path, exit status 1, no traceback."""
    from safetensors.torch import load_file, save_file

    run = _copy_run(tiny_run, tmp_path / "run")
    weights = run / "generators" / "AtoB.safetensors"
    state = load_file(str(weights))
    if damage == "wrong_shapes":
        save_file({k: torch.zeros(2, *v.shape[1:]) if v.dim() else v for k, v in state.items()}, str(weights))
    elif damage == "missing_keys":
        save_file(dict(list(state.items())[:3]), str(weights))
    elif damage == "huge_header":
        weights.write_bytes((2**62).to_bytes(8, "little") + b"{}")
    else:
        weights.write_bytes(b"hello")
    image = tmp_path / "in.png"
    image.write_bytes(b"")  # never reached: the generator is refused first
    code = main(["translate", "--checkpoint", str(run), "--input", str(image), "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code in (1, 2) and len(err) == 1 and str(weights) in err[0], err


def test_nan_weights_never_written(synth_data, tmp_path):
    """Item 5: write_run refuses non-finite weights (nothing of that step is written); a NaN run stops naming a
    checkpoint whose weights are all finite."""
    cfg = tiny_cfg(synth_data, "train.steps=2", "train.checkpoint_every=1")
    trainer = Trainer(cfg, tmp_path / "a", progress=False)
    trainer.fit(until=1)
    state = trainer.state_dict()
    next(iter(state["method"].values())).fill_(float("nan"))
    with pytest.raises(runfolder.NonFiniteWeightsError):
        runfolder.write_run(tmp_path / "a", cfg, {**state, "step": 5}, trainer.method.generators)
    assert not runfolder.checkpoint_path(tmp_path / "a", 5).exists()
    with pytest.raises(NonFiniteLossError, match=r"last good checkpoint: .*step_0000001\.pt"):
        trainer.save()  # the trainer says which checkpoint is good

    blow = Trainer(tiny_cfg(synth_data, "train.steps=30", "train.checkpoint_every=1", "train.lr=1e8"), tmp_path / "b",
                   progress=False)
    with pytest.raises(NonFiniteLossError) as err:
        blow.fit()
    named = str(err.value).split("last good checkpoint: ")[1].split(". ")[0]
    for path in runfolder.list_checkpoints(tmp_path / "b"):
        state = runfolder.load_training_state(path)
        assert all(torch.isfinite(v).all() for v in state["method"].values() if v.is_floating_point()), path
    if named != "none yet":
        assert os.path.exists(named)
    for f in (tmp_path / "b" / "generators").glob("*.safetensors"):
        from safetensors.torch import load_file

        assert all(torch.isfinite(v).all() for v in load_file(str(f)).values()), f


def test_truncated_newest_checkpoint_skipped(tiny_run, synth_data, tmp_path, caplog):
    """Item 6: a truncated newest checkpoint is skipped, with a warning, for the newest intact one."""
    run = _copy_run(tiny_run, tmp_path / "run")
    newest = runfolder.checkpoint_path(run, 2)
    newest.write_bytes(newest.read_bytes()[:5000])
    assert runfolder.latest_checkpoint(run).name == "step_0000001.pt"
    assert "truncated" in caplog.text
    trainer = Trainer(tiny_cfg(synth_data, "train.steps=3"), run, resume=True, progress=False)
    assert trainer.step == 1
    t = Translator.load(run)  # generators/ are step 2's, the newest intact checkpoint is step 1: from the checkpoint
    assert {c.step for c in t.cards.values()} == {1}


def _enospc(*a, **k):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_full_disk_and_read_only_outputs(tiny_run, synth_data, tmp_path, capsys, monkeypatch):
    """Item 9: translate onto a full disk / a read-only folder, training onto a full disk: one line naming the
    path, exit status 1 or 2, no 0-byte PNG or temporary file left."""
    from PIL import Image

    image = sorted((synth_data / "testA").iterdir())[0]
    out = tmp_path / "out"
    original_save = Image.Image.save

    def half_then_full(self, fp, *a, **k):
        with open(fp, "wb") as f:
            f.write(b"\x89PNG")
        _enospc()

    monkeypatch.setattr(Image.Image, "save", half_then_full)
    code = main(["translate", "--checkpoint", str(tiny_run), "--input", str(image), "--output", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code in (1, 2) and len(err) == 1 and str(out / image.stem) in err[0] and "No space" in err[0], err
    assert list(out.iterdir()) == []  # no 0-byte or half PNG, no temp file
    monkeypatch.setattr(Image.Image, "save", original_save)

    import tempfile

    def read_only(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    code = main(["translate", "--checkpoint", str(tiny_run), "--input", str(image), "--output", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code in (1, 2) and len(err) == 1 and str(out) in err[0] and "Read-only" in err[0], err
    monkeypatch.undo()

    run = tmp_path / "run"
    preset = tmp_path / "tiny.yaml"
    preset.write_text(tiny_cfg(synth_data, "train.steps=1").to_yaml())

    def full_save(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"PK")
        _enospc()

    monkeypatch.setattr(torch, "save", full_save)
    code = main(["train", str(preset), "--out", str(run), "--no-progress"])
    err = [line for line in capsys.readouterr().err.strip().splitlines() if "error" in line]
    assert code == 1 and len(err) == 1 and "step_0000001.pt" in err[0] and "No space" in err[0], err
    assert not list(run.rglob(".*.tmp")) and runfolder.list_checkpoints(run) == []
