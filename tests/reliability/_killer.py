"""Train in a child process that dies by SIGKILL at a chosen point (tests/reliability/test_rel_kills.py).

A plan says where: ``("write", name, nth, fraction)``: during the ``nth`` atomic write of a file whose name
starts with ``name`` (``step_`` checkpoints, ``AtoB.safetensors``, ...), after ``fraction`` of its bytes reached
the temporary file; ``("step", n)``: ``n`` optimisation steps after it started (or resumed); ``("none",)``: run to the end (an
external timer may still kill it). The kill is a real ``kill -9`` of the process itself: no handler runs.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def child(config: dict, run_dir: str, resume: bool, plan: tuple) -> None:
    import torch

    torch.set_num_threads(1)
    from unpaired import runfolder
    from unpaired.config import resolve
    from unpaired.training.trainer import Trainer

    if plan[0] == "write":
        _, name, nth, fraction = plan
        seen = {"n": 0}
        original = runfolder.atomic_write

        def atomic_write(path, write):
            if not Path(path).name.startswith(name):
                return original(path, write)
            seen["n"] += 1
            if seen["n"] < nth:
                return original(path, write)

            def partial(tmp):
                write(tmp)
                size = os.path.getsize(tmp)
                with open(tmp, "r+b") as f:
                    f.truncate(int(size * fraction))
                die()

            return original(path, partial)

        runfolder.atomic_write = atomic_write
    elif plan[0] == "step":
        original_step = Trainer.train_step
        counted = {"n": 0}

        def train_step(self, *a, **k):
            out = original_step(self, *a, **k)
            counted["n"] += 1
            if counted["n"] >= plan[1]:
                die()
            return out

        Trainer.train_step = train_step
    trainer = Trainer(resolve(config), Path(run_dir), resume=resume, progress=False)
    trainer.fit()
