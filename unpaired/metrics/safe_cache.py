"""The real-image feature cache of FID/KID in a format that cannot carry code.

torch-fidelity caches features and statistics as pickled ``.pt`` files and loads them with
``weights_only=False``: a file placed in the cache would run its payload. Ours are ``.safetensors`` files in
``UNPAIRED_CACHE`` (schema checked: the cache entry's name, float tensors of at most 2 dimensions, the item's
kind in the metadata). For each call torch-fidelity gets a fresh private folder holding only ``.pt`` files we
wrote ourselves from those checked tensors; what it computes there is turned into safetensors on the way out.
Any ``.pt`` file in ``UNPAIRED_CACHE`` is never read.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, Dict

import numpy as np
import torch

log = logging.getLogger("unpaired")

__all__ = ["calculate_with_cache", "read_item", "write_item"]


def read_item(path: Path, name: str) -> Any:
    """A cache item written by :func:`write_item` (a tensor, or a dict of numpy arrays), or ValueError."""
    from safetensors import safe_open

    path = Path(path)
    if not path.name.startswith(name):
        raise ValueError(f"{path}: not an entry of cache {name}")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    kind = meta.get("kind")
    if kind not in ("tensor", "arrays") or not tensors:
        raise ValueError(f"{path}: unknown cache item kind {kind!r}")
    for k, t in tensors.items():
        if not t.is_floating_point() or t.dim() > 2:
            raise ValueError(f"{path}: {k} is not a float tensor of at most 2 dimensions")
    if kind == "tensor":
        if set(tensors) != {"tensor"}:
            raise ValueError(f"{path}: a tensor item holds {sorted(tensors)}")
        return tensors["tensor"]
    return {k: t.numpy() for k, t in tensors.items()}


def write_item(path: Path, item: Any) -> None:
    from safetensors.torch import save_file

    from ..runfolder import atomic_write

    if torch.is_tensor(item):
        tensors, kind = {"tensor": item.detach().cpu().contiguous()}, "tensor"
    elif isinstance(item, dict) and all(isinstance(v, (np.ndarray, torch.Tensor)) for v in item.values()):
        tensors, kind = {k: torch.as_tensor(np.ascontiguousarray(v)) for k, v in item.items()}, "arrays"
    else:
        log.warning("cache item %s of type %s not cached", path.name, type(item).__name__)
        return
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"kind": kind}))


def calculate_with_cache(calculate, kwargs: Dict[str, Any], root: Path, name: str) -> Dict[str, Any]:
    """``calculate(**kwargs)`` (torch-fidelity's ``calculate_metrics``) with input2 cached under ``name`` in
    ``root`` as safetensors; a damaged or foreign entry is ignored (and recomputed) with a warning."""
    with tempfile.TemporaryDirectory(prefix="unpaired-fidelity-") as private:
        private = Path(private)
        for entry in sorted(root.glob(f"{name}*.safetensors")):
            try:
                item = read_item(entry, name)
            except Exception as e:  # noqa: BLE001
                log.warning("%s: ignored (%s)", entry, e)
                continue
            torch.save(item, private / f"{entry.name[:-len('.safetensors')]}.pt")
        before = {p.name for p in private.iterdir()}
        raw = calculate(**kwargs, cache=True, cache_root=str(private), input2_cache_name=name)
        for made in private.glob("*.pt"):
            if made.name not in before and made.name.startswith(name):  # torch-fidelity wrote it in this call
                write_item(root / f"{made.stem}.safetensors", torch.load(made, map_location="cpu", weights_only=False))
    return raw
