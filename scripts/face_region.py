"""Write the eyes + mouth region of an aligned face dataset, for ``unpaired evaluate --metrics region``.

    python scripts/face_region.py --data ../shared/data/faces-expressions --out runs/face-region.png
    python scripts/face_region.py --data ../shared/data/faces-expressions --part face --out runs/face-oval.png

Writes the mask (white = eyes, brows and mouth: the part an expression may change; with ``--part face`` the whole
face, forehead to chin: "do the masks stay on the face?") at ``--size`` pixels and,
next to it, ``<out>-overlay.png``: the mean training face with the region outlined, to check it by eye.
How the region is found: unpaired/metrics/face_region.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from unpaired.metrics.face_region import PARTS, face_region


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="trainA/ trainB/, or train/<domain>/ folders of aligned faces")
    ap.add_argument("--out", required=True, help="the mask .png to write")
    ap.add_argument("--size", type=int, default=64, help="mask size in pixels (evaluate resizes it to the images)")
    ap.add_argument("--part", choices=PARTS, default="expression",
                    help="expression: eyes, brows and mouth (default); face: the whole face oval")
    args = ap.parse_args(argv)

    mask, points, mean_face = face_region(Path(args.data), args.size, part=args.part)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((mask.numpy() * 255).astype(np.uint8)).save(out)
    grey = ((mean_face.clamp(-1, 1) + 1) * 127.5).numpy().astype(np.uint8)
    overlay = np.stack([grey] * 3, axis=-1)
    inside = mask.numpy() > 0
    edge = inside & ~(np.roll(inside, 1, 0) & np.roll(inside, -1, 0) & np.roll(inside, 1, 1) & np.roll(inside, -1, 1))
    overlay[edge] = (255, 64, 32)
    overlay_path = out.with_name(out.stem + "-overlay.png")
    Image.fromarray(overlay).resize((4 * args.size, 4 * args.size), Image.NEAREST).save(overlay_path)
    for name, (r, c) in points.items():
        print(f"{name:<9} row {r:.3f} col {c:.3f} (fractions of the image)")
    print(f"region: {100 * float(mask.mean()):.1f}% of the image -> {out} (check: {overlay_path})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
