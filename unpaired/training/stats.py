"""Training statistics: averaged per logging interval, written to ``stats.jsonl`` and TensorBoard.

Names follow stylegan3's hierarchy: ``Loss/G/cycle_A``, ``Loss/D/fake_B``, ``Progress/lr``,
``Timing/sec_per_step``, ``Resources/peak_gpu_mem_gb``.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Dict, Optional


class StatsWriter:
    def __init__(self, run_dir: Path, tensorboard: bool = True):
        self.path = Path(run_dir) / "stats.jsonl"
        self.sums: Dict[str, float] = defaultdict(float)
        self.counts: Dict[str, int] = defaultdict(int)
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))
            except ImportError:  # tensorboard is a dependency, but a broken install must not stop training
                self.tb = None

    def add(self, name: str, value: float) -> None:
        self.sums[name] += float(value)
        self.counts[name] += 1

    def flush(self, step: int) -> Dict[str, float]:
        """Write the averages since the last flush (``step`` = completed steps); return them."""
        means = {k: self.sums[k] / self.counts[k] for k in sorted(self.sums)}
        self.sums.clear()
        self.counts.clear()
        if not means:
            return means
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, "time": round(time.time(), 3), **means}) + "\n")
        if self.tb is not None:
            for k, v in means.items():
                self.tb.add_scalar(k, v, step)
            self.tb.flush()
        return means

    def image(self, name: str, image_chw, step: int) -> None:
        if self.tb is not None:
            self.tb.add_image(name, image_chw, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def read_stats(run_dir: Path) -> list:
    path = Path(run_dir) / "stats.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def peak_memory_gb(device) -> Optional[float]:
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return None
