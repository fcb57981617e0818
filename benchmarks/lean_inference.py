"""Whole-image inference with and without ``lean_inference`` (unpaired.nn.lean): peak memory, time, difference.

Each (family, side, variant) runs in a fresh subprocess, as ``Translator`` runs a generator: paper-size generator
(ngf 64, random weights N(0, 0.02), seed 0), glibc's freed memory kept (``host_memory.keep_freed_memory``),
``torch.no_grad``, ``--threads`` threads; a random image of side×side (``--batch`` of them). Reported per cell:
the peak RSS growth of the forward passes (VmHWM after − RSS before, MB and bytes per input pixel), the median
seconds of ``--repeat`` passes after one warm-up pass, and the lean outputs' max abs difference from the plain
ones. The plain variant is the reference measured in the same run: the ratios are lean / plain.

    python benchmarks/lean_inference.py                                   # cyclegan attentiongan ugatit-light, 512 1000
    python benchmarks/lean_inference.py --families attentiongan --sides 256 --batch 8
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def run_cell(family: str, side: int, batch: int, lean: bool, repeat: int, threads: int, work: Path) -> dict:
    import contextlib
    import statistics

    import torch

    from unpaired.host_memory import keep_freed_memory
    from unpaired.models import get_model
    from unpaired.nn.init import init_weights
    from unpaired.nn.lean import lean_inference

    torch.set_num_threads(threads)
    keep_freed_memory()
    spec = get_model(family)
    fields = set(spec.args.__dataclass_fields__)
    args = spec.args(**({"img_size": side} if "img_size" in fields else {}))
    torch.manual_seed(0)
    generator = init_weights(spec.build_generator(args).eval(), "normal", 0.02)
    x = torch.rand(batch, 3, side, side, generator=torch.Generator().manual_seed(1)) * 2 - 1
    before = status_kb("VmRSS")
    seconds = []
    with torch.no_grad(), (lean_inference(generator) if lean else contextlib.nullcontext()):
        for _ in range(repeat + 1):
            start = time.perf_counter()
            out = generator(x)
            seconds.append(time.perf_counter() - start)
            image = out.image.contiguous()
            del out
    growth = (status_kb("VmHWM") - before) * 1024
    torch.save(image, work / f"{family}-{side}-{batch}-{'lean' if lean else 'plain'}.pt")
    return {"peak_growth_mb": round(growth / 2 ** 20), "bytes_per_px": round(growth / (batch * side * side)),
            "seconds": round(statistics.median(seconds[1:]), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=["cyclegan", "attentiongan", "ugatit-light"])
    parser.add_argument("--sides", nargs="+", type=int, default=[512, 1000])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work", default="/tmp/lean_inference")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # family:side:lean|plain, run in this process
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.one:
        family, side, variant = args.one.split(":")
        print(json.dumps(run_cell(family, int(side), args.batch, variant == "lean", args.repeat, args.threads, work)))
        return
    import torch

    print(f"# {platform.machine()}, {torch.__version__}, {args.threads} thread(s), batch {args.batch}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    for family in args.families:
        for side in args.sides:
            cells = {}
            for variant in ("plain", "lean"):
                proc = subprocess.run([sys.executable, __file__, "--one", f"{family}:{side}:{variant}", "--batch",
                                       str(args.batch), "--repeat", str(args.repeat), "--threads", str(args.threads),
                                       "--work", str(work)], capture_output=True, text=True)
                if proc.returncode != 0:
                    raise SystemExit(f"{family} {side} {variant}: {proc.stderr.strip().splitlines()[-1]}")
                cells[variant] = json.loads(proc.stdout.strip().splitlines()[-1])
            plain, lean = cells["plain"], cells["lean"]
            stem = work / f"{family}-{side}-{args.batch}"
            diff = (torch.load(f"{stem}-lean.pt") - torch.load(f"{stem}-plain.pt")).abs().max().item()
            print(json.dumps({"family": family, "side": side, "batch": args.batch, "plain": plain, "lean": lean,
                              "memory_ratio": round(lean["peak_growth_mb"] / max(plain["peak_growth_mb"], 1), 2),
                              "time_ratio": round(lean["seconds"] / plain["seconds"], 2),
                              "max_abs_diff": float(f"{diff:.2e}")}), flush=True)


if __name__ == "__main__":
    main()
