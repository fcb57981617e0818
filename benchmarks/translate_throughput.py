"""Translation throughput on CPU: ``Translator`` (batched) against the official test loops.

Three ways to translate the same |A| test images A→B at 256 px (paper-size generator, random weights;
speed does not depend on the weights):

1. ``official``: what the official AttentionGAN / CycleGAN ``test.py`` does. Batch 1; the loop runs
   max(|A|, |B|) times (B taken as index % |B|, so with |A| < |B| some A images are translated again), and
   each iteration runs the model's full ``forward()``: fake_B = G(a), rec_A = F(fake_B), fake_A = F(b),
   rec_B = G(fake_A), i.e. four generator passes to deliver one A→B translation. For U-GAT-IT the official
   loop runs genA2B(a), genB2A(fake_A2B) and genB2A(a) per A image (three passes).
   Only the network passes are timed (no image decoding or saving), which flatters this baseline.
2. ``single``: ``Translator.translate`` one image at a time (one pass each, PIL in and out).
3. ``batched``: ``Translator.translate_batch`` in batches of ``--batch-size`` (PIL in and out).

Prints images/s (A→B translations delivered per second) for each and the ratios.

    python benchmarks/translate_throughput.py                       # AttentionGAN, |A|=12, |B|=14, batch 8
    python benchmarks/translate_throughput.py --model cyclegan --n-a 16 --n-b 16
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unpaired.data import to_tensor  # noqa: E402
from unpaired.inference import Translator  # noqa: E402
from unpaired.models import get_model, list_models  # noqa: E402


def make_translator(model: str, size: int, keep_cpu_memory: bool = True) -> Translator:
    spec = get_model(model)
    fields = {f for f in spec.args.__dataclass_fields__}
    args = spec.args(**({"img_size": size} if "img_size" in fields else {}))  # paper defaults otherwise
    torch.manual_seed(0)
    generators = {d: spec.build_generator(args).eval() for d in ("AtoB", "BtoA")}
    return Translator(generators, {d: {"model": model} for d in generators}, keep_cpu_memory=keep_cpu_memory)


def random_images(n: int, size: int, seed: int):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(n)]


@torch.no_grad()
def official_loop(translator: Translator, images_a, images_b, model: str) -> float:
    """Seconds for the official test loop (batch 1, every pass its forward() makes)."""
    G, F = translator.generator("AtoB"), translator.generator("BtoA")
    tensors_a = [to_tensor(im)[None] for im in images_a]
    tensors_b = [to_tensor(im)[None] for im in images_b]
    ugatit = model.startswith("ugatit")
    start = time.perf_counter()
    if ugatit:  # U-GAT-IT test(): A->B, its cycle back, and the identity pass, for each A image
        for a in tensors_a:
            fake_B = G(a).image
            F(fake_B)
            F(a)
    else:  # CycleGAN-family test.py: max(|A|, |B|) iterations of the model's full forward()
        for i in range(max(len(tensors_a), len(tensors_b))):
            a, b = tensors_a[i % len(tensors_a)], tensors_b[i % len(tensors_b)]
            fake_B = G(a).image
            F(fake_B)
            fake_A = F(b).image
            G(fake_A)
    return time.perf_counter() - start


def single_loop(translator: Translator, images) -> float:
    start = time.perf_counter()
    for im in images:
        translator.translate(im, "AtoB")
    return time.perf_counter() - start


def batched(translator: Translator, images, batch_size: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(images), batch_size):
        translator.translate_batch(images[i:i + batch_size], "AtoB")
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", default="attentiongan", choices=list_models())
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--n-a", type=int, default=12, help="A test images (horse2zebra has 120)")
    parser.add_argument("--n-b", type=int, default=14, help="B test images (horse2zebra has 140)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--system-malloc", action="store_true",
                        help="Translator(keep_cpu_memory=False): glibc's defaults for the whole process, official loop too")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    translator = make_translator(args.model, args.size, keep_cpu_memory=not args.system_malloc)
    images_a = random_images(args.n_a, args.size, 0)
    images_b = random_images(args.n_b, args.size, 1)
    translator.translate_batch(images_a[:2], "AtoB")  # warm-up (allocator, oneDNN kernels)

    results = {
        "official": official_loop(translator, images_a, images_b, args.model),
        "single": single_loop(translator, images_a),
        "batched": batched(translator, images_a, args.batch_size),
    }
    rate = {k: args.n_a / v for k, v in results.items()}
    print(f"# {args.model}, {args.size} px, |A|={args.n_a}, |B|={args.n_b}, batch {args.batch_size}, "
          f"{args.threads} threads, torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{'system malloc' if args.system_malloc else 'freed memory kept (host_memory)'}")
    for name, label in (("official", "official test loop (batch 1, all forward() passes)"),
                        ("single", "Translator.translate, one image at a time"),
                        ("batched", f"Translator.translate_batch, batch {args.batch_size}")):
        print(f"{label:<52} {rate[name]:7.3f} images/s  ({results[name]:.1f} s)")
    print(f"batched / official: {rate['batched'] / rate['official']:.2f}x   "
          f"batched / single: {rate['batched'] / rate['single']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
