"""Time one AttentionGAN (Scheme II) training step: ours against the official code, same weights and batch.

    python benchmarks/attentiongan_step.py --official /path/to/AttentionGAN      # 64 px CPU, batch 1 and 4
    python benchmarks/attentiongan_step.py --official /path/to/AttentionGAN --device cuda --size 256 --batch 4 \
        --ours-set train.precision=bf16 --ours-set train.channels_last=true   # GPU goal: images/s, memory

The official code (a local clone of Ha0Tang/AttentionGAN, which this repository never ships: its licence is
CC BY-NC-SA) is imported at run time: ``AttentionGANModel`` with an options object holding the official
defaults, stepped by its own ``set_input`` + ``optimize_parameters``. Ours is ``Trainer.train_step`` of the
``attentiongan`` model, starting from the official networks' initial weights imported through
``unpaired import --format attentiongan``. The first step's losses are compared (they must agree), then
both are timed: median seconds of the timed steps after warm-up, rounds alternating the two
implementations, the fastest round counts (this damps noise from other processes).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# official loss name -> (our statistic, factor): the official cycle/identity values include their weights
LOSS_MAP = {"G_A": ("Loss/G/adv_B", 1), "G_B": ("Loss/G/adv_A", 1), "D_A": ("Loss/D/D_B", 1),
            "D_B": ("Loss/D/D_A", 1), "cycle_A": ("Loss/G/cycle_A", 10), "cycle_B": ("Loss/G/cycle_B", 10),
            "idt_A": ("Loss/G/idt_B", 5), "idt_B": ("Loss/G/idt_A", 5)}


def official_model(path: Path, ngf: int, ndf: int, batch: int, cuda: bool = False):
    sys.path.insert(0, str(path))
    from models.attention_gan_model import AttentionGANModel  # noqa: E402  (the user's local clone)

    opt = SimpleNamespace(  # the official train defaults (options/{base,train}_options.py)
        isTrain=True, gpu_ids=[0] if cuda else [], checkpoints_dir=tempfile.mkdtemp(), name="bench", preprocess="resize_and_crop",
        input_nc=3, output_nc=3, ngf=ngf, ndf=ndf, netD="basic", netG="our", n_layers_D=3, norm="instance",
        init_type="normal", init_gain=0.02, no_dropout=True, lambda_identity=0.5, lambda_A=10.0, lambda_B=10.0,
        pool_size=50, gan_mode="lsgan", lr=2e-4, beta1=0.5, direction="AtoB", saveDisk=False, batch_size=batch,
        continue_train=False, epoch="latest", load_iter=0, verbose=False, lr_policy="linear")
    return AttentionGANModel(opt)


def our_trainer(model, ngf: int, ndf: int, batch: int, workdir: Path, device: str = "cpu", extra=()):
    from unpaired.compat import import_checkpoint
    from unpaired.config import read_preset, resolve
    from unpaired.training.trainer import Trainer

    files = []
    for name in ("G_A", "G_B", "D_A", "D_B"):
        files.append(workdir / f"init_net_{name}.pth")
        net = getattr(model, f"net{name}")
        torch.save(getattr(net, "module", net).state_dict(), files[-1])  # official wraps nets in DataParallel on GPU
    run = workdir / "ours"
    import_checkpoint("attentiongan", files, run)
    cfg = resolve(read_preset(str(run / "config.yaml")),
                  [f"train.batch_size={batch}", "train.lr=2e-4", "train.decay_fraction=0", "train.pool_size=50",
                   "train.init=default", f"train.device={device}", *extra])
    return Trainer(cfg, run, resume=True, progress=False)


def batches(n: int, batch: int, size: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [{"A": torch.rand(batch, 3, size, size, generator=g) * 2 - 1,
             "B": torch.rand(batch, 3, size, size, generator=g) * 2 - 1} for _ in range(n)]


def time_steps(step, data, warmup: int) -> float:
    times = []
    for i, b in enumerate(data):
        start = time.perf_counter()
        step(b)
        if torch.cuda.is_initialized():
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", required=True, type=Path, help="local clone of Ha0Tang/AttentionGAN")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--ndf", type=int, default=64)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (the official code then uses GPU 0)")
    parser.add_argument("--ours-set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for ours only, e.g. train.precision=bf16")
    args = parser.parse_args()
    cuda = args.device.startswith("cuda")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# AttentionGAN step, {args.size} px, ngf {args.ngf}, ndf {args.ndf}, 9 blocks, 10 masks, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}, {platform.processor() or platform.machine()}")
    for batch in args.batch:
        torch.manual_seed(0)
        model = official_model(args.official, args.ngf, args.ndf, batch, cuda)
        with tempfile.TemporaryDirectory() as tmp:
            trainer = our_trainer(model, args.ngf, args.ndf, batch, Path(tmp), args.device, args.ours_set)
            first = batches(1, batch, args.size, seed=123)[0]
            model.set_input({**first, "A_paths": [], "B_paths": []})
            model.optimize_parameters()
            ours = trainer.train_step(trainer.to_device(first))
            worst = max(abs(ours[k] * f - float(v)) / max(1e-8, abs(float(v)))
                        for name, v in model.get_current_losses().items() for k, f in [LOSS_MAP[name]])
            print(f"batch {batch}: first-step losses agree to {worst:.1e} (relative)")

            def official_step(b):
                model.set_input({**b, "A_paths": [], "B_paths": []})
                model.optimize_parameters()

            data = batches(args.warmup + args.steps, batch, args.size)
            best = {"official": float("inf"), "ours": float("inf")}
            peak = {}
            for _ in range(args.rounds):
                for impl, step in (("official", official_step), ("ours", lambda b: trainer.train_step(trainer.to_device(b)))):
                    if cuda:  # what a step adds on top of everything resident (both models' weights and state)
                        torch.cuda.synchronize()
                        base = torch.cuda.memory_allocated()
                        torch.cuda.reset_peak_memory_stats()
                    best[impl] = min(best[impl], time_steps(step, data, args.warmup))
                    if cuda:
                        peak[impl] = (torch.cuda.max_memory_allocated() - base) / 2**30
        print(f"batch {batch}: official {best['official']:.3f} s/step ({batch / best['official']:.2f} images/s), "
              f"ours {best['ours']:.3f} s/step ({batch / best['ours']:.2f} images/s), "
              f"speed-up {best['official'] / best['ours']:.2f}x"
              + (f"; GPU memory a step adds: official {peak['official']:.2f} GB, ours {peak['ours']:.2f} GB" if cuda else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
