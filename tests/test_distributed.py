"""Data parallel under torchrun, on the CPU with gloo and 2 processes (real `unpaired train` commands).

The model: tiny CycleGAN with instance norm and no image pool; every loss is a mean over the batch (LSGAN MSE,
L1 cycle/identity, 0.5·(real+fake) per D), so the mean of the two processes' gradients is the gradient of the
global batch, and one 2-process step with batch b each equals one 1-process step with batch 2b.
"""

import json
import subprocess
import sys

import pytest

from unpaired.config import read_preset, resolve
from unpaired.data import EndlessSampler
from unpaired import runfolder as ckpt
from unpaired.training.distributed import DistInfo, per_rank_batch, rank_state
from unpaired.training.trainer import Trainer

from conftest import REPO, TINY_CYCLEGAN, sets, unpaired

COMMON = [*TINY_CYCLEGAN, "train.batch_size=4", "train.pool_size=0", "train.decay_fraction=0",
          "train.checkpoint_every=1", "train.keep_checkpoints=5"]


def torchrun(nproc, *args):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "unpaired", *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def assert_same_training_state(a, b):
    """Optimiser moments (i.e. the averaged gradients) to float tolerance (relative to the largest moment of the
    optimiser); weights likewise, except where the
    gradient is float noise around 0 (conv biases before instance norm: Adam's first steps turn noise of either
    sign into ±lr, and those biases change no output)."""
    for name in a["optimizers"]:
        sa, sb = a["optimizers"][name]["state"], b["optimizers"][name]["state"]
        assert sa.keys() == sb.keys()
        for key in ("exp_avg", "exp_avg_sq"):
            scale = max(float(sa[i][key].abs().max()) for i in sa)  # float noise is relative to the largest
            for i in sa:
                assert (sa[i][key] - sb[i][key]).abs().max() <= 1e-4 * scale, (name, i, key)
    for k, x in a["method"].items():
        y = b["method"][k]
        if x.is_floating_point():
            assert (x - y).abs().max() <= 2e-6 or k.endswith(".bias"), k


def test_two_processes_equal_one_and_resume_with_one(synth_data, tmp_path):
    run = tmp_path / "ddp"
    proc = torchrun(2, "train", "quick-cyclegan", "--out", run, "--no-progress",
                    *sets(*COMMON, f"data.root={synth_data}", "train.steps=2"))
    assert proc.stdout.count("trained 2 steps") == 1  # process 0 alone reports
    state_1 = ckpt.load_training_state(run / "checkpoints" / "step_0000001.pt")
    assert len(state_1["ranks"]) == 2

    single = Trainer(resolve(read_preset("quick-cyclegan"), [*COMMON, f"data.root={synth_data}", "train.steps=3"]),
                     tmp_path / "one", progress=False)
    single.fit(until=1)
    assert_same_training_state(ckpt.load_training_state(tmp_path / "one" / "checkpoints" / "step_0000001.pt"),
                               state_1)

    # resume the 2-process run with one process: same samples (global batch 4), so the same trajectory
    unpaired("train", "--resume", "--out", run, "--no-progress", *sets("train.steps=3"))
    single.fit()
    assert_same_training_state(single.state_dict(), ckpt.load_training_state(run / "checkpoints" / "step_0000003.pt"))
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    ref = [json.loads(line) for line in (tmp_path / "one" / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]  # one writer: no duplicated rows
    for r, s in zip(rows, ref):
        for key in ("Loss/G/total", "Loss/D/total", "Loss/G/cycle_A"):  # global-batch means on every process count
            assert r[key] == pytest.approx(s[key], rel=1e-4), (r["step"], key)
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_0000002.png", "step_0000003.png"]


def test_sharding_gives_each_process_a_block_of_the_global_batch():
    def take(sampler, n):
        it = iter(sampler)
        return [next(it) for _ in range(n)]

    one = take(EndlessSampler(start=3 * 6), 12)  # one process, batch 6, resumed at step 3
    two = [take(EndlessSampler(start=3 * 3, rank=r, world_size=2, block=3), 6) for r in range(2)]
    three = [take(EndlessSampler(start=3 * 2, rank=r, world_size=3, block=2), 4) for r in range(3)]
    for step in range(2):
        batch = one[6 * step: 6 * step + 6]
        assert two[0][3 * step: 3 * step + 3] + two[1][3 * step: 3 * step + 3] == batch
        assert sum((three[r][2 * step: 2 * step + 2] for r in range(3)), []) == batch


def test_global_batch_must_divide_and_rank_state_falls_back():
    assert per_rank_batch(8, DistInfo(1, 4, 1)) == 2
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        per_rank_batch(3, DistInfo(0, 2, 0))
    state = {"pools": "p0", "rng": "r0", "ranks": [{"pools": "a"}, {"pools": "b"}]}
    assert rank_state(state, DistInfo(1, 3, 1)) == {"pools": "b"}
    assert rank_state(state, DistInfo(2, 3, 2)) is None
    assert rank_state({"pools": "p0", "rng": "r0"}, DistInfo(0, 2, 0)) == {"pools": "p0", "rng": "r0"}

