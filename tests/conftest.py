import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures" / "official"

# Tiny CycleGAN used by engine tests: fast on 2 CPU cores.
TINY_CYCLEGAN = ["model.name=cyclegan", "model.ngf=8", "model.ndf=8", "model.n_blocks=2",
                 "data.load_size=36", "data.crop_size=32", "data.num_workers=0", "train.batch_size=2",
                 "train.device=cpu", "train.log_every=1", "train.sample_every=100", "train.checkpoint_every=100"]


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory) -> Path:
    from unpaired.data import make_synthetic

    return make_synthetic(tmp_path_factory.mktemp("synth"), size=32, n_train=8, n_test=4, seed=0)


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield


def unpaired(*args, cwd=None, ok=True) -> subprocess.CompletedProcess:
    """Run the real command line (``python -m unpaired ...``); fail with its output unless ``ok=False``."""
    proc = subprocess.run([sys.executable, "-m", "unpaired", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=600)
    if ok and proc.returncode != 0:
        raise AssertionError(f"unpaired {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def sets(*pairs) -> list:
    """``sets("a=1", "b=2")`` -> ``["--set", "a=1", "--set", "b=2"]``."""
    return [x for p in pairs for x in ("--set", p)]


@pytest.fixture
def one_thread():
    """One torch thread for the test (tiny networks: as fast, and far faster on a busy machine; and the same
    rounding at any core count). Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def method_from_run(run: Path):
    """The method (all networks) stored in a run folder's newest checkpoint, in eval mode, and its settings."""
    from unpaired.config import resolve
    from unpaired.models import get_model
    from unpaired.runfolder import latest_checkpoint, load_training_state

    state = load_training_state(latest_checkpoint(run))
    cfg = resolve(state["config"])
    method = get_model(cfg.model_name).build(cfg.model, cfg.loss)
    method.load_state_dict(state["method"])
    return method.eval(), cfg
