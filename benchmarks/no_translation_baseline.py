"""FID/KID of doing nothing: the untranslated test inputs scored against the target domain's real test images.

    python benchmarks/no_translation_baseline.py --data DIR --feature-extractor FILE.safetensors

The reference row of a results table: a translation that scores no better than its own input has not moved
the images towards the target domain. Multi-domain data (``DIR/test/<domain>/``): one row per target domain d,
the inputs being the test images of every other domain (as ``unpaired evaluate`` translates them). Same
loading and scoring as ``unpaired evaluate`` (images resized to ``--size``, torch-fidelity, KID subset size =
half the smaller set).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    import torch

    from unpaired.metrics.evaluate import load_split, score
    from unpaired.metrics.extractor import dataset_classes, is_extractor_file
    from unpaired.metrics.fidelity import resolve_extractor

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--split", default="test")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--feature-extractor", default="inception-v3-compat")
    parser.add_argument("--inception-weights")
    args = parser.parse_args()
    metrics = ["fid", "kid"] + (["accuracy"] if is_extractor_file(args.feature_extractor) else [])
    scoring = dict(feature_extractor=args.feature_extractor, weights=args.inception_weights, kid_subset_size=None,
                   device="cpu", extractor_key=resolve_extractor(args.feature_extractor))
    classes = dataset_classes(args.data, args.split)
    loaded = {name: load_split(folder, args.size) for name, folder in classes}
    two_domains = set(loaded) == {"A", "B"}
    for target in ("B", "A") if two_domains else loaded:
        direction = ("AtoB" if target == "B" else "BtoA") if two_domains else f"to {target}"
        inputs = torch.cat([images for name, (_, images) in loaded.items() if name != target])
        real_paths, reals = loaded[target]
        row = {"direction": direction, "n_source": len(inputs), "n_real": len(reals)}
        row.update(score(inputs, reals, real_paths, args.size, target, metrics, scoring))
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
