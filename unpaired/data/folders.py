"""Datasets over image folders: the endless unpaired training set and plain image lists.

Training uses :class:`UnpairedFolders` with :class:`EndlessSampler`. Every sample is a pure
function of ``(seed, i)`` where ``i`` is a global sample counter, so a run resumed at step
``s`` (sampler ``start = s * batch_size``) sees exactly the batches of an uninterrupted run,
whatever the number of DataLoader workers; with several training processes each takes its
block of every global batch (``EndlessSampler(block=...)``), whatever their number.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .images import IMAGE_EXTENSIONS, BadImageError, check_files, check_folder, list_images, load_rgb
from .transforms import TestTransform, to_tensor

__all__ = ["UnpairedFolders", "EndlessSampler", "ImageFiles", "test_split", "endless_loader"]

# Independent random streams derived from (seed, counter).
_STREAM_PERM_A = 1
_STREAM_PICK_B = 2
_STREAM_TRANSFORM_A = 3
_STREAM_TRANSFORM_B = 4
_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    """One SplitMix64 step: a stable 64-bit integer mixing function."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def derive_seed(seed: int, stream: int, counter: int) -> int:
    """Return a seed in [0, 2**63) for the random ``stream`` at ``counter``, stable across
    processes and platforms (pure integer arithmetic, no ``hash()``)."""
    x = _splitmix64(seed & _MASK64)
    x = _splitmix64(x ^ (stream * 1_000_003))
    x = _splitmix64(x ^ (counter & _MASK64))
    return x >> 1


def _generator(seed: int, stream: int, counter: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(derive_seed(seed, stream, counter))
    return g


def _takes_generator(transform: Callable) -> bool:
    """True if ``transform`` accepts a ``generator`` argument (by name or ``**kwargs``)."""
    try:
        params = inspect.signature(transform).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "generator" or p.kind is p.VAR_KEYWORD for p in params)


def _images_in(folder: Path, check: bool) -> tuple[list[Path], list[tuple[Path, str]]]:
    """List the usable images of ``folder``; return ``(images, bad_files)`` (see UnpairedFolders)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: folder not found (expected CycleGAN layout root/<split>A, root/<split>B)")
    images = list_images(folder)
    bad = check_folder(folder) if check else []
    if bad:
        bad_paths = {p for p, _ in bad}
        images = [p for p in images if p not in bad_paths]
    if not images and not bad:
        raise FileNotFoundError(
            f"{folder}: no image files (extensions {', '.join(IMAGE_EXTENSIONS)}; sub-folders are not searched)"
        )
    return images, bad


def report_bad_files(excluded: list[tuple[Path, str]], where: str, skip_bad_files: bool) -> None:
    """Raise one :class:`BadImageError` listing every unusable file, or (``skip_bad_files``) warn per file."""
    if not excluded:
        return
    if not skip_bad_files:
        lines = "\n".join(f"  {p}: {reason}" for p, reason in excluded)
        raise BadImageError(
            f"{len(excluded)} unusable file(s) in {where}:\n{lines}\n"
            "Fix or remove them, or pass --set data.skip_bad_files=true to exclude them."
        )
    for p, reason in excluded:
        warnings.warn(f"excluding unusable file {p}: {reason}", stacklevel=3)


class UnpairedFolders(Dataset):
    """Endless, index-addressed unpaired dataset over ``root/{split}A`` and ``root/{split}B``.

    ``len(ds)`` is one epoch, ``max(len(A), len(B))``, but ``ds[i]`` accepts any integer
    ``i >= 0`` (a global sample counter across epochs): with ``epoch, pos = divmod(i, len(ds))``

    * A is ``A[perm_A(epoch)[pos % len(A)]]``, ``perm_A(epoch)`` a ``torch.randperm`` seeded
      from ``(seed, epoch)``, so every epoch visits A in a new order;
    * B is drawn uniformly at random (like CycleGAN's unaligned dataset) from a generator
      seeded from ``(seed, i)``;
    * the transform gets its own generator per image, seeded from ``(seed, i)`` (separate
      streams for A and B).

    ``transform`` is a callable ``(img, generator) -> Tensor`` (e.g. ``TrainTransform``) or
    ``(img) -> Tensor`` (e.g. ``TestTransform``); it is given the generator if its signature
    has a ``generator`` parameter. ``None`` means :func:`to_tensor` only (no resizing).

    With ``check=True`` every file is decoded up front. Bad files raise one
    :class:`BadImageError` listing all of them, or, with ``skip_bad_files=True``, are excluded
    with a warning per file (kept in ``self.excluded``). A missing or empty folder raises
    ``FileNotFoundError`` naming it. Items: ``{"A", "B", "A_path", "B_path", "index"}``.

    Use it with :class:`EndlessSampler` (or :func:`endless_loader`): a plain DataLoader
    sampler only ever yields ``0..len-1``, i.e. epoch 0's shuffle and crops again and again.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        transform: Callable | None = None,
        *,
        seed: int = 0,
        skip_bad_files: bool = False,
        check: bool = True,
    ) -> None:
        self.root = Path(root)
        self.split = split
        self.transform = transform
        self.seed = int(seed)
        self.dir_A = self.root / f"{split}A"
        self.dir_B = self.root / f"{split}B"
        self.paths_A, bad_A = _images_in(self.dir_A, check)
        self.paths_B, bad_B = _images_in(self.dir_B, check)
        self.excluded: list[tuple[Path, str]] = bad_A + bad_B
        report_bad_files(self.excluded, f"{self.root} ({split}A/{split}B)", skip_bad_files)
        for folder, paths in ((self.dir_A, self.paths_A), (self.dir_B, self.paths_B)):
            if not paths:
                raise FileNotFoundError(f"{folder}: no usable images left after excluding bad files")
        self.epoch_length = max(len(self.paths_A), len(self.paths_B))
        self._takes_generator = transform is not None and _takes_generator(transform)
        self._perm_cache: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return self.epoch_length

    def perm_A(self, epoch: int) -> torch.Tensor:
        """Return the order in which epoch ``epoch`` visits the A images (cached, last 2 epochs)."""
        perm = self._perm_cache.get(epoch)
        if perm is None:
            g = _generator(self.seed, _STREAM_PERM_A, epoch)
            perm = torch.randperm(len(self.paths_A), generator=g)
            if len(self._perm_cache) >= 2:
                self._perm_cache.pop(next(iter(self._perm_cache)))
            self._perm_cache[epoch] = perm
        return perm

    def indices(self, i: int) -> tuple[int, int]:
        """Return ``(index into paths_A, index into paths_B)`` used for sample ``i``."""
        epoch, pos = divmod(i, self.epoch_length)
        a = int(self.perm_A(epoch)[pos % len(self.paths_A)])
        g = _generator(self.seed, _STREAM_PICK_B, i)
        b = int(torch.randint(len(self.paths_B), (1,), generator=g))
        return a, b

    def _apply(self, path: Path, stream: int, i: int) -> torch.Tensor:
        img = load_rgb(path)
        if self.transform is None:
            return to_tensor(img)
        if self._takes_generator:
            return self.transform(img, generator=_generator(self.seed, stream, i))
        return self.transform(img)

    def __getitem__(self, i: int) -> dict:
        i = int(i)
        if i < 0:
            raise IndexError(f"sample index must be >= 0, got {i}")
        a, b = self.indices(i)
        path_A, path_B = self.paths_A[a], self.paths_B[b]
        return {
            "A": self._apply(path_A, _STREAM_TRANSFORM_A, i),
            "B": self._apply(path_B, _STREAM_TRANSFORM_B, i),
            "A_path": str(path_A),
            "B_path": str(path_B),
            "index": i,
        }


class EndlessSampler(Sampler):
    """Yield the global sample counters of one process, forever.

    The counters are cut into consecutive blocks of ``block`` per process: process ``rank`` of
    ``world_size`` takes, for its ``n``-th sample (``n = start, start+1, ...``),
    ``(n // block) * block * world_size + rank * block + n % block``. ``block=1`` interleaves
    (``n * world_size + rank``); ``block = per-process batch`` gives each process a contiguous
    slice of the global batch, so W processes with batch b see exactly the batches of one
    process with batch W·b (what the trainer uses). ``start`` is the number of samples this rank
    has already consumed, e.g. ``step * per_process_batch`` when resuming at optimiser step
    ``step``; the ranks together cover every counter exactly once.
    """

    def __init__(self, start: int = 0, rank: int = 0, world_size: int = 1, block: int = 1) -> None:
        if start < 0 or world_size < 1 or block < 1 or not 0 <= rank < world_size:
            raise ValueError(f"invalid start={start}, rank={rank}, world_size={world_size}, block={block}")
        self.start = int(start)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.block = int(block)

    def __iter__(self) -> Iterator[int]:
        n, b = self.start, self.block
        while True:
            yield (n // b) * b * self.world_size + self.rank * b + n % b
            n += 1


def endless_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    start_step: int = 0,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """Return an endless DataLoader over ``dataset`` that resumes at ``start_step``.

    Batch ``k`` of the loader is optimiser step ``start_step + k``; call ``next()`` on an
    iterator of it as many times as needed (it never ends).
    """
    sampler = EndlessSampler(start=start_step * batch_size, rank=rank, world_size=world_size)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
    )


class ImageFiles(Dataset):
    """A fixed list of image files (or all images of one folder, sorted) plus a transform.

    ``transform`` is any callable PIL image -> Tensor (e.g. :class:`TestTransform`); ``None``
    means :func:`to_tensor`. Items are ``{"image": Tensor, "path": str}`` in list order.
    Files are read with :func:`load_rgb`, so a bad file raises :class:`BadImageError`.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike] | str | os.PathLike,
        transform: Callable | None = None,
    ) -> None:
        if isinstance(paths, (str, os.PathLike)):
            folder = Path(paths)
            paths = list_images(folder)
            if not paths:
                raise FileNotFoundError(f"{folder}: no image files")
        self.paths = [Path(p) for p in paths]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict:
        path = self.paths[i]
        img = load_rgb(path)
        image = to_tensor(img) if self.transform is None else self.transform(img)
        return {"image": image, "path": str(path)}


def test_split(root: str | os.PathLike, domain: str, size: int, resize: str = "bicubic") -> ImageFiles:
    """Return ``root/test{domain}`` (domain ``"A"`` or ``"B"``) as :class:`ImageFiles`, sorted
    by file name, resized to ``size x size``. Raises ``FileNotFoundError`` if the folder is
    missing or has no images."""
    return ImageFiles(Path(root) / f"test{domain}", TestTransform(size, resize))


test_split.__test__ = False  # not a pytest test function


def load_split(folder: Path, size: int | None, resize: str = "bicubic", limit: int | None = None) -> tuple:
    """(paths, N×3×H×W tensor in [-1, 1]) of a folder's images, all checked first (unreadable ones named)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: split folder not found")
    paths = list_images(folder)[:limit]
    if not paths:
        raise FileNotFoundError(f"{folder}: the split holds no images")
    bad = check_files(paths)
    if bad:
        raise BadImageError("unreadable images:\n" + "\n".join(f"  {p}: {why}" for p, why in bad))
    transform = TestTransform(size, resize) if size else (lambda im: to_tensor(im))
    return paths, torch.stack([transform(load_rgb(p)) for p in paths])
