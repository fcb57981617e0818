"""Sample grids during training: for each direction (multi-domain: each target domain) and each of a few
fixed test images, one row of real | translated | reconstructed | attention (foreground mask, or U-GAT-IT
heatmap)."""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.utils import make_grid, save_image


class SampleWriter:
    def __init__(self, run_dir: Path, cfg, device, n_images: int = 4):
        from ..data import sample_inputs

        self.folder = Path(run_dir) / "samples"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.inputs = sample_inputs(cfg, n_images, device)  # method.visuals' arguments (real_A, real_B, ...)

    @torch.no_grad()
    def write(self, method, step: int) -> torch.Tensor:
        """Save ``samples/step_{step:07d}.png``; returns the grid (3×H×W in [0, 1])."""
        was_training = method.training
        method.eval()
        try:
            rows = method.visuals(**self.inputs)
        finally:
            method.train(was_training)
        columns = max(len(r) for r in rows)
        tiles = []
        for row in rows:
            images = list(row.values())
            for i in range(images[0].shape[0]):
                line = [im[i].float().cpu() for im in images]
                line += [torch.ones_like(line[0])] * (columns - len(line))
                tiles.extend(line)
        grid = make_grid(torch.stack(tiles), nrow=columns, padding=2, pad_value=1.0)
        save_image(grid, self.folder / f"step_{step:07d}.png")
        return grid
