"""Time FID + KID scoring of translated images with the standard Inception-v3, real statistics cached.

    python benchmarks/score_speed.py                                # 500 images, 256 px, CPU
    python benchmarks/score_speed.py --inception-weights PATH       # with the real weights file

The goal (issue #6): scoring 500 translated images on a CPU takes < 2 minutes when the real images' features
are cached (the usual case: one test set, many checkpoints). The reference measured in the same run is the
same call with an empty cache (the real images' features computed too).

Without ``--inception-weights`` the script writes an Inception-v3 file with PyTorch's default random
initialisation in torch-fidelity's format: the same network and the same arithmetic, so the same time, but
the scores themselves mean nothing (printed only to show that the run completed). Images are random smooth
uint8 images; what they show does not change the time.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def random_inception_file(path: Path) -> Path:
    """torch-fidelity's Inception-v3 with default-initialised weights, saved as a plain state dict."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    load = FeatureExtractorInceptionV3.load_state_dict
    FeatureExtractorInceptionV3.load_state_dict = lambda self, state_dict, *a, **k: None
    try:
        torch.manual_seed(0)
        with tempfile.NamedTemporaryFile(suffix=".pth") as stub:
            torch.save({}, stub.name)
            model = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=stub.name)
    finally:
        FeatureExtractorInceptionV3.load_state_dict = load
    torch.save(model.state_dict(), path)
    return path


def smooth_images(n: int, size: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 3, 16, 16, generator=g)
    return (torch.nn.functional.interpolate(base, size=(size, size), mode="bilinear") * 255).to(torch.uint8)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=500, help="translated images to score")
    parser.add_argument("--n-real", type=int, default=500, help="real images (their features get cached)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--inception-weights", help="the real pt_inception-2015-12-05 file (default: random weights)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from unpaired.metrics.fidelity import fidelity_scores

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["UNPAIRED_CACHE"] = tmp
        weights = args.inception_weights or str(random_inception_file(Path(tmp) / "inception-random.pth"))
        fake, real = smooth_images(args.n, args.size, 1), smooth_images(args.n_real, args.size, 2)
        print(f"# FID+KID of {args.n} translated vs {args.n_real} real images at {args.size} px, Inception-v3 "
              f"({'given weights' if args.inception_weights else 'random weights: timing only'}), "
              f"{torch.get_num_threads()} threads, torch {torch.__version__}, {platform.processor() or platform.machine()}")

        def score(cache_name: str):
            start = time.perf_counter()
            out = fidelity_scores(fake, real, weights=weights, real_cache=cache_name, batch_size=args.batch_size)
            return time.perf_counter() - start, out

        uncached, _ = score("bench-real")  # computes and caches the real features
        cached, out = score("bench-real")  # reads them back
        print(f"uncached (real features computed): {uncached:.1f} s")
        print(f"cached real features:              {cached:.1f} s  ({uncached / cached:.2f}x faster; "
              f"goal < 120 s: {'met' if cached < 120 else 'NOT met'})")
        print(f"scores (meaningless with random weights): FID {out['fid']:.2f}, KID x100 {out['kid_x100']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
