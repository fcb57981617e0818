"""Data-parallel training under torchrun (gloo on the CPU, 2 processes), mixed precision and memory format.

The DDP equivalence: with a loss that is a mean over the batch (CycleGAN without the image pool: LSGAN, L1
cycle and identity are means; instance norm is per-sample), one step of 2 processes with batch b each must
give the parameters of one single-process step with batch 2b: the processes take the global sample counters
n·2 + rank, i.e. together exactly the samples of the single-process batch.
"""

import sys

import pytest
import torch
from safetensors.torch import load_file

from conftest import REPO, TINY_CYCLEGAN, sets, unpaired
from unpaired.training.checkpoint import load_training_state

NO_POOL = [*TINY_CYCLEGAN, "train.pool_size=0", "train.steps=1", "train.checkpoint_every=1"]


def torchrun(*args, nproc=2):
    import os
    import subprocess

    env = {**os.environ, "OMP_NUM_THREADS": "1", "UNPAIRED_DIST_BACKEND": "gloo"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                           "-m", "unpaired", *map(str, args)], capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=600)
    if proc.returncode != 0:
        raise AssertionError(f"torchrun failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def weights(run):
    state = load_training_state(sorted((run / "checkpoints").glob("step_*.pt"))[-1])
    return state, state["method"]


def test_two_processes_equal_one_process_with_twice_the_batch(tmp_path, synth_data):
    torchrun("train", "quick", "--data", synth_data, "--out", tmp_path / "ddp", "--no-progress",
             *sets(*NO_POOL, "train.batch_size=2"))
    unpaired("train", "quick", "--data", synth_data, "--out", tmp_path / "single", "--no-progress",
             *sets(*NO_POOL, "train.batch_size=4"))
    ddp_state, ddp = weights(tmp_path / "ddp")
    single_state, single = weights(tmp_path / "single")
    assert ddp_state["world_size"] == 2 and ddp_state["samples_seen"] == single_state["samples_seen"] == 4
    # Conv biases in front of an instance norm have an exactly-zero gradient; in float32 it is rounding noise
    # of either sign, which Adam's first step turns into ±lr. Find them in float64, allow them 2·lr.
    noise_only = exactly_zero_gradients(synth_data)
    assert noise_only and all(k.endswith(".bias") for k in noise_only)
    lr = single_state["config"]["train"]["lr"]
    for key, value in single.items():
        atol = 2.2 * lr if key in noise_only else 2e-6
        torch.testing.assert_close(ddp[key], value, rtol=1e-4, atol=atol, msg=key)
    for direction in ("AtoB", "BtoA"):  # rank 0 wrote the inference weights
        ours = load_file(tmp_path / "ddp" / "generators" / f"{direction}.safetensors")
        assert ours.keys() == load_file(tmp_path / "single" / "generators" / f"{direction}.safetensors").keys()


def exactly_zero_gradients(data) -> set:
    from unpaired.config import read_preset, resolve
    from unpaired.training.trainer import Trainer

    cfg = resolve(read_preset("quick"), [*NO_POOL, "train.batch_size=4", f"data.root={data}"])
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, tmp, progress=False)
        trainer.method.double()
        g = torch.Generator().manual_seed(0)
        trainer.train_step({d: torch.rand(4, 3, 32, 32, generator=g, dtype=torch.float64) * 2 - 1 for d in "AB"})
        return {name for name, p in trainer.method.named_parameters() if p.grad.abs().max() < 1e-12}


def test_two_process_run_resumes_with_one_process(tmp_path, synth_data):
    run = tmp_path / "run"
    proc = torchrun("train", "quick", "--data", synth_data, "--out", run, "--no-progress",
                    *sets(*TINY_CYCLEGAN, "train.steps=2", "train.checkpoint_every=2"))
    assert proc.stdout.count("trained 2 steps") == 2  # both processes finish; only rank 0 wrote files
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step_0000002.pt"]
    assert len((run / "stats.jsonl").read_text().splitlines()) == 2
    unpaired("train", "--resume", "--out", run, "--no-progress", *sets("train.steps=3", "train.checkpoint_every=1"))
    state = load_training_state(run / "checkpoints" / "step_0000003.pt")
    assert state["step"] == 3 and state["world_size"] == 1
    assert state["samples_seen"] == 2 * 2 * 2 + 2  # 2 steps × 2 processes × batch 2, then one step of batch 2
