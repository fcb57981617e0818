"""Feature maps too large for memory, in unnamed temporary files: what the streamed exact mode (stream.py) writes
one stage's output to and reads the next stage's tiles from.

Float32, N × H × W × C (a pixel's channels together: the layout of a channels-last tensor's rows), in the temporary
directory (``TMPDIR``); windows are read and written row by row with seek + read/write, so they live in the page
cache, not in the process's memory, and the file is gone when closed or when the process dies.
"""

from __future__ import annotations

import tempfile

import numpy as np
import torch
from torch import Tensor

from .runner import Tile

__all__ = ["FeatureFile", "FeatureFileError", "FileCanvas", "FileSource"]


class FeatureFileError(RuntimeError):
    """A feature file could not be made, written or read back (the temp directory full or gone)."""


class FeatureFile:
    """An N×H×W×C float32 array in an unnamed temporary file; windows are read and written row by row, read
    windows go to ``device`` as ``dtype`` (the generator's)."""

    def __init__(self, batch: int, height: int, width: int, channels: int, device="cpu", dtype=torch.float32):
        self.shape, self.device, self.dtype = (batch, height, width, channels), device, dtype
        try:
            self.file = tempfile.TemporaryFile()
            self.file.truncate(4 * batch * height * width * channels)  # sparse until written
        except OSError as e:
            raise _failed(e) from None

    def _offset(self, n: int, y: int, x: int) -> int:
        _, h, w, c = self.shape
        return 4 * c * ((n * h + y) * w + x)

    def read(self, top: int, bottom: int, left: int, right: int) -> Tensor:
        """The window as an N×C×h×w tensor (channels-last in memory)."""
        batch, _, _, c = self.shape
        window = np.empty((batch, bottom - top, right - left, c), np.float32)
        for n in range(batch):
            for i, y in enumerate(range(top, bottom)):
                self.file.seek(self._offset(n, y, left))
                if self.file.readinto(memoryview(window[n, i]).cast("B")) != window[n, i].nbytes:
                    raise _failed(OSError("a feature file was shorter than written"))
        return torch.from_numpy(window).permute(0, 3, 1, 2).to(self.device, self.dtype)

    def write(self, top: int, left: int, x: Tensor) -> None:
        rows = x.detach().float().cpu().permute(0, 2, 3, 1).contiguous().numpy()  # N×h×w×C
        try:
            for n in range(rows.shape[0]):
                for i in range(rows.shape[1]):
                    self.file.seek(self._offset(n, top + i, left))
                    self.file.write(memoryview(rows[n, i]).cast("B"))
        except OSError as e:
            raise _failed(e) from None

    def close(self) -> None:
        self.file.close()


def _failed(error: OSError) -> FeatureFileError:
    return FeatureFileError(f"exact tiling: its feature files in {tempfile.gettempdir()} failed "
                            f"({error.strerror or error}): free space there, set TMPDIR to a larger disk, or use "
                            "--tiling fast")


class FileCanvas:
    """``run_exact``'s canvas for a stage whose output is a tensor: each tile's core goes to ``file``."""

    def __init__(self, file: FeatureFile):
        self.file = file

    def put(self, out: Tensor, tile: Tile) -> None:
        """The core, in the tile's px, scaled to the output's resolution (÷4, ÷2, ×1 or ×2: a stage that
        down- or up-samples)."""
        size, box = out.shape[-2], tile.box[1] - tile.box[0]
        scale = (lambda v: v * (size // box)) if size >= box else (lambda v: v // (box // size))  # noqa: E731
        reg = tile.region()
        core = out[..., scale(reg.top):scale(reg.bottom), scale(reg.left):scale(reg.right)]
        self.file.write(scale(tile.core[0]), scale(tile.core[2]), core)


class FileSource:
    """Tiles (``run_exact``'s source) read from a feature file."""

    def __init__(self, file: FeatureFile):
        self.file = file

    def read(self, box) -> Tensor:
        return self.file.read(*box)
