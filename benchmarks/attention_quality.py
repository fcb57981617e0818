"""Attention quality on the synthetic set: does each model keep the background and find the objects?

Trains CycleGAN, AttentionGAN (Scheme II), AttentionGAN + attention-guided discriminators and AttentionGAN
Scheme I with the same budget (same steps, batch, image size and widths), then runs
``unpaired evaluate --metrics masks,fid,kid --feature-extractor unpaired-tiny`` on each and prints a table.
Every command it runs is printed first, so the results can be reproduced by hand.

    python benchmarks/attention_quality.py --out runs/attention-quality [--steps 1200]
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

SHARED = ["data.load_size=72", "data.crop_size=64", "data.num_workers=1", "train.batch_size=4",
          "model.ngf=16", "model.ndf=16", "model.n_blocks=4", "train.log_every=100", "train.sample_every=400",
          "train.checkpoint_every=400"]

MODELS = {  # name -> (preset, extra settings)
    "cyclegan": ("quick-cyclegan", []),
    "attentiongan": ("quick", []),
    "attentiongan + attention D": ("quick", ["model.discriminator=attention"]),
    # Scheme I keeps its own (official v1) losses and lr; only the size budget is shared
    "attentiongan-s1": ("attentiongan-s1", ["model.n_layers_d=3"]),
}


def run(cmd):
    print("$", " ".join(shlex.quote(str(c)) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/attention-quality")
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out)
    data = out / "data"
    unpaired = [sys.executable, "-m", "unpaired"]
    if not (data / "trainA").is_dir():
        run([*unpaired, "data", "synth", data])
    rows = []
    for label, (preset, extra) in MODELS.items():
        run_dir = out / label.replace(" + ", "-").replace(" ", "-")
        settings = [*SHARED, f"train.steps={args.steps}", f"train.seed={args.seed}", *extra]
        started = time.time()
        if not (run_dir / "checkpoints").is_dir():
            run([*unpaired, "train", preset, "--data", data, "--out", run_dir, "--no-progress",
                 *[x for s in settings for x in ("--set", s)]])
        minutes = (time.time() - started) / 60
        result = run_dir / "evaluate.json"
        run([*unpaired, "evaluate", "--checkpoint", run_dir, "--data", data, "--metrics", "masks,fid,kid",
             "--feature-extractor", "unpaired-tiny", "--json", result])
        for row in json.loads(result.read_text()):
            rows.append({"model": label, "train_minutes": round(minutes, 1), **row})
    keys = ["model", "direction", "background_psnr", "background_ssim", "attention_iou", "foreground_change",
            "target_psnr", "fid", "kid_x100", "train_minutes"]
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(f"{row[k]:.3g}" if isinstance(row.get(k), float) else str(row.get(k, "–"))
                                for k in keys) + " |")
    (out / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
