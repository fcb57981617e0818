"""Time one U-GAT-IT training step (and its peak memory): ours against the official code, same config.

    python benchmarks/ugatit_step.py --official /path/to/UGATIT-pytorch     # 64 px CPU, full+light, batch 1+4
    python benchmarks/ugatit_step.py --official ../UGATIT-pytorch --device cuda --size 256 --batch 1

The official networks (``networks.py`` of a local clone of znxlwm/UGATIT-pytorch, which this repository
never ships) are imported at run time; their step is the official ``UGATIT.train`` iteration as models.md
§5.4 describes it: D update on fresh fakes (not detached), G update re-generating everything, RhoClipper on
both generators. Ours is ``Trainer.train_step`` of the ``ugatit`` / ``ugatit-light`` models.

Each measurement runs in its own process. Time: median wall-clock (and process CPU) seconds of the timed
steps after warm-up; rounds alternate the two implementations (``--rounds``) and the fastest round counts,
which damps noise from other processes on the machine. Memory, in a separate process per implementation:
what a training step adds on top of the steady state (weights, gradients and Adam moments already exist
after the warm-up step). CPU: the kernel's RSS high-water mark, reset after warm-up
(``/proc/self/clear_refs``), minus the RSS then, with glibc's mmap threshold fixed so that freed tensors
leave the RSS at once; CUDA: ``torch.cuda.max_memory_allocated`` minus the allocation at that point.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (Linux >= 4.0); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


# ----------------------------------------------------------------------------------------------------------
# the two steps


def official_step_fn(args, device):
    """The official UGATIT.train iteration around the official networks; returns step(real_A, real_B)."""
    import torch
    from torch import nn

    sys.path.insert(0, str(Path(args.official).resolve()))
    from networks import Discriminator, ResnetGenerator, RhoClipper  # the official code, imported at run time

    def generator():
        return ResnetGenerator(input_nc=3, output_nc=3, ngf=args.ngf, n_blocks=args.n_blocks,
                               img_size=args.size, light=args.light).to(device)

    genA2B, genB2A = generator(), generator()
    disGA, disGB = (Discriminator(3, args.ngf, args.n_layers_global).to(device) for _ in range(2))
    disLA, disLB = (Discriminator(3, args.ngf, args.n_layers_local).to(device) for _ in range(2))
    nets = (genA2B, genB2A, disGA, disGB, disLA, disLB)
    for net in nets:
        net.train()
    G_optim = torch.optim.Adam(itertools.chain(genA2B.parameters(), genB2A.parameters()), lr=1e-4,
                               betas=(0.5, 0.999), weight_decay=1e-4)
    D_optim = torch.optim.Adam(itertools.chain(*(d.parameters() for d in nets[2:])), lr=1e-4,
                               betas=(0.5, 0.999), weight_decay=1e-4)
    mse, l1, bce, clipper = nn.MSELoss(), nn.L1Loss(), nn.BCEWithLogitsLoss(), RhoClipper(0, 1)

    def to(x, value):
        return torch.full_like(x, value)

    def step(real_A, real_B):
        D_optim.zero_grad()
        fake_A2B, _, _ = genA2B(real_A)
        fake_B2A, _, _ = genB2A(real_B)
        d_loss = 0
        for D, real, fake in ((disGA, real_A, fake_B2A), (disLA, real_A, fake_B2A),
                              (disGB, real_B, fake_A2B), (disLB, real_B, fake_A2B)):
            real_logit, real_cam, _ = D(real)
            fake_logit, fake_cam, _ = D(fake)
            d_loss = d_loss + (mse(real_logit, to(real_logit, 1)) + mse(fake_logit, to(fake_logit, 0))
                               + mse(real_cam, to(real_cam, 1)) + mse(fake_cam, to(fake_cam, 0)))
        d_loss.backward()
        D_optim.step()

        G_optim.zero_grad()
        fake_A2B, fake_A2B_cam, _ = genA2B(real_A)
        fake_B2A, fake_B2A_cam, _ = genB2A(real_B)
        fake_A2B2A, _, _ = genB2A(fake_A2B)
        fake_B2A2B, _, _ = genA2B(fake_B2A)
        fake_A2A, fake_A2A_cam, _ = genB2A(real_A)
        fake_B2B, fake_B2B_cam, _ = genA2B(real_B)
        g_loss = 0
        for D, fake in ((disGA, fake_B2A), (disLA, fake_B2A), (disGB, fake_A2B), (disLB, fake_A2B)):
            logit, cam, _ = D(fake)
            g_loss = g_loss + mse(logit, to(logit, 1)) + mse(cam, to(cam, 1))
        cam = (bce(fake_B2A_cam, to(fake_B2A_cam, 1)) + bce(fake_A2A_cam, to(fake_A2A_cam, 0))
               + bce(fake_A2B_cam, to(fake_A2B_cam, 1)) + bce(fake_B2B_cam, to(fake_B2B_cam, 0)))
        g_loss = (g_loss + 10 * (l1(fake_A2B2A, real_A) + l1(fake_B2A2B, real_B))
                  + 10 * (l1(fake_A2A, real_A) + l1(fake_B2B, real_B)) + 1000 * cam)
        g_loss.backward()
        G_optim.step()
        genA2B.apply(clipper)
        genB2A.apply(clipper)

    return step


def our_step_fn(args, device):
    sys.path.insert(0, str(REPO))
    from unpaired.config import resolve
    from unpaired.training.trainer import Trainer

    model = {"name": "ugatit-light" if args.light else "ugatit", "ngf": args.ngf, "ndf": args.ngf,
             "n_blocks": args.n_blocks, "img_size": args.size, "n_layers_global": args.n_layers_global,
             "n_layers_local": args.n_layers_local}
    cfg = resolve({"model": model}, [f"data.crop_size={args.size}", f"data.load_size={args.size}",
                                     f"train.batch_size={args.batch}", f"train.device={device}",
                                     "train.steps=1000000", *args.ours_set])
    trainer = Trainer(cfg, Path(tempfile.mkdtemp(prefix="ugatit-bench-")), progress=False)
    return lambda real_A, real_B: trainer.train_step(trainer.to_device({"A": real_A, "B": real_B}))


# ----------------------------------------------------------------------------------------------------------
# one measurement (a child process)


def measure(args) -> dict:
    import torch

    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    step = (official_step_fn if args.impl == "official" else our_step_fn)(args, device)
    real_A = torch.rand(args.batch, 3, args.size, args.size, device=device) * 2 - 1
    real_B = torch.rand(args.batch, 3, args.size, args.size, device=device) * 2 - 1
    times, cpu_times = [], []
    for i in range(args.warmup + args.steps):
        if i == args.warmup:  # steady state (weights, grads, Adam moments exist): measure what a step adds
            if cuda:
                torch.cuda.synchronize()
                base = torch.cuda.memory_allocated()
                torch.cuda.reset_peak_memory_stats()
            reset_peak_rss()
            base_rss = rss_bytes()
        start, start_cpu = time.perf_counter(), time.process_time()
        step(real_A, real_B)
        if cuda:
            torch.cuda.synchronize()
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - start_cpu)
    peak = torch.cuda.max_memory_allocated() - base if cuda else peak_rss_bytes() - base_rss
    return {"median_s": statistics.median(times), "min_s": min(times), "cpu_s": statistics.median(cpu_times),
            "peak_mem_mb": peak / 2 ** 20}


# ----------------------------------------------------------------------------------------------------------
# driver


def run_child(args, impl, light, batch, memory=False) -> dict:
    cmd = [sys.executable, __file__, "--child", impl, "--official", str(args.official or ""),
           "--device", args.device, "--size", str(args.size), "--ngf", str(args.ngf),
           "--n-blocks", str(args.n_blocks), "--n-layers-global", str(args.n_layers_global),
           "--n-layers-local", str(args.n_layers_local), "--warmup", str(args.warmup),
           "--steps", str(1 if memory else args.steps), "--threads", str(args.threads),
           "--batch", str(batch)] + (["--light"] if light else []) + [f"--ours-set={o}" for o in args.ours_set]
    env = dict(os.environ)
    if memory:  # fixed mmap threshold: freed tensors go back to the OS at once, so RSS follows live memory
        env.update(MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="65536")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--official", help="a local clone of znxlwm/UGATIT-pytorch (its networks.py); "
                                      "omit to time ours only")
    p.add_argument("--device", default="cpu")
    p.add_argument("--size", type=int, default=64, help="image size (a 7-layer global D needs >= 96)")
    p.add_argument("--variants", nargs="+", default=["full", "light"], choices=["full", "light"])
    p.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    p.add_argument("--ngf", type=int, default=64, help="G and D base channels (official --ch)")
    p.add_argument("--n-blocks", type=int, default=4, help="official --n_res")
    p.add_argument("--n-layers-global", type=int, default=None, help="default: 7, or 6 below 96 px")
    p.add_argument("--n-layers-local", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=5, help="timed steps per measurement")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds; the fastest counts")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--ours-set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for ours only, e.g. train.precision=bf16 (the GPU goal: with "
                        "train.channels_last=true too)")
    p.add_argument("--child", choices=["ours", "official"], help=argparse.SUPPRESS)
    p.add_argument("--light", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.n_layers_global is None:
        args.n_layers_global = 7 if args.size >= 96 else 6
    if args.child:
        args.impl = args.child
        args.batch = args.batch[0]
        print(json.dumps(measure(args)))
        return 0
    if args.official and not (Path(args.official) / "networks.py").is_file():
        p.error(f"--official {args.official}: no networks.py there (expected a UGATIT-pytorch clone)")

    import torch

    impls = ["ours"] + (["official"] if args.official else [])
    print(f"# U-GAT-IT training step, {args.device}, {args.size} px, ngf=ndf={args.ngf}, "
          f"n_blocks={args.n_blocks}, D layers {args.n_layers_global}/{args.n_layers_local}; "
          f"torch {torch.__version__}, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
          f"threads {args.threads or torch.get_num_threads()}, {time.strftime('%Y-%m-%d')}")
    header = f"{'variant':7} {'batch':>5} " + " ".join(
        f"{i + ' s/step':>16} {i + ' cpu s':>14} {i + ' MB':>12}" for i in impls)
    print(header + ("   speed-up  memory ours/official" if args.official else ""))
    results = []
    for variant, batch in itertools.product(args.variants, args.batch):
        best = {}
        for _ in range(args.rounds):
            for impl in impls:
                r = run_child(args, impl, variant == "light", batch)
                if impl not in best or r["median_s"] < best[impl]["median_s"]:
                    best[impl] = r
        for impl in impls:  # separate processes: the malloc settings that make RSS exact slow a step down
            memory = run_child(args, impl, variant == "light", batch, memory=True)
            best[impl]["peak_mem_mb"] = memory["peak_mem_mb"]
        row = {"variant": variant, "batch": batch}
        row.update({f"{i}_{k}": v for i in impls for k, v in best[i].items()})
        line = f"{variant:7} {batch:5d} " + " ".join(
            f"{best[i]['median_s']:16.3f} {best[i]['cpu_s']:14.3f} {best[i]['peak_mem_mb']:12.0f}"
            for i in impls)
        if args.official:
            row["speedup"] = best["official"]["median_s"] / best["ours"]["median_s"]
            row["memory_ratio"] = best["ours"]["peak_mem_mb"] / max(best["official"]["peak_mem_mb"], 1e-9)
            line += f"   {row['speedup']:7.2f}x  {row['memory_ratio']:8.2f}"
        print(line, flush=True)
        results.append(row)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
