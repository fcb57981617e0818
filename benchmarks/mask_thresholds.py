"""How a run's attention sits on the true objects, without the 0.5 cut of ``evaluate --metrics masks``.

Soft masks (e.g. Scheme I's sigmoid mask, which settles around 0.3 on the objects) score IoU ≈ 0 at the
scorer's 0.5 threshold although they mark the objects. For each direction this prints the mean foreground
attention inside and outside the true masks of the test split and the IoU at several thresholds.

    python benchmarks/mask_thresholds.py --run RUN --data DIR [--thresholds 0.5 0.25 0.1]

``DIR`` holds ``test{A,B}`` and ``test{A,B}_masks`` (``unpaired data synth`` writes them).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def scores(run: Path, data: Path, thresholds) -> list:
    from unpaired.data import list_images, load_rgb
    from unpaired.inference import Translator
    from unpaired.metrics.masks import read_mask

    translator = Translator.load(run)
    rows = []
    for direction, source in (("AtoB", "A"), ("BtoA", "B")):
        if direction not in translator.generators:
            continue
        inside, outside = [], []
        overlap = {t: [0, 0] for t in thresholds}
        for path in list_images(data / f"test{source}"):
            attention = translator.translate(load_rgb(path), direction=direction).attention
            if attention is None:
                raise SystemExit(f"{run}: the {direction} generator returns no attention")
            truth = read_mask(data / f"test{source}_masks" / path.name).numpy() > 0.5
            inside.append(float(attention[truth].mean()))
            outside.append(float(attention[~truth].mean()))
            for t in thresholds:
                predicted = attention > t
                overlap[t][0] += int((predicted & truth).sum())
                overlap[t][1] += int((predicted | truth).sum())
        rows.append({"direction": direction, "inside": float(np.mean(inside)), "outside": float(np.mean(outside)),
                     **{f"iou@{t:g}": a / max(b, 1) for t, (a, b) in overlap.items()}})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.5, 0.25, 0.1])
    args = parser.parse_args()
    for row in scores(args.run, args.data, args.thresholds):
        print(f"{args.run} {row['direction']}: mean attention inside {row['inside']:.3f}, outside "
              f"{row['outside']:.3f}; " + ", ".join(f"{k} {v:.3f}" for k, v in row.items() if k.startswith("iou")))


if __name__ == "__main__":
    main()
