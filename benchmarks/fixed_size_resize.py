"""Full U-GAT-IT on images larger than its training size: what ``translate``'s resize-and-back costs.

Full U-GAT-IT's MLP flattens an (img_size/4)² feature map, so the generator runs only at its training size
(``InputSize.fixed``): ``Translator`` resizes a larger image to it (PIL bilinear, antialiased, on uint8 pixels),
translates, and resizes the output back (tiling/__init__.py ``translate_resized``). There is no whole-image
reference at other sizes (the model does not exist there), so this measures what the round trip itself costs,
per side:

* ``detail_psnr``: the input against its own round trip through the fixed size: the detail that no output made at
  that size can carry back (an upper bound on how close any resized translation can stay to the input's detail);
* seconds (memory: ``translate_large.py --cells ugatit:8000:auto``; the MLP's weights alone are 1.07 GB).

Inputs: RGB noise with a 1/f amplitude spectrum (the falloff of natural photographs; the shared face photos are
128 px, so upscaled they have no detail to lose), made at each side (seed 0). Random ngf-64 weights
N(0, 0.02), seed 0, img_size 256 (the paper's).

    python benchmarks/fixed_size_resize.py --sides 512 1000 2000 4000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def pink_noise(side: int, seed: int = 0) -> np.ndarray:
    """side×side×3 uint8 noise whose amplitude falls as 1/f (per channel), stretched to 0-255."""
    rng = np.random.default_rng(seed)
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(side), np.fft.rfftfreq(side), indexing="ij"))
    f[0, 0] = 1.0
    channels = []
    for _ in range(3):
        spectrum = (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)) / f
        field = np.fft.irfft2(spectrum, s=(side, side))
        channels.append((field - field.min()) / (field.max() - field.min()))
    return (np.stack(channels, axis=-1) * 255).round().astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 100.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sides", type=int, nargs="+", default=[512, 1000, 2000, 4000])
    parser.add_argument("--img-size", type=int, default=256)
    args = parser.parse_args()

    import torch

    from unpaired.inference import Translator
    from unpaired.models import get_model
    from unpaired.models.base import InputSize
    from unpaired.nn.init import init_weights

    fixed = args.img_size
    spec = get_model("ugatit")
    model_args = spec.args(img_size=fixed)
    torch.manual_seed(0)
    generator = init_weights(spec.build_generator(model_args).eval(), "normal", 0.02)
    card = {"model": "ugatit", "args": vars(model_args), "direction": "AtoB",
            "input_size": InputSize(train=fixed, multiple=4, fixed=fixed)}
    translator = Translator({"AtoB": generator}, {"AtoB": card})
    small = lambda pixels: np.asarray(Image.fromarray(pixels).resize((fixed, fixed), Image.BILINEAR))  # noqa: E731
    for side in args.sides:
        pixels = pink_noise(side)
        start = time.perf_counter()
        out = np.asarray(translator.translate(pixels, attention=False).image)
        seconds = time.perf_counter() - start
        back = np.asarray(Image.fromarray(small(pixels)).resize((side, side), Image.BILINEAR))
        print(json.dumps({"side": side, "fixed": fixed, "seconds": round(seconds, 2),
                          "detail_psnr": round(psnr(pixels, back), 2), "output": list(out.shape)}),
              flush=True)


if __name__ == "__main__":
    main()
