"""Two kinds of checkpoint in a run folder.

* ``checkpoints/step_{step:07d}.pt``: the full training state for ``--resume`` (networks, optimisers,
  AMP scalers, image pools, every RNG state, step, resolved config, package version). Written to a
  temporary file, flushed to disk and renamed, so a crash during a save never destroys the last good one.
  Loaded with ``torch.load(weights_only=True)``: no pickled code.
* ``generators/{direction}.safetensors`` + ``{direction}.json`` (model name, its arguments, version): what
  inference needs, loadable from strangers without executing anything.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

CHECKPOINT_RE = re.compile(r"^step_(\d+)\.pt$")


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)``, fsync, then rename over ``path`` (same folder, so the rename is atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    def write(tmp):
        Path(tmp).write_text(text)

    atomic_write(path, write)


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step_{step:07d}.pt"


def list_checkpoints(run_dir: Path) -> List[Path]:
    """Complete checkpoints of a run, oldest first (temporary files of interrupted saves are ignored)."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := CHECKPOINT_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: Path) -> Optional[Path]:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def save_training_state(path: Path, state: Dict[str, Any]) -> None:
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_training_state(path: Path, map_location="cpu") -> Dict[str, Any]:
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - re-raised with the file name
        raise RuntimeError(f"{path}: cannot read this training checkpoint ({type(e).__name__}: {e})") from e


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)


def rng_state() -> Dict[str, Any]:
    import random

    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    import random

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------------------------------------
# inference weights


def save_generator(folder: Path, name: str, module: torch.nn.Module, meta: Dict[str, Any]) -> Path:
    """``folder/{name}.safetensors`` + ``folder/{name}.json``; ``meta`` must hold ``model`` and ``args``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    weights = folder / f"{name}.safetensors"
    atomic_write(weights, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    atomic_write_text(folder / f"{name}.json", json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return weights


def load_generator(weights: Path, device="cpu"):
    """Rebuild a generator from ``X.safetensors`` and its ``X.json``; returns (module, meta)."""
    from safetensors.torch import load_file

    from ..models import get_model

    weights = Path(weights)
    meta_path = weights.with_suffix(".json")
    if not meta_path.exists():
        raise FileNotFoundError(f"{meta_path}: missing; it says which model {weights.name} belongs to")
    meta = json.loads(meta_path.read_text())
    spec = get_model(meta["model"])
    module = spec.build_generator(spec.args(**meta["args"]))
    state = load_file(str(weights), device="cpu")
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"{weights}: does not fit model {meta['model']!r} with {meta['args']}: "
                           f"missing {missing[:5]}, unexpected {unexpected[:5]}")
    return module.to(device).eval(), meta
