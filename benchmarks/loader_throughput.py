"""Images per second of the training data loader alone against the training step, in one run.

    python benchmarks/loader_throughput.py                                  # synthetic 256 px set, quick preset
    python benchmarks/loader_throughput.py --data DIR --preset horse2zebra-attentiongan --workers 8 --device cuda

The loader must deliver images faster than the step consumes them, or the device waits: the printed ratio
(loader images/s ÷ step images/s) should be well above 1 with the number of workers you train with. The loader
is measured exactly as the trainer builds it (decode, resize, random crop and flip, collate, pinned memory on
CUDA), the step on batches already in memory.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    from unpaired.config import read_preset, resolve
    from unpaired.data import make_synthetic
    from unpaired.training.trainer import Trainer

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="trainA/ trainB/ folder (default: a synthetic set at --size)")
    parser.add_argument("--size", type=int, default=256, help="synthetic image size (default 256)")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or make_synthetic(Path(tmp) / "data", size=args.size, n_train=200, n_test=4)
        base = [f"data.root={data}", f"train.device={args.device}", *args.set]
        cfg = resolve(read_preset(args.preset), base)
        print(f"# {args.preset}: batch {cfg.train.batch_size}, load {cfg.data.load_size} -> crop {cfg.data.crop_size}, "
              f"device {args.device}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
              f"{platform.processor() or platform.machine()}, {platform.node()}")
        trainer = Trainer(cfg, Path(tmp) / "run", progress=False)
        batch = next(iter(trainer.make_loader()))
        batch = {k: v.to(trainer.device) for k, v in batch.items() if torch.is_tensor(v)}
        trainer.train_step(batch)  # warm-up
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(args.steps):
            trainer.train_step(batch)
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        step_rate = args.steps * cfg.train.batch_size / (time.perf_counter() - start)
        print(f"training step: {step_rate:8.1f} images/s (per domain)")
        for workers in args.workers:
            trainer.cfg.data.num_workers = workers
            loader = iter(trainer.make_loader())
            next(loader)  # start the workers
            start = time.perf_counter()
            for _ in range(args.batches):
                next(loader)
            rate = args.batches * cfg.train.batch_size / (time.perf_counter() - start)
            print(f"loader, {workers} workers: {rate:8.1f} images/s (per domain)  = {rate / step_rate:6.1f}x the step")
            del loader
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
