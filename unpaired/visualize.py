"""Contact sheets: input | translation | attention (| ground-truth mask) per row, with a header line; several
models side by side (``unpaired compare``)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw


def unit_range(array: np.ndarray) -> np.ndarray:
    """An attention map as float32 in [0, 1], whether stored as floats or as uint8 (tiled translations)."""
    return array.astype(np.float32) / 255 if array.dtype == np.uint8 else array


def grey_image(array: np.ndarray) -> Image.Image:
    """An attention map (floats in [0, 1], or uint8) as a grey-scale image."""
    if array.dtype != np.uint8:
        array = (np.clip(array, 0, 1) * 255).round().astype(np.uint8)
    return Image.fromarray(array, mode="L")


def _grey_rgb(array: np.ndarray) -> Image.Image:
    return grey_image(array).convert("RGB")


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
    return sheet(rows, headers, cell)


def comparison(paths: Sequence[Path], results: Dict[str, Sequence], cell: int = 96, max_rows: int = 24) -> Image.Image:
    """One row per input: input | each model's translation followed by its attention (or heatmap), if any."""
    from .data import load_rgb

    with_attention = {name: any(t.attention is not None for t in ts) for name, ts in results.items()}
    headers = ["input"]
    for name in results:
        headers += [name, "attention"] if with_attention[name] else [name]
    rows: List[List[Image.Image]] = []
    for i, path in enumerate(list(paths)[:max_rows]):
        row = [load_rgb(path)]
        for name, translations in results.items():
            row.append(translations[i].image)
            if with_attention[name]:
                a = translations[i].attention
                row.append(_grey_rgb(a) if a is not None else Image.new("RGB", (cell, cell)))
        rows.append(row)
    return sheet(rows, headers, cell)


def sheet(rows: List[List[Image.Image]], headers: Sequence[str], cell: int = 96) -> Image.Image:
    """Images in a grid of ``cell``-pixel squares under a line of column headers."""
    columns = max(len(r) for r in rows)
    pad, top = 4, 16
    out = Image.new("RGB", (columns * (cell + pad) + pad, top + len(rows) * (cell + pad) + pad), "white")
    draw = ImageDraw.Draw(out)
    for c in range(columns):
        draw.text((pad + c * (cell + pad), 2), headers[c][: cell // 6], fill="black")
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            out.paste(image.resize((cell, cell), Image.NEAREST), (pad + c * (cell + pad), top + pad + r * (cell + pad)))
    return out
