"""``unpaired evaluate``: translate a split and score the translations against the target domain's real images.

For direction AtoB the sources are ``DATA/{split}A`` and the reals ``DATA/{split}B`` (BtoA the other way).
Multi-domain models (``DATA/{split}/<domain>/``): for each target domain d, every test image of the OTHER
domains is translated to d and scored against the real images of d (one row per target, ``direction`` "to d").
Images are resized to the generator's training size (as the official test scripts do), translated in
batches without gradients, and scored (``region``: change outside a fixed mask such as the eyes and mouth of aligned
faces, ``--region FILE``); results are printed as a table, appended to ``RUN/metrics.jsonl``
and optionally written to ``--json``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F

from ..data import load_split  # noqa: F401  (re-exported: benchmarks read splits through it)
from ..models.base import InputSize, normalise_heatmap
from .extractor import domain_accuracy, is_extractor_file

KNOWN_METRICS = ("fid", "kid", "masks", "accuracy", "region")


class EvaluationError(ValueError):
    """A request ``unpaired evaluate`` cannot serve (metric, extractor or data), said in one line."""


def _load_masks(folder: Path, paths: Sequence[Path], size) -> Optional[torch.Tensor]:
    from .masks import read_mask

    files = [folder / (p.stem + ".png") for p in paths]
    if not folder.is_dir() or not all(f.exists() for f in files):
        return None
    return torch.stack([read_mask(f, size)[None] for f in files])


@torch.no_grad()
def translate_tensors(generator, images: torch.Tensor, batch_size: int, device,
                      label: Optional[torch.Tensor] = None, *, size: InputSize) -> Dict[str, torch.Tensor]:
    """Translated images and the predicted foreground (attention, or the heatmap scaled to [0, 1]);
    ``label`` (1×c) is the target of a multi-domain generator; ``size``: its card's input-size rule."""
    from ..inference import run_any_size
    from ..tiling import DEFAULT_MAX_MEMORY

    fakes, fgs = [], []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].to(device)
        labels = None if label is None else label.to(device).expand(len(batch), -1)
        out = run_any_size(generator, batch, labels, size=size, max_memory=DEFAULT_MAX_MEMORY)
        fakes.append(out.image.float().cpu())
        fg = out.foreground()
        if fg is None and out.heatmap is not None:
            fg = normalise_heatmap(out.heatmap, batch.shape[-2:])
        if fg is not None:
            fgs.append(F.interpolate(fg.float(), size=batch.shape[-2:]).cpu() if fg.shape[-2:] != batch.shape[-2:]
                       else fg.float().cpu())
    return {"image": torch.cat(fakes), "foreground": torch.cat(fgs) if fgs else None}


def evaluate(translator, data: Path, *, split: str = "test", directions: Sequence[str] = ("AtoB", "BtoA"),
             metrics: Sequence[str] = ("fid", "kid"), feature_extractor: str = "inception-v3-compat",
             inception_weights: Optional[str] = None, kid_subset_size: Optional[int] = None,
             batch_size: int = 16, device: str = "cpu", limit: Optional[int] = None,
             region: Optional[str] = None) -> List[Dict[str, object]]:
    from .fidelity import resolve_extractor

    unknown = [m for m in metrics if m not in KNOWN_METRICS]
    if unknown:
        raise EvaluationError(f"--metrics: unknown {', '.join(unknown)}; choose from {', '.join(KNOWN_METRICS)}")
    if "accuracy" in metrics and not is_extractor_file(feature_extractor):
        raise EvaluationError("--metrics accuracy needs --feature-extractor FILE.safetensors (a domain classifier "
                         "written by `unpaired extractor train`)")
    if ("region" in metrics) != (region is not None):
        raise EvaluationError("--metrics region and --region FILE.png (white = the part allowed to change) go together")
    region_mask = None
    if region is not None:
        from .masks import load_region

        try:
            region_mask = load_region(region)
        except ValueError as e:
            raise EvaluationError(str(e)) from e
    data = Path(data)
    extractor_key = resolve_extractor(feature_extractor) if {"fid", "kid"} & set(metrics) else feature_extractor
    scoring = dict(feature_extractor=feature_extractor, weights=inception_weights, kid_subset_size=kid_subset_size,
                   device=device, extractor_key=extractor_key, region=region_mask, region_file=region)
    if getattr(translator, "domains", None):
        return _evaluate_targets(translator, data, split, metrics, scoring, batch_size, limit)
    results = []
    for direction in directions:
        source, target = ("A", "B") if direction == "AtoB" else ("B", "A")
        generator, rule = translator.generator(direction), translator.cards[direction].input_size
        size = rule.train
        started = time.time()
        src_paths, sources = load_split(data / f"{split}{source}", size, limit=limit)
        real_paths, reals = load_split(data / f"{split}{target}", size, limit=limit)
        out = translate_tensors(generator, sources, batch_size, device, size=rule)
        row: Dict[str, object] = {"direction": direction, "split": split, "n_source": len(sources),
                                  "n_real": len(reals), "size": size}
        row.update(score(out["image"], reals, real_paths, size, target, metrics, scoring, sources,
                         out["foreground"]))
        if "masks" in metrics:
            from .masks import mask_scores

            masks = _load_masks(data / f"{split}{source}_masks", src_paths, tuple(sources.shape[-2:]))
            if masks is None:
                raise FileNotFoundError(f"--metrics masks: {data / f'{split}{source}_masks'} must hold a mask "
                                        f"<stem>.png for every image of {data / f'{split}{source}'}")
            paired = [data / f"{split}{target}" / p.name for p in src_paths]
            targets = None
            if all(p.exists() for p in paired) and [p.name for p in real_paths] == [p.name for p in src_paths]:
                targets = reals
            row.update(mask_scores(sources, out["image"], masks, out["foreground"], targets))
        row["seconds"] = round(time.time() - started, 2)
        results.append(row)
    return results


def _evaluate_targets(translator, data: Path, split: str, metrics, scoring: dict, batch_size: int,
                      limit) -> List[Dict[str, object]]:
    """A multi-domain model: one row per target domain (sources: the test images of the other domains)."""
    from ..models.base import MULTI

    if "masks" in metrics:
        raise EvaluationError("--metrics masks: multi-domain data has no ground-truth masks; use fid, kid, accuracy")
    rule = translator.cards[MULTI].input_size
    size = rule.train
    generator = translator.generator()
    loaded = {d: load_split(data / split / d, size, limit=limit) for d in translator.domains}
    results = []
    for target in translator.domains:
        started = time.time()
        sources = torch.cat([images for d, (_, images) in loaded.items() if d != target])
        real_paths, reals = loaded[target]
        out = translate_tensors(generator, sources, batch_size, scoring["device"], translator.label_for(target),
                                size=rule)
        row: Dict[str, object] = {"direction": f"to {target}", "target": target, "split": split,
                                  "n_source": len(sources), "n_real": len(reals), "size": size}
        row.update(score(out["image"], reals, real_paths, size, target, metrics, scoring, sources,
                         out["foreground"]))
        row["seconds"] = round(time.time() - started, 2)
        results.append(row)
    return results


def score(fakes: torch.Tensor, reals: torch.Tensor, real_paths, size, target: str, metrics, scoring: dict,
          sources: Optional[torch.Tensor] = None, foreground: Optional[torch.Tensor] = None) -> dict:
    """FID/KID (real features cached under the files, size and extractor), domain accuracy of ``fakes`` and,
    with ``sources``, the change outside ``scoring["region"]`` (and, with the predicted ``foreground``, how much
    of it lies inside)."""
    from .fidelity import cache_name, fidelity_scores, to_uint8

    row: Dict[str, object] = {}
    extractor = scoring["feature_extractor"]
    if "fid" in metrics or "kid" in metrics:
        row["feature_extractor"] = extractor
        row.update(fidelity_scores(
            to_uint8(fakes), to_uint8(reals), fid="fid" in metrics, kid="kid" in metrics, feature_extractor=extractor,
            weights=scoring["weights"], real_cache=cache_name(real_paths, size or 0, scoring["extractor_key"]),
            kid_subset_size=scoring["kid_subset_size"], device=scoring["device"]))
    if "accuracy" in metrics:
        row.update(domain_accuracy(extractor, to_uint8(fakes), target))
    if "region" in metrics and sources is not None:
        from .masks import region_scores

        region = F.interpolate(scoring["region"], size=sources.shape[-2:], mode="nearest")
        row.update(region_scores(sources, fakes, region, foreground), region=str(scoring["region_file"]))
    return row


def format_table(results: List[Dict[str, object]]) -> str:
    columns = ["direction", "n_source", "n_real", "fid", "kid_x100", "kid_std_x100", "accuracy", "background_psnr",
               "far_background_psnr", "background_ssim", "foreground_change", "attention_iou", "target_psnr",
               "success", "outside_psnr", "outside_ssim", "outside_change", "inside_change", "inside_share",
               "attention_inside", "seconds"]
    columns = [c for c in columns if any(c in r for r in results)]

    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    rows = [[fmt(r.get(c, "")) for c in columns] for r in results]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)
