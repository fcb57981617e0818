"""Is the data loader fast enough? Images/s of the training loader alone versus the training step, same run.

    python benchmarks/loader_throughput.py                           # synthetic 256 px set, quick preset at 64 px
    python benchmarks/loader_throughput.py --data DIR --preset horse2zebra-attentiongan --workers 0,4,8 --device cuda

For each worker count it builds the ``Trainer`` of the preset (``data.num_workers`` = that count; persistent
workers, prefetching, pinned memory on CUDA, as in training) and times
  * the loader alone: ``--batches`` batches from ``Trainer.make_loader()`` (decode, resize, crop, flip,
    collate), after the first batch (worker start-up) is drawn; use many more batches than
    workers × ``data.prefetch_factor`` so batches prefetched during start-up do not count much;
  * training: as many steps of the real loop (next batch, ``to_device``, ``train_step``).
Ratio > 1 means the loader delivers faster than the step consumes: the step is the bottleneck. Images are
training pairs (one A and one B image).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def loader_rate(loader_iter, batches: int, batch: int) -> float:
    start = time.perf_counter()
    for _ in range(batches):
        next(loader_iter)
    return batches * batch / (time.perf_counter() - start)


def step_rate(trainer, loader_iter, batches: int, batch: int, cuda: bool) -> float:
    start = time.perf_counter()
    for _ in range(batches):
        trainer.train_step(trainer.to_device(next(loader_iter)))
    if cuda:
        torch.cuda.synchronize()
    return batches * batch / (time.perf_counter() - start)


def main(argv=None) -> int:
    from unpaired.config import read_preset, resolve
    from unpaired.training.trainer import Trainer

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="dataset folder (default: a synthetic set of --image-size images)")
    p.add_argument("--image-size", type=int, default=256, help="synthetic images' size (the loader resizes them)")
    p.add_argument("--preset", default="quick")
    p.add_argument("--workers", default="0,2", help="comma-separated data.num_workers values")
    p.add_argument("--batches", type=int, default=40)
    p.add_argument("--device", default="cpu")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra config override")
    args = p.parse_args(argv)

    data = args.data
    if not data:
        from unpaired.data import make_synthetic

        data = make_synthetic(Path(tempfile.mkdtemp(prefix="loader-bench-")) / "synth", size=args.image_size,
                              n_train=64, n_test=4, seed=0)
    cuda = torch.device(args.device).type == "cuda"
    print(f"# {args.preset}, data {data}, {args.device}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print("| workers | batch | crop | loader pairs/s | training pairs/s | loader / training |")
    print("|---|---|---|---|---|---|")
    for workers in [int(w) for w in args.workers.split(",")]:
        cfg = resolve(read_preset(args.preset), [f"data.root={data}", f"data.num_workers={workers}",
                                                 f"train.device={args.device}", "train.steps=1000000", *args.set])
        trainer = Trainer(cfg, Path(tempfile.mkdtemp(prefix="loader-bench-run-")), progress=False)
        b = trainer.batch_per_rank
        it = iter(trainer.make_loader())
        next(it)  # workers started
        loading = loader_rate(it, args.batches, b)  # includes at most workers × prefetch_factor batches in flight
        trainer.train_step(trainer.to_device(next(it)))  # first step: allocations
        training = step_rate(trainer, it, args.batches, b, cuda)
        print(f"| {workers} | {b} | {cfg.data.crop_size} | {loading:.1f} | {training:.2f} | {loading / training:.1f}x |")
        del it
    print("(a pair is one A and one B image: images/s = 2 × pairs/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
