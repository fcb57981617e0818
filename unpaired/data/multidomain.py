"""Labelled images for the multi-domain models: every image comes with its label vector.

Two sources:

* **domain folders** (``MultiDomainFolders``): ``DIR/train/<domain>/``, ``DIR/test/<domain>/``; the domains
  are the sorted folder names (or the subset ``domains`` names, in that order); labels are one-hot.
* **an attribute table** (``AttributeTable``): a CSV file, CelebA style, with the header
  ``filename,attr1,attr2,...`` and one row per image; values 1 / -1 or 1 / 0; file names are relative to
  the CSV's folder. Labels are multi-hot (1 = has the attribute); ``attributes`` selects and orders
  columns (StarGAN's ``--selected_attrs``).

Both check every file up front as the two-domain data does (unreadable files are reported by name), and
both are endless and index-addressed like ``UnpairedFolders``: with ``epoch, pos = divmod(i, len)``,
sample ``i`` is image ``perm(epoch)[pos]`` (a permutation seeded from (seed, epoch)) with a transform
seeded from (seed, i), so a resumed run sees exactly the batches of an uninterrupted one.
Items: ``{"image": 3×H×W, "label": c_dim float, "path": str, "index": int}``.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from .folders import _generator, _images_in, _takes_generator, report_bad_files
from .images import check_files, load_rgb
from .transforms import to_tensor

__all__ = ["LabelledImages", "MultiDomainFolders", "AttributeTable", "domain_folders", "read_attributes",
           "select"]

_STREAM_PERM = 11
_STREAM_TRANSFORM = 12


class UnknownDomainError(ValueError):
    """A domain or attribute name that the data does not have; the message names it and lists the known."""


def target_label(names: Sequence[str], wanted: Sequence[str]) -> torch.Tensor:
    """The 1×len(names) label with a 1 at each ``wanted`` domain name (unknown names are refused)."""
    label = torch.zeros(1, len(names))
    for name in wanted:
        if name not in names:
            raise UnknownDomainError(f"unknown target domain {name!r}; this model knows {', '.join(names)}")
        label[0, list(names).index(name)] = 1.0
    return label


def select(available: Sequence[str], wanted: Sequence[str] | None, where: str) -> list[int]:
    """Indices of ``wanted`` in ``available`` (all of them when ``wanted`` is empty)."""
    if not wanted:
        return list(range(len(available)))
    for name in wanted:
        if name not in available:
            raise UnknownDomainError(f"unknown domain {name!r}: {where} has {', '.join(available) or 'none'}")
    return [list(available).index(name) for name in wanted]


class LabelledImages(Dataset):
    """Endless, index-addressed dataset over ``paths`` with their ``labels`` (N×c_dim float)."""

    def __init__(self, paths: Sequence[Path], labels: torch.Tensor, names: Sequence[str],
                 transform: Callable | None, seed: int) -> None:
        if not paths:
            raise FileNotFoundError("no usable images")
        self.paths, self.labels, self.names = list(paths), labels.float(), list(names)
        self.transform, self.seed = transform, int(seed)
        self._takes_generator = transform is not None and _takes_generator(transform)
        self._perm: tuple[int, torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def position(self, i: int) -> int:
        """The image (index into ``paths``) of sample ``i``."""
        epoch, pos = divmod(i, len(self.paths))
        if self._perm is None or self._perm[0] != epoch:
            g = _generator(self.seed, _STREAM_PERM, epoch)
            self._perm = (epoch, torch.randperm(len(self.paths), generator=g))
        return int(self._perm[1][pos])

    def __getitem__(self, i: int) -> dict:
        i = int(i)
        if i < 0:
            raise IndexError(f"sample index must be >= 0, got {i}")
        k = self.position(i)
        img = load_rgb(self.paths[k])
        if self.transform is None:
            image = to_tensor(img)
        elif self._takes_generator:
            image = self.transform(img, generator=_generator(self.seed, _STREAM_TRANSFORM, i))
        else:
            image = self.transform(img)
        return {"image": image, "label": self.labels[k].clone(), "path": str(self.paths[k]), "index": i}

    def first_of_each(self, n: int) -> list[int]:
        """Up to ``n`` image indices, taking the domains in turn (for sample grids)."""
        owner = self.labels.argmax(1).tolist()
        queues = [[k for k, o in enumerate(owner) if o == d] for d in range(len(self.names))]
        picked: list[int] = []
        while len(picked) < min(n, len(self.paths)):
            for queue in queues:
                if queue and len(picked) < n:
                    picked.append(queue.pop(0))
        return picked


def domain_folders(root: str | os.PathLike, split: str = "train") -> list[str]:
    """The sorted names of the (non-hidden) folders in ``root/split``: the domains."""
    folder = Path(root) / split
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: folder not found (expected the multi-domain layout "
                                f"{Path(root) / split}/<domain>/ with one folder per domain)")
    names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise FileNotFoundError(f"{folder}: no domain folders in it (expected {folder}/<domain>/*.png)")
    return names


class MultiDomainFolders(LabelledImages):
    """``root/split/<domain>/`` images with one-hot labels over ``domains`` (default: every folder, sorted)."""

    def __init__(self, root: str | os.PathLike, split: str = "train", transform: Callable | None = None, *,
                 domains: Sequence[str] | None = None, seed: int = 0, skip_bad_files: bool = False,
                 check: bool = True) -> None:
        available = domain_folders(root, split)
        names = [available[k] for k in select(available, domains, f"{Path(root) / split}")]
        paths, owners, bad = [], [], []
        for d, name in enumerate(names):
            found, bad_here = _images_in(Path(root) / split / name, check)
            bad += bad_here
            paths += found
            owners += [d] * len(found)
        report_bad_files(bad, f"{Path(root) / split}", skip_bad_files)
        for d, name in enumerate(names):
            if d not in owners:
                raise FileNotFoundError(f"{Path(root) / split / name}: no usable images left after "
                                        f"excluding bad files")
        labels = torch.nn.functional.one_hot(torch.tensor(owners), len(names))
        super().__init__(paths, labels, names, transform, seed)


def read_attributes(csv_path: str | os.PathLike) -> tuple[list[str], list[Path], torch.Tensor]:
    """(attribute names, image paths, N×A labels in {0, 1}) of a CelebA-style CSV; errors name the line."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"{csv_path}: attribute table not found")
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = [row for row in csv.reader(f) if any(cell.strip() for cell in row)]
    if not rows or len(rows[0]) < 2:
        raise ValueError(f"{csv_path}: expected a header 'filename,attr1,attr2,...' and one row per image")
    names = [n.strip() for n in rows[0][1:]]
    paths, values = [], []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(names) + 1:
            raise ValueError(f"{csv_path}:{line}: {len(row)} columns, the header has {len(names) + 1}")
        try:
            labels = [{"1": 1.0, "-1": 0.0, "0": 0.0}[cell.strip()] for cell in row[1:]]
        except KeyError as e:
            raise ValueError(f"{csv_path}:{line}: attribute value {e.args[0]!r} is not 1, 0 or -1") from None
        paths.append(csv_path.parent / row[0].strip())
        values.append(labels)
    if not paths:
        raise FileNotFoundError(f"{csv_path}: no images listed")
    return names, paths, torch.tensor(values)


class AttributeTable(LabelledImages):
    """The images of a CelebA-style CSV with multi-hot labels over ``attributes`` (default: every column)."""

    def __init__(self, csv_path: str | os.PathLike, transform: Callable | None = None, *,
                 attributes: Sequence[str] | None = None, seed: int = 0, skip_bad_files: bool = False,
                 check: bool = True) -> None:
        available, paths, labels = read_attributes(csv_path)
        columns = select(available, attributes, str(csv_path))
        bad = check_files(paths) if check else []
        report_bad_files(bad, str(csv_path), skip_bad_files)
        keep = [k for k, p in enumerate(paths) if p not in {b for b, _ in bad}]
        super().__init__([paths[k] for k in keep], labels[keep][:, columns], [available[c] for c in columns],
                         transform, seed)
