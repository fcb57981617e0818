"""Contact sheets: input | translation | attention (| ground-truth mask) per row, with a header line."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw


def _grey_rgb(array: np.ndarray) -> Image.Image:
    return Image.fromarray((np.clip(array, 0, 1) * 255).round().astype(np.uint8), mode="L").convert("RGB")


def find_true_mask(path: Path) -> Optional[Path]:
    """``data/testA/x.png`` -> ``data/testA_masks/x.png`` when it exists (the synthetic set's layout)."""
    candidate = path.parent.with_name(path.parent.name + "_masks") / (path.stem + ".png")
    return candidate if candidate.exists() else None


def overview(paths: Sequence[Path], translations: Sequence, cell: int = 96, max_rows: int = 24) -> Image.Image:
    """One row per input: input | translation | attention | true mask (when one exists beside the data)."""
    from .data import load_rgb

    rows: List[List[Image.Image]] = []
    headers = ["input", "translation", "attention", "true mask"]
    for path, result in list(zip(paths, translations))[:max_rows]:
        row = [load_rgb(path), result.image]
        row.append(_grey_rgb(result.attention) if result.attention is not None else Image.new("RGB", (cell, cell)))
        mask = find_true_mask(Path(path))
        if mask is not None:
            row.append(Image.open(mask).convert("RGB"))
        rows.append(row)
    columns = max(len(r) for r in rows)
    pad, top = 4, 16
    sheet = Image.new("RGB", (columns * (cell + pad) + pad, top + len(rows) * (cell + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for c in range(columns):
        draw.text((pad + c * (cell + pad), 2), headers[c], fill="black")
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            sheet.paste(image.resize((cell, cell), Image.NEAREST), (pad + c * (cell + pad), top + pad + r * (cell + pad)))
    return sheet
