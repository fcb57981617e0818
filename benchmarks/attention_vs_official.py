"""AttentionGAN Scheme II trained by the official code and by ours, same data, settings and seeds; masks scored.

    python benchmarks/attention_vs_official.py --official /path/to/AttentionGAN --data DIR --out WORK \\
        [--seeds 0 1 2] [--steps 3000] [--ngf 16] [--ndf 16] [--batch 1] [--jobs 2] [--impl official ours] \\
        [--label ours-prior --ours-set loss.attention_sparsity=1 ...]
    python benchmarks/attention_vs_official.py --out WORK --report      # the table of every run in WORK

The official code (a local clone of Ha0Tang/AttentionGAN; never shipped here, its licence is CC BY-NC-SA) is
imported at run time and trained by its own pieces: ``TrainOptions`` (its defaults, with the settings below on
its command line), its unaligned dataset and DataLoader, ``AttentionGANModel.optimize_parameters`` and its
epoch-end ``update_learning_rate``, for exactly ``--steps`` iterations (``train.py``'s loop, stopped by count;
``--niter`` large and ``--niter_decay 0``: constant learning rate). Seeds: Python's, NumPy's and torch's global
generators are seeded before the networks are built (the official code seeds nothing itself).
Ours: the ``horse2zebra-attentiongan`` preset (``--ours-preset`` names another, e.g. ``attentiongan-s1`` for
Scheme I with its own v1 losses) with the same sizes, batch, steps and seed (``--ours-set`` adds switches). Both at ``--size`` px with load size = crop size (no crop), flips on, one thread per run,
``--jobs`` runs side by side. ``--official-vflip`` adds a random vertical flip to the official transform (label
``official-vflip``), the augmentation ``--ours-set data.vflip=true`` gives ours.

Every run's generators are scored the same way: the official ones imported through ``unpaired import --format
attentiongan``, then ``unpaired evaluate --metrics masks`` on the test split (background PSNR/SSIM, attention
IoU of the foreground 1 − background mask at 0.5, and ``success``: the object took the target's look). Results
go to ``WORK/results.jsonl`` (one line per run and direction); ``--report`` prints per-seed rows and mean ± std
and the worst seed per label; ``--rescore`` scores every run again (after a change of the scorer).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SCORES = ("background_psnr", "far_background_psnr", "background_ssim", "attention_iou", "success", "foreground_change")


def train_official(official: Path, data: Path, out: Path, seed: int, steps: int, ngf: int, ndf: int, batch: int,
                   size: int, vflip: bool = False) -> None:
    import random

    import numpy as np
    import torch

    sys.path.insert(0, str(official))
    sys.argv = ["train.py", "--dataroot", str(data), "--name", "run", "--checkpoints_dir", str(out),
                "--model", "attention_gan", "--dataset_mode", "unaligned", "--gpu_ids", "-1",
                "--ngf", str(ngf), "--ndf", str(ndf), "--batch_size", str(batch),
                "--load_size", str(size), "--crop_size", str(size), "--niter", "100000", "--niter_decay", "0",
                "--display_id", "0", "--no_html", "--num_threads", "1", "--print_freq", str(10 ** 9),
                "--save_latest_freq", str(10 ** 9), "--save_epoch_freq", str(10 ** 9)]
    _official_compat()
    if vflip:
        _official_vertical_flips()
    from data import create_dataset  # noqa: E402  (the user's clone)
    from models import create_model
    from options.train_options import TrainOptions

    opt = TrainOptions().parse()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    dataset = create_dataset(opt)
    model = create_model(opt)
    model.setup(opt)
    step = 0
    while step < steps:
        for data_item in dataset:
            model.set_input(data_item)
            model.optimize_parameters()
            step += 1
            if step == steps:
                break
        else:
            model.update_learning_rate()  # the end of an epoch, as train.py does (constant here)
    model.save_networks("latest")


def _official_compat() -> None:
    """The official data transforms hand PIL's integer resampling constants to torchvision, which current
    torchvision refuses; map them to ``InterpolationMode`` (the same resampling)."""
    import torchvision.transforms as T

    original = T.Resize.__init__

    def resize_init(self, size, interpolation=T.InterpolationMode.BILINEAR, *args, **kwargs):
        if isinstance(interpolation, int):
            interpolation = T.functional._interpolation_modes_from_int(interpolation)
        original(self, size, interpolation, *args, **kwargs)

    T.Resize.__init__ = resize_init


def _official_vertical_flips() -> None:
    """``--official-vflip``: the official transform with a random vertical flip (p = 0.5) before ``ToTensor``, as
    our ``data.vflip`` adds one after the horizontal flip: the official code given the same augmentation."""
    import torchvision.transforms as T
    from data import unaligned_dataset  # noqa: E402  (the user's clone)

    original = unaligned_dataset.get_transform

    def with_vertical_flip(*args, **kwargs):
        composed = original(*args, **kwargs)
        at = next(i for i, t in enumerate(composed.transforms) if isinstance(t, T.ToTensor))
        composed.transforms.insert(at, T.RandomVerticalFlip())
        return composed

    unaligned_dataset.get_transform = with_vertical_flip


DEFAULT_PRESET = "horse2zebra-attentiongan"  # Scheme II with the official v2 settings


def train_ours(data: Path, out: Path, seed: int, steps: int, ngf: int, ndf: int, batch: int, size: int,
               extra, preset: str = "horse2zebra-attentiongan") -> None:
    from unpaired.config import read_preset, resolve
    from unpaired.training.trainer import Trainer

    cfg = resolve(read_preset(preset),
                  [f"data.root={data}", f"model.ngf={ngf}", f"model.ndf={ndf}", f"data.load_size={size}",
                   f"data.crop_size={size}",
                   f"train.batch_size={batch}", f"train.steps={steps}", f"train.seed={seed}", "train.device=cpu",
                   "data.num_workers=1", f"train.checkpoint_every={steps}", f"train.sample_every={steps}",
                   f"train.log_every={max(1, steps // 10)}", *extra])
    Trainer(cfg, out / "run", progress=False).fit()


def trained_at(run: Path, size: int) -> Path:
    """An official checkpoint does not say at what size it was trained, so the importer's cards assume the
    official default (256); write the benchmark's size into them, or evaluation would resize the test images."""
    import dataclasses

    from unpaired.runfolder import ModelCard

    for path in (run / "generators").glob("*.json"):
        card = ModelCard.read(path)
        card.input_size = dataclasses.replace(card.input_size, train=size)
        card.load_size = size
        card.write(path)
    return run


def rescore(results: Path) -> None:
    """Score every run in ``results`` again (e.g. after a change of the scorer) and rewrite the file."""
    rows, done = read_results(results), {}
    for row in rows:
        key = (row["run"], row["data"])
        if key not in done:
            if row["impl"] == "official":
                trained_at(Path(row["run"]), row.get("size", 64))
            done[key] = {r["direction"]: r for r in score(Path(row["run"]), Path(row["data"]))}
        row.update({k: done[key][row["direction"]][k] for k in SCORES if k in done[key][row["direction"]]})
    results.write_text("".join(json.dumps(r) + "\n" for r in rows))


def score(run: Path, data: Path) -> list:
    from unpaired.inference import Translator
    from unpaired.metrics.evaluate import evaluate

    return evaluate(Translator.load(run, device="cpu"), data, metrics=("masks",))


def worker(args) -> int:
    import torch

    torch.set_num_threads(1)
    out = Path(args.worker_dir)
    started = time.time()
    if args.worker == "official":
        train_official(args.official, args.data, out, args.seed, args.steps, args.ngf, args.ndf, args.batch, args.size,
                       args.official_vflip)
        from unpaired.compat import import_checkpoint

        files = [out / "run" / f"latest_net_{n}.pth" for n in ("G_A", "G_B")]
        import_checkpoint("attentiongan", files, out / "imported")
        run = trained_at(out / "imported", args.size)
    else:
        train_ours(args.data, out, args.seed, args.steps, args.ngf, args.ndf, args.batch, args.size, args.ours_set,
                   args.ours_preset)
        run = out / "run"
    seconds = time.time() - started
    with open(args.results, "a") as f:
        for row in score(run, args.data):
            f.write(json.dumps({"label": args.label, "impl": args.worker, "seed": args.seed, "steps": args.steps,
                                "size": args.size,
                                "train_seconds": round(seconds, 1), "run": str(run), "data": str(args.data),
                                "settings": ([f"preset={args.ours_preset}"] * (args.ours_preset != DEFAULT_PRESET)
                                             + args.ours_set) if args.worker == "ours"
                                else ["vflip"] * bool(args.official_vflip),
                                **{k: row[k] for k in ("direction", *SCORES) if k in row}}) + "\n")
    return 0


def read_results(results: Path) -> list:
    return [json.loads(line) for line in results.read_text().splitlines() if line.strip()]


def grouped(rows: list) -> dict:
    """(data set name, label, direction) -> that configuration's rows, one per seed."""
    groups = {}
    for r in rows:
        groups.setdefault((Path(r["data"]).name, r["label"], r["direction"]), []).append(r)
    return groups


def report(results: Path) -> None:
    rows = read_results(results)
    groups = grouped(rows)
    print(f"# {results} ({len(rows)} rows); per seed, then mean ± std and the worst seed")
    print(f"{'data':<22} {'label':<22} {'dir':<5} {'seeds':<8} {'bg PSNR':<16} {'far bg PSNR':<16} {'bg SSIM':<14} "
          f"{'IoU':<15} {'success':<14} {'train s':<8} worst(PSNR, IoU)")
    for (data, label, direction), rs in sorted(groups.items()):
        rs.sort(key=lambda r: r["seed"])

        def ms(key, fmt="{:.2f}"):
            values = [r[key] for r in rs if key in r]
            if not values:
                return "-"
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            return f"{fmt.format(statistics.mean(values))}±{fmt.format(spread)}"

        seeds = ",".join(str(r["seed"]) for r in rs)
        print(f"{data:<22} {label:<22} {direction:<5} {seeds:<8} {ms('background_psnr'):<16} "
              f"{ms('far_background_psnr'):<16} {ms('background_ssim', '{:.3f}'):<14} "
              f"{ms('attention_iou', '{:.3f}'):<15} {ms('success'):<14} {ms('train_seconds', '{:.0f}'):<8} "
              f"{min(r['background_psnr'] for r in rs):.2f}, {min(r['attention_iou'] for r in rs):.3f}")
        for r in rs:
            nan = float("nan")
            print(f"{'':<22} {'  seed ' + str(r['seed']):<22} {direction:<5} {'':<8} {r['background_psnr']:<16.2f} "
                  f"{r.get('far_background_psnr', nan):<16.2f} {r['background_ssim']:<14.3f} "
                  f"{r['attention_iou']:<15.3f} {r.get('success', nan):<14.2f} {r['train_seconds']:<8.0f}")


def markdown(results: Path) -> None:
    """The table of ``report`` as Markdown: one row per data set, configuration and direction."""
    groups = grouped(read_results(results))
    print("| data | configuration | direction | seeds | background PSNR (dB) | worst | far-background PSNR (dB) "
          "| background SSIM | attention IoU | worst | success | train s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (data, label, direction), rs in sorted(groups.items()):
        def ms(key, digits=2):
            values = [r[key] for r in rs if r.get(key) is not None]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            return f"{statistics.mean(values):.{digits}f} ± {spread:.{digits}f}" if values else "–"

        print(f"| {data} | {label} | {direction} | {len(rs)} | {ms('background_psnr')} | "
              f"{min(r['background_psnr'] for r in rs):.2f} | {ms('far_background_psnr', 1)} | "
              f"{ms('background_ssim', 3)} | {ms('attention_iou', 3)} | {min(r['attention_iou'] for r in rs):.3f} | "
              f"{ms('success')} | {ms('train_seconds', 0)} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", type=Path, help="local clone of Ha0Tang/AttentionGAN (for --impl official)")
    parser.add_argument("--data", type=Path, help="CycleGAN layout with <split>_masks and a paired test split")
    parser.add_argument("--out", type=Path, required=True, help="work folder: runs and results.jsonl")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--impl", nargs="+", default=["official", "ours"], choices=["official", "ours"])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--ngf", type=int, default=16)
    parser.add_argument("--ndf", type=int, default=16)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--jobs", type=int, default=2, help="runs side by side (one thread each)")
    parser.add_argument("--label", default=None, help="name of our configuration in the table (default: ours)")
    parser.add_argument("--ours-set", action="append", default=[], metavar="KEY=VALUE", help="switches for ours")
    parser.add_argument("--ours-preset", default=DEFAULT_PRESET, help="the preset ours starts from")
    parser.add_argument("--official-vflip", action="store_true",
                        help="the official code with random vertical flips too (label official-vflip)")
    parser.add_argument("--report", action="store_true", help="only print the table of WORK/results.jsonl")
    parser.add_argument("--rescore", action="store_true", help="score every run of WORK/results.jsonl again")
    parser.add_argument("--markdown", action="store_true", help="print the table of WORK/results.jsonl as Markdown")
    parser.add_argument("--worker", choices=["official", "ours"], help=argparse.SUPPRESS)
    parser.add_argument("--worker-dir", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--results", help=argparse.SUPPRESS)
    args = parser.parse_args()
    results = args.out / "results.jsonl"
    if args.worker:
        return worker(args)
    if args.markdown:
        markdown(results)
        return 0
    if args.rescore:
        rescore(results)
    if args.report or args.rescore:
        report(results)
        return 0
    if args.data is None or ("official" in args.impl and args.official is None):
        parser.error("--data is needed, and --official for --impl official")
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"{time.strftime('%Y-%m-%d %H:%M')}, {args.steps} steps, ngf {args.ngf}, ndf {args.ndf}, batch {args.batch}, "
          f"{args.size} px, seeds {args.seeds}, {args.jobs} jobs", flush=True)
    jobs = []
    for seed in args.seeds:
        for impl in args.impl:
            label = ("official-vflip" if args.official_vflip else "official") if impl == "official" else \
                args.label or impl
            folder = args.out / f"{label}-{args.data.name}-seed{seed}"
            cmd = [sys.executable, __file__, "--worker", impl, "--worker-dir", str(folder), "--seed", str(seed),
                   "--results", str(results), "--out", str(args.out), "--data", str(args.data),
                   "--steps", str(args.steps), "--ngf", str(args.ngf), "--ndf", str(args.ndf),
                   "--batch", str(args.batch), "--size", str(args.size), "--label", label]
            if args.official:
                cmd += ["--official", str(args.official)] + ["--official-vflip"] * args.official_vflip
            cmd += [f"--ours-set={s}" for s in args.ours_set] + ["--ours-preset", args.ours_preset]
            jobs.append((folder, cmd))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    running, failed = [], 0
    while jobs or running:
        while jobs and len(running) < args.jobs:
            folder, cmd = jobs.pop(0)
            folder.mkdir(parents=True, exist_ok=True)
            log = open(folder / "log.txt", "w")
            running.append((folder, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), log))
        time.sleep(2)
        for item in list(running):
            folder, proc, log = item
            if proc.poll() is not None:
                running.remove(item)
                log.close()
                print(f"{folder.name}: {'done' if proc.returncode == 0 else f'FAILED (see {folder}/log.txt)'}",
                      flush=True)
                failed += proc.returncode != 0
    report(results)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
