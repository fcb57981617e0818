import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
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


# Every test computes with the same number of CPU threads on every machine, whatever OMP_NUM_THREADS says and
# however many cores there are: a float reduction split over a different number of threads sums in another order,
# and a trained model (tests/test_metrics.py trains one) then ends with other weights. Two threads on one core only
# cost time. The command-line subprocesses get the same count through their environment (see ``unpaired``).
TEST_THREADS = 2
THREAD_ENV = {name: str(TEST_THREADS) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}


@pytest.fixture(autouse=True)
def _fixed_threads_and_seeds():
    """Fixed threads, and the global random generators seeded per test: a test that draws ``torch.rand`` without
    a generator gets the same numbers whichever tests ran before it (``-k``, ``-x``, another order)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(TEST_THREADS)
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    yield
    torch.set_num_threads(threads)


def perturbed_generator(name: str, **kwargs) -> torch.nn.Module:
    """A generator of the registry in eval mode with random weights of non-trivial statistics: the training
    initialisation, then every parameter (norm affines and rho included) moved by N(0, 0.1)."""
    from unpaired.models import get_model

    spec = get_model(name)
    torch.manual_seed(0)
    g = spec.build_generator(spec.args(**kwargs)).eval()
    with torch.no_grad():
        for p in g.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return g


def unpaired(*args, cwd=None, ok=True) -> subprocess.CompletedProcess:
    """Run the real command line (``python -m unpaired ...``) with ``TEST_THREADS`` threads; fail with its output
    unless ``ok=False``."""
    proc = subprocess.run([sys.executable, "-m", "unpaired", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=600, env={**os.environ, **THREAD_ENV})
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


# ----------------------------------------------------------------------------------------------------------
# one line at the end naming the groups of skipped tests and why


def _skip_group(reason: str) -> str:
    if "fixtures" in reason:
        return f"official fixtures ({FIXTURES} not found)"
    if "BROWSER" in reason:
        return "browser test (" + reason.split(": ", 1)[-1].split(". Install")[0] + "; `make browser` installs it)"
    if "shared/data" in reason:
        return f"real face photos ({REPO.parent / 'shared' / 'data'} not found)"
    return reason


def pytest_unconfigure(config):
    """After pytest's own summary lines, so that it is the last line of the run."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    groups = {}
    for report in (reporter.stats.get("skipped", []) if reporter else []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        group = _skip_group(reason.removeprefix("Skipped: "))
        groups[group] = groups.get(group, 0) + 1
    if groups:
        line = "; ".join(f"{group}: {n} test{'s' * (n != 1)}" for group, n in groups.items())
        reporter.write_line(f"SKIPPED GROUPS: {line}", yellow=True, bold=True)
