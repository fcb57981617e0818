"""Time our training step under the speed switches: fp32, bf16 autocast, channels_last, both, (compile).

    python benchmarks/train_step_switches.py                                   # CPU: quick AttentionGAN, 64 px
    python benchmarks/train_step_switches.py --model cyclegan --ngf 64 --size 256 --batch 1 --device cuda \\
        --switches fp32,bf16,channels_last,bf16+channels_last,bf16+channels_last+compile   # GPU

Each switch set builds a fresh ``Trainer`` from the same seed and runs ``Trainer.train_step`` on the same random
batch: warm-up steps, then timed steps; the rounds alternate the switch sets (damping noise from other
processes) and the fastest round's median counts. Ratios are against fp32 measured in the same run.
On CUDA it also reports the peak memory of a step and the fraction of the GPU's peak bf16 throughput reached:
the step's FLOPs are counted once with ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix
products, forward and backward) and divided by the step time; ``--peak-tflops`` gives the peak (dense bf16
tensor-core TFLOP/s; default from the device name for H100/H200/A100, else none).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "RTX 4090": 165.0}
SWITCHES = {"fp32": [], "bf16": ["train.precision=bf16"], "channels_last": ["train.channels_last=true"],
            "compile": ["train.compile=true"]}


def overrides(name: str) -> list:
    return [o for part in name.split("+") for o in SWITCHES[part]]


def build(args, switch: str):
    from unpaired.config import read_preset, resolve
    from unpaired.training.trainer import Trainer

    torch.manual_seed(0)
    cfg = resolve(read_preset(args.preset), [
        f"model.name={args.model}", f"model.ngf={args.ngf}", f"model.ndf={args.ngf}",
        f"data.crop_size={args.size}", f"data.load_size={args.size}", f"train.batch_size={args.batch}",
        f"train.device={args.device}", "train.steps=1000000", *args.set, *overrides(switch)])
    trainer = Trainer(cfg, Path(tempfile.mkdtemp(prefix="switch-bench-")), progress=False)
    batch = trainer.to_device({d: torch.rand(args.batch, 3, args.size, args.size) * 2 - 1 for d in "AB"})
    return trainer, batch


def timed(trainer, batch, steps: int, cuda: bool) -> list:
    out = []
    for _ in range(steps):
        start = time.perf_counter()
        trainer.train_step(batch)
        if cuda:
            torch.cuda.synchronize()
        out.append(time.perf_counter() - start)
    return out


def step_flops(trainer, batch) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        trainer.train_step(batch)
    return counter.get_total_flops()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="quick", help="preset the model settings start from (default quick)")
    p.add_argument("--model", default="attentiongan")
    p.add_argument("--ngf", type=int, default=16, help="ngf = ndf")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--device", default="cpu")
    p.add_argument("--switches", default="fp32,bf16,channels_last,bf16+channels_last",
                   help="comma-separated sets of fp32 | bf16 | channels_last | compile joined by +")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra config override")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, help="torch.set_num_threads (CPU)")
    p.add_argument("--peak-tflops", type=float, help="the GPU's peak dense bf16 TFLOP/s (for the utilisation)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = torch.device(args.device).type == "cuda"
    names = [s.strip() for s in args.switches.split(",") if s.strip()]
    gpu = torch.cuda.get_device_name() if cuda else None
    peak = args.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if gpu and k in gpu), None)

    # FLOPs of one step: the same for every switch set; counted eagerly (compiled kernels bypass the counter)
    flops = step_flops(*build(args, "fp32")) if cuda else None
    runs, medians, memory = {}, {n: [] for n in names}, {}
    for name in names:
        runs[name] = build(args, name)
        timed(*runs[name], args.warmup, cuda)  # warm-up (and compilation)
    for _ in range(args.rounds):
        for name in names:
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            medians[name].append(statistics.median(timed(*runs[name], args.steps, cuda)))
            if cuda:
                memory[name] = torch.cuda.max_memory_allocated() / 2**30

    print(f"# {args.model}, {args.size} px, batch {args.batch}, ngf=ndf={args.ngf}, {args.device}"
          f"{' (' + gpu + ')' if gpu else ''}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"{platform.machine()}; median of {args.steps} steps after {args.warmup} warm-up, best of {args.rounds} rounds")
    head = f"| switches | s/step | images/s | speed vs {names[0]} |" + (" peak GB | TFLOP/s | of peak bf16 |" if cuda else "")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    base = min(medians[names[0]])
    for name in names:
        s = min(medians[name])
        row = f"| {name} | {s:.4f} | {args.batch / s:.2f} | {base / s:.2f}x |"
        if cuda:
            tflops = flops / s / 1e12
            row += f" {memory[name]:.2f} | {tflops:.1f} | " + (f"{tflops / peak:.1%} |" if peak else "n/a |")
        print(row)
    print(f"(images/s counts training pairs (one A and one B image) per second; ratios vs {names[0]}"
          + (f"; {flops / 1e12:.3f} TFLOP per step, FlopCounterMode" if cuda else "") + ")")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
