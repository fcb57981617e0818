"""Which training data a model reads (``ModelSpec.dataset``), so the trainer stays generic.

* ``unpaired``: CycleGAN folders ``trainA/ trainB/`` (``UnpairedFolders``); samples from ``testA/ testB/``.
* ``multidomain``: ``DIR/train/<domain>/`` (``MultiDomainFolders``) or, when ``data.root`` is a ``.csv``
  file, an attribute table (``AttributeTable``); samples from ``DIR/test/<domain>/`` when it exists.

``complete_config`` fills in what the data decides before a model is built: the domain names
(``model.domains``, when not given), ``model.c_dim`` and, for a CSV, ``model.multi_label``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import torch
from torch.utils.data import Dataset

__all__ = ["complete_config", "train_dataset", "sample_inputs", "dataset_kind"]


def dataset_kind(cfg) -> str:
    from ..models import get_model

    return get_model(cfg.model_name).dataset


def _is_table(root: str) -> bool:
    return Path(root).suffix.lower() == ".csv"


def _wanted(cfg):
    from ..models.multidomain import split_names

    return split_names(cfg.model.domains) or None


def complete_config(cfg) -> None:
    """Check the settings against the data and fill in the data-derived model settings (multi-domain)."""
    from ..config import check_input_size

    check_input_size(cfg)
    if dataset_kind(cfg) != "multidomain":
        return
    from ..config import ConfigError
    from .multidomain import UnknownDomainError, domain_folders, read_attributes, select

    m, d = cfg.model, cfg.data
    if cfg.train.eval_every and _is_table(d.root):
        raise ConfigError("train.eval_every: evaluation during training needs test/<domain>/ folders, not an "
                          "attribute table; use 0 and `unpaired translate --target-domain` + `unpaired evaluate`")
    if not d.root:
        return
    available = read_attributes(d.root)[0] if _is_table(d.root) else domain_folders(d.root, "train")
    try:
        names = [available[k] for k in select(available, _wanted(cfg), d.root)]
    except UnknownDomainError as e:
        raise ConfigError(f"model.domains: {e}") from None
    m.domains, m.c_dim = ",".join(names), len(names)
    if _is_table(d.root):
        m.multi_label = True  # attributes: multi-hot labels, BCE


def train_dataset(cfg) -> Dataset:
    from .transforms import TrainTransform

    d, t = cfg.data, cfg.train
    kind = dataset_kind(cfg)
    if not d.root:
        layout = "train/<domain>/ folders" if kind == "multidomain" else "trainA/ and trainB/"
        raise ValueError(f"no training data: pass --data DIR (a folder with {layout}) or set data.root")
    transform = TrainTransform(d.load_size, d.crop_size, d.flip, d.resize, vflip=d.vflip)
    if kind == "unpaired":
        from .folders import UnpairedFolders

        return UnpairedFolders(d.root, "train", transform, seed=t.seed, skip_bad_files=d.skip_bad_files)
    return _multidomain(cfg, "train", transform, check=True)


def _multidomain(cfg, split: str, transform, check: bool):
    from .multidomain import AttributeTable, MultiDomainFolders

    d, seed = cfg.data, cfg.train.seed
    if _is_table(d.root):
        return AttributeTable(d.root, transform, attributes=_wanted(cfg), seed=seed,
                              skip_bad_files=d.skip_bad_files, check=check)
    return MultiDomainFolders(d.root, split, transform, domains=_wanted(cfg), seed=seed,
                              skip_bad_files=d.skip_bad_files, check=check)


def sample_inputs(cfg, n: int, device) -> Dict[str, torch.Tensor]:
    """The keyword arguments of ``method.visuals`` for a sample grid: a few fixed test images (train images
    when there is no test split)."""
    from .folders import list_images
    from .images import load_rgb
    from .transforms import TestTransform

    transform = TestTransform(cfg.data.crop_size, cfg.data.resize)
    root = Path(cfg.data.root)
    if dataset_kind(cfg) == "unpaired":
        out = {}
        for domain in ("A", "B"):
            folder = root / f"test{domain}"
            if not folder.is_dir() or not list_images(folder):
                folder = root / f"train{domain}"
            paths = list_images(folder)[:n]
            out[f"real_{domain}"] = torch.stack([transform(load_rgb(p)) for p in paths]).to(device)
        return out
    has_test = not _is_table(cfg.data.root) and (root / "test").is_dir()
    data = _multidomain(cfg, "test" if has_test else "train", transform, check=False)
    picked = data.first_of_each(n)
    return {"images": torch.stack([transform(load_rgb(data.paths[k])) for k in picked]).to(device),
            "labels": data.labels[picked].to(device)}
