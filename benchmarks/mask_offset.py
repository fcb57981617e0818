"""Is a run's attention mask shifted against the object? Where its background error lies, per direction.

A mask that is right in shape but one pixel off writes the translated content over a one-pixel band of
background next to the object: background PSNR falls although the IoU looks good. For each direction this
prints, over the test split:

* the share of the background's squared error (input vs translation) that lies within 1 px of the object;
* the mean foreground attention in that band on each side of the object (above, below, left, right): an
  offset shows as one side much brighter than its opposite (horizontal flips in training keep left and right
  alike; nothing does that for up and down unless ``data.vflip`` is on);
* the IoU (attention > 0.5) with the true masks moved by ``dy``, ``dx`` pixels, and the move that scores best.

    python benchmarks/mask_offset.py --run RUN --data DIR [--max-shift 2]

``DIR`` holds ``test{A,B}`` and ``test{A,B}_masks`` (``unpaired data synth`` writes them).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SIDES = {"above": (-1, 0), "below": (1, 0), "left": (0, -1), "right": (0, 1)}


def _moved(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``mask`` moved by (dy, dx) pixels, the uncovered edge filled with False (no wrap-around)."""
    out = np.zeros_like(mask)
    h, w = mask.shape
    if abs(dy) >= h or abs(dx) >= w:
        return out
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = mask[max(-dy, 0):h - max(dy, 0),
                                                                     max(-dx, 0):w - max(dx, 0)]
    return out


def image_sums(image: np.ndarray, translated: np.ndarray, attention: np.ndarray, truth: np.ndarray,
               moves) -> dict:
    """One image's sums (``image``, ``translated``: H×W×3 uint8; ``attention``: H×W in [0, 1]; ``truth``: H×W
    bool): background error in the 1-px band and in all, attention and pixel counts per side, IoU terms per move."""
    error = (((translated.astype(np.float32) - image.astype(np.float32)) / 255) ** 2).mean(axis=-1)
    next_to = {side: _moved(truth, dy, dx) & ~truth for side, (dy, dx) in SIDES.items()}
    band = np.logical_or.reduce(list(next_to.values()))
    sums = {"band_error": float(error[band].sum()), "background_error": float(error[~truth].sum())}
    for side, pixels in next_to.items():
        sums[f"sum_{side}"], sums[f"n_{side}"] = float(attention[pixels].sum()), int(pixels.sum())
    predicted = attention > 0.5
    for dy, dx in moves:
        moved = _moved(truth, dy, dx)
        sums[("inter", dy, dx)] = int((predicted & moved).sum())
        sums[("union", dy, dx)] = int((predicted | moved).sum())
    return sums


def summary(direction: str, sums: dict, moves) -> dict:
    """The printed scores from the summed :func:`image_sums` of a direction."""
    iou = {m: sums[("inter", *m)] / max(sums[("union", *m)], 1) for m in moves}
    best = max(iou, key=iou.get)
    return {"direction": direction, "band_error_share": sums["band_error"] / max(sums["background_error"], 1e-12),
            **{f"attention_{s}": sums[f"sum_{s}"] / max(sums[f"n_{s}"], 1) for s in SIDES},
            "iou": iou[0, 0], "best_move": best, "best_iou": iou[best]}


def offsets(run: Path, data: Path, max_shift: int = 2) -> list:
    from unpaired.data import list_images, load_rgb
    from unpaired.inference import Translator
    from unpaired.metrics.masks import read_mask

    translator = Translator.load(run)
    moves = [(dy, dx) for dy in range(-max_shift, max_shift + 1) for dx in range(-max_shift, max_shift + 1)]
    rows = []
    for direction, source in (("AtoB", "A"), ("BtoA", "B")):
        if direction not in translator.generators:
            continue
        total: dict = {}
        for path in list_images(data / f"test{source}"):
            image = load_rgb(path)
            out = translator.translate(image, direction=direction)
            if out.attention is None:
                raise SystemExit(f"{run}: the {direction} generator returns no attention")
            attention = np.asarray(out.attention, dtype=np.float32) / (255 if out.tiled else 1)
            truth = read_mask(data / f"test{source}_masks" / path.name).numpy() > 0.5
            for key, value in image_sums(np.asarray(image), np.asarray(out.image), attention, truth, moves).items():
                total[key] = total.get(key, 0) + value
        rows.append(summary(direction, total, moves))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--max-shift", type=int, default=2, help="largest move of the true masks tried, pixels")
    args = parser.parse_args()
    if args.max_shift < 0:
        parser.error(f"--max-shift must be >= 0, got {args.max_shift}")
    for row in offsets(args.run, args.data, args.max_shift):
        sides = ", ".join(f"{s} {row[f'attention_{s}']:.2f}" for s in SIDES)
        dy, dx = row["best_move"]
        print(f"{args.run} {row['direction']}: {100 * row['band_error_share']:.0f}% of the background error within "
              f"1 px of the object; attention there: {sides}; IoU {row['iou']:.3f} in place, {row['best_iou']:.3f} "
              f"with the true masks moved dy={dy:+d} dx={dx:+d}")


if __name__ == "__main__":
    main()
