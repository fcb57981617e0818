"""FID and KID through torch-fidelity (no hand-written Inception or matrix square root).

KID is reported ×100 as mean ± std over subsets, as the U-GAT-IT and AttentionGAN papers print it; the
subset size defaults to half the smaller set (at most 1000) because the papers' test sets hold 100–250 images and
torch-fidelity's default of 1000 would refuse them. ``std`` is torch-fidelity's: the standard deviation
of the subset estimates (the papers' TF script printed a standard error instead, see docs/evaluation.md).

The standard Inception weights come from a local file (``--inception-weights`` or the environment
variable ``UNPAIRED_INCEPTION_WEIGHTS``) or torch's hub cache; nothing is downloaded silently.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Dict, Optional, Sequence

import torch
from torch.utils.data import Dataset

from . import safe_cache

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + INCEPTION_FILE
INCEPTION_EXTRACTORS = ("inception-v3-compat",)


class MissingWeightsError(FileNotFoundError):
    pass


class UInt8Images(Dataset):
    """N×3×H×W uint8 tensor (or list of 3×H×W) as the Dataset torch-fidelity reads."""

    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i]


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats -> uint8 with the official truncating cast of (x + 1) / 2 · 255."""
    return ((images.float().clamp(-1, 1) + 1) / 2 * 255).to(torch.uint8)


def inception_weights(path: Optional[str] = None) -> Optional[str]:
    """The local Inception weights file to use, checked to load with ``weights_only=True``; None when
    torch's hub cache already has it. Raises MissingWeightsError with instructions otherwise."""
    path = path or os.environ.get("UNPAIRED_INCEPTION_WEIGHTS")
    if path:
        if not Path(path).is_file():
            raise MissingWeightsError(f"--inception-weights {path}: no such file")
        return _checked_weights(path)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    if cached.is_file():  # torch-fidelity would load it with weights_only=False: load it safely first
        return _checked_weights(cached)
    raise MissingWeightsError(
        f"FID/KID with the standard Inception need its weights, {INCEPTION_FILE}, and none was found. Download it "
        f"on a machine with network ({INCEPTION_URL}), then pass --inception-weights PATH or set "
        f"UNPAIRED_INCEPTION_WEIGHTS=PATH (or put it in {cached.parent}). For a quick check that is not comparable "
        f"with published numbers: --feature-extractor unpaired-tiny."
    )


def _checked_weights(path) -> str:
    """``path``, after it loaded with ``weights_only=True`` as a mapping of tensors (a pickle that would run code
    is refused here, before torch-fidelity, which loads it with ``weights_only=False``, sees it)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise MissingWeightsError(f"{path}: refused: not a plain PyTorch state dict ({type(e).__name__}: "
                                  f"{str(e).splitlines()[0][:200]})") from None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise MissingWeightsError(f"{path}: refused: not a mapping of names to tensors")
    return str(path)


def cache_name(paths: Sequence[Path], size: int, extractor: str) -> str:
    """A key for the cached real-image features: the files (names, sizes, mtimes), the size and the extractor."""
    h = hashlib.sha1(f"{size}|{extractor}".encode())
    for p in paths:
        st = Path(p).stat()
        h.update(f"|{Path(p).resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return f"unpaired-real-{h.hexdigest()[:20]}"


def cache_root() -> str:
    root = os.environ.get("UNPAIRED_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "unpaired", "fidelity")
    os.makedirs(root, exist_ok=True)
    return root


def default_kid_subset_size(n_fake: int, n_real: int) -> int:
    """Half the smaller set (at most torch-fidelity's 1000), so the subsets differ and the std means something."""
    return max(2, min(1000, min(n_fake, n_real) // 2))


def resolve_extractor(feature_extractor: str) -> str:
    """The torch-fidelity registry name of ``feature_extractor``: a registered name (the stand-ins are
    registered here), or a ``.safetensors`` file written by ``unpaired extractor train``."""
    from .extractor import is_extractor_file, register_file
    from .standin import register

    register()
    if is_extractor_file(feature_extractor):
        return register_file(feature_extractor)
    return feature_extractor


def fidelity_scores(fake: torch.Tensor, real: torch.Tensor, *, fid: bool = True, kid: bool = True,
                    feature_extractor: str = "inception-v3-compat", weights: Optional[str] = None,
                    real_cache: Optional[str] = None, kid_subset_size: Optional[int] = None,
                    kid_subsets: int = 100, batch_size: int = 32, device: str = "cpu") -> Dict[str, float]:
    """FID and KID×100 between ``fake`` and ``real`` (N×3×H×W uint8)."""
    import torch_fidelity

    feature_extractor = resolve_extractor(feature_extractor)
    n_fake, n_real = len(fake), len(real)
    if n_fake < 2 or n_real < 2:
        raise ValueError(f"FID/KID need at least 2 images on each side (translated {n_fake}, real {n_real})")
    subset = kid_subset_size or default_kid_subset_size(n_fake, n_real)
    kwargs = dict(input1=UInt8Images(fake), input2=UInt8Images(real), fid=fid, kid=kid,
                  feature_extractor=feature_extractor, kid_subset_size=subset, kid_subsets=kid_subsets,
                  batch_size=batch_size, cuda=str(device).startswith("cuda"), verbose=False, save_cpu_ram=True)
    if feature_extractor in INCEPTION_EXTRACTORS:
        kwargs["feature_extractor_weights_path"] = inception_weights(weights)
    if real_cache:
        raw = safe_cache.calculate_with_cache(torch_fidelity.calculate_metrics, kwargs, Path(cache_root()), real_cache)
    else:
        raw = torch_fidelity.calculate_metrics(**kwargs, cache=False)
    out: Dict[str, float] = {"n_fake": n_fake, "n_real": n_real}
    if fid:
        out["fid"] = float(raw["frechet_inception_distance"])
    if kid:
        out["kid_x100"] = 100 * float(raw["kernel_inception_distance_mean"])
        out["kid_std_x100"] = 100 * float(raw["kernel_inception_distance_std"])
        out["kid_subset_size"] = subset
    return out
