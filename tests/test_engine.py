"""The training engine: resume continues exactly, checkpoints survive crashes, NaN stops the run cleanly."""

import pytest
import torch

from unpaired.config import resolve
from unpaired import runfolder as ckpt
from unpaired.training.trainer import NonFiniteLossError, Trainer, lr_factor

from conftest import TINY_CYCLEGAN


def tiny_cfg(data, *extra):
    return resolve({}, [*TINY_CYCLEGAN, f"data.root={data}", *extra])


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_resume_equals_uninterrupted(synth_data, tmp_path):
    cfg = tiny_cfg(synth_data, "train.steps=3", "train.pool_size=2", "train.checkpoint_every=2")
    straight = Trainer(cfg, tmp_path / "straight", progress=False)
    straight.fit()

    first = Trainer(cfg, tmp_path / "split", progress=False)
    first.fit(until=2)
    assert ckpt.latest_checkpoint(tmp_path / "split").name == "step_0000002.pt"
    del first
    torch.manual_seed(12345)  # resuming must restore every RNG itself
    resumed = Trainer(cfg, tmp_path / "split", resume=True, progress=False)
    assert resumed.step == 2
    resumed.fit()
    assert_same_state(straight.method.state_dict(), resumed.method.state_dict())
    for name in straight.optimizers:
        sa = straight.optimizers[name].state_dict()["state"]
        sb = resumed.optimizers[name].state_dict()["state"]
        for i in sa:
            assert torch.equal(sa[i]["exp_avg"], sb[i]["exp_avg"])


def test_crash_during_save_keeps_last_checkpoint(synth_data, tmp_path, monkeypatch):
    trainer = Trainer(tiny_cfg(synth_data, "train.steps=2", "train.checkpoint_every=1"), tmp_path, progress=False)
    trainer.fit()
    good = ckpt.latest_checkpoint(tmp_path)
    assert good.name == "step_0000002.pt"

    def broken_save(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    trainer.step = 3
    with pytest.raises(OSError, match="disk full"):
        trainer.save()
    monkeypatch.undo()
    assert ckpt.latest_checkpoint(tmp_path) == good
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.endswith(".tmp")]
    state = ckpt.load_training_state(good)
    assert state["step"] == 2


def test_nan_loss_stops_with_last_good_checkpoint(synth_data, tmp_path):
    trainer = Trainer(tiny_cfg(synth_data, "train.steps=4", "train.checkpoint_every=1"), tmp_path, progress=False)
    original = trainer.method.generator_loss

    def poisoned(ctx):
        out = original(ctx)
        if ctx.step == 2:
            out.total = out.total * float("nan")
        return out

    trainer.method.generator_loss = poisoned
    with pytest.raises(NonFiniteLossError, match="step 3.*last good checkpoint.*step_0000002.pt"):
        trainer.fit()
    assert ckpt.latest_checkpoint(tmp_path).name == "step_0000002.pt"
    assert ckpt.load_training_state(ckpt.latest_checkpoint(tmp_path))["step"] == 2


def test_checkpoints_load_weights_only_and_are_pruned(synth_data, tmp_path):
    trainer = Trainer(tiny_cfg(synth_data, "train.steps=4", "train.checkpoint_every=1", "train.keep_checkpoints=2"),
                      tmp_path, progress=False)
    trainer.fit()
    names = [p.name for p in ckpt.list_checkpoints(tmp_path)]
    assert names == ["step_0000003.pt", "step_0000004.pt"]
    state = torch.load(tmp_path / "checkpoints" / names[-1], weights_only=True)
    assert state["step"] == 4 and state["config"]["model"]["name"] == "cyclegan"
    assert (tmp_path / "config.yaml").exists() and (tmp_path / "stats.jsonl").exists()
    assert (tmp_path / "generators" / "AtoB.safetensors").exists()
    assert list((tmp_path / "samples").glob("step_*.png"))


def test_lr_schedule_constant_then_linear():
    assert lr_factor(0, 100, 0.5) == 1.0 and lr_factor(50, 100, 0.5) == 1.0
    assert lr_factor(75, 100, 0.5) == pytest.approx(0.5)
    assert lr_factor(99, 100, 0.5) == pytest.approx(0.02)
    assert lr_factor(99, 100, 0.0) == 1.0


def test_bf16_autocast_step_runs_and_stays_close(synth_data, tmp_path):
    batch = {"A": torch.rand(2, 3, 32, 32) * 2 - 1, "B": torch.rand(2, 3, 32, 32) * 2 - 1}
    losses = {}
    for precision in ("fp32", "bf16"):
        trainer = Trainer(tiny_cfg(synth_data, f"train.precision={precision}"), tmp_path / precision, progress=False)
        losses[precision] = trainer.train_step(batch)["Loss/G/total"]
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.05)


def test_evaluation_during_training_is_logged(synth_data, tmp_path):
    from unpaired.training.stats import read_stats

    trainer = Trainer(tiny_cfg(synth_data, "train.steps=2", "train.eval_every=2", "train.eval_metrics=fid,kid,masks",
                               "train.eval_images=4"), tmp_path, progress=False)
    trainer.fit()
    rows = [r for r in read_stats(tmp_path) if "Eval/AtoB/fid" in r]
    assert rows and rows[-1]["step"] == 2
    assert "Eval/AtoB/kid_x100" in rows[-1] and "Eval/BtoA/background_psnr" in rows[-1]
    assert "Eval/BtoA/attention_iou" not in rows[-1]  # CycleGAN predicts no attention
    assert trainer.method.training
