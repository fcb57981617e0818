"""A harder synthetic two-domain set: plain "horses" <-> striped "zebras" on textured landscapes, with masks.

The colour set (:mod:`unpaired.data.synthetic`) can be passed by recolouring. Here the object must change
TEXTURE: domain A animals are plain brown (shaded), domain B animals are the same silhouettes with black and
white stripes across the body. Backgrounds are textured (multi-scale mottling, a sky band, grass-like
grain), so "change everything that is textured" or "change everything brown" fails too:

* animal = body ellipse + head ellipse + neck + four legs, random size, position and facing;
* A: brown/chestnut (HSV hue 18-35 deg, saturation 0.55-0.8, value 0.45-0.7) with Lambert shading;
* B: stripes of period 4-7 px (at 64 px) across the body axis, black (value ~0.1) and white (~0.92);
* background: sky (blue-grey, top 20-40%) over ground (greens, olive, grey), saturation <= 0.35, with
  mottling at 3 scales and per-pixel grain; no regular stripes and no saturated brown.

The test split is paired (``testA/k.png`` and ``testB/k.png``: the same scene, the same mask), the train
split unpaired, as in :func:`unpaired.data.make_synthetic`; the files and README follow the same layout.
"""

from __future__ import annotations

import colorsys
import os
from pathlib import Path

import numpy as np

from .synthetic import _cap_saturation, _rng, _save_png, _smooth_field, prepare_folders

__all__ = ["make_synthetic_stripes", "stripes_pair"]

BACKGROUND_MAX_SATURATION = 0.35
_GROUND = np.array([(86, 112, 64), (104, 128, 78), (70, 96, 60), (122, 138, 90), (118, 120, 76),
                    (120, 122, 118), (100, 104, 100)], dtype=np.float64)
_SKY = np.array([(150, 170, 190), (170, 185, 200), (130, 150, 175), (185, 190, 195)], dtype=np.float64)


def _background(size: int, rng: np.random.Generator) -> np.ndarray:
    """A textured landscape (H×W×3, 0..255): sky band over mottled ground, grain everywhere."""
    ys = (np.arange(size) + 0.5)[:, None, None] / size
    horizon = rng.uniform(0.2, 0.4) + 0.05 * np.sin(np.linspace(0, rng.uniform(2, 6), size) + rng.uniform(0, 6))
    k = int(rng.integers(3, 6))
    ground = _smooth_field(size, _GROUND[rng.integers(0, len(_GROUND), size=(k, k))] + rng.normal(0, 8, (k, k, 3)))
    sky = _smooth_field(size, _SKY[rng.integers(0, len(_SKY), size=(3, 3))] + rng.normal(0, 6, (3, 3, 3)))
    sky_weight = 1.0 / (1.0 + np.exp((ys - horizon[None, :, None]) * size / 1.5))  # soft horizon
    image = sky * sky_weight + ground * (1 - sky_weight)
    for cells, amplitude in ((6, 14.0), (12, 10.0), (24, 7.0)):  # mottling at three scales (ground mostly)
        image = image + _smooth_field(size, rng.normal(0, amplitude, (cells, cells, 1))) * (1 - 0.7 * sky_weight)
    image = image + rng.normal(0, 5.0, (size, size, 1)) * (1 - sky_weight) + rng.normal(0, 2.0, (size, size, 3))
    return _cap_saturation(np.clip(image, 0, 255), BACKGROUND_MAX_SATURATION)


def _ellipse(xs, ys, cx, cy, a, b, theta):
    cos, sin = np.cos(theta), np.sin(theta)
    u = ((xs - cx) * cos + (ys - cy) * sin) / a
    v = (-(xs - cx) * sin + (ys - cy) * cos) / b
    return u, v, u * u + v * v <= 1.0


def _animal(size: int, rng: np.random.Generator, xs, ys) -> dict:
    """One animal's silhouette, shading and stripe coordinate (arrays H×W)."""
    length = rng.uniform(0.32, 0.5) * size  # body length
    a, b = length / 2, length * rng.uniform(0.2, 0.26)
    facing = rng.choice([-1.0, 1.0])
    tilt = rng.uniform(-0.15, 0.15)
    leg_len = b * rng.uniform(1.3, 1.8)
    cx = rng.uniform(a + 0.1 * size, size - a - 0.1 * size)
    cy = rng.uniform(0.45 * size, size - b - leg_len - 1)
    u, v, body = _ellipse(xs, ys, cx, cy, a, b, tilt)
    hx, hy = cx + facing * (a + 0.15 * length), cy - b * 1.3  # head forward and up
    _, _, head = _ellipse(xs, ys, hx, hy, 0.16 * length, 0.09 * length, facing * 0.5)
    neck_x = np.clip((xs - (cx + facing * 0.6 * a)) * facing / max(1e-6, abs(hx - cx) - 0.6 * a), 0, 1)
    neck_y = cy - neck_x * (cy - hy)
    neck = (((xs - (cx + facing * 0.6 * a)) * facing >= 0) & ((xs - hx) * facing <= 0)
            & (np.abs(ys - neck_y) < 0.1 * length))
    legs = np.zeros_like(body)
    for offset in (-0.7, -0.45, 0.45, 0.7):
        lx = cx + offset * a
        legs |= (np.abs(xs - lx) < max(1.0, 0.035 * length)) & (ys >= cy) & (ys <= cy + b + leg_len)
    silhouette = body | head | neck | legs
    lambert = np.clip(0.55 + 0.45 * np.sqrt(np.clip(1 - u * u - v * v, 0, 1)) - 0.25 * np.clip(v, 0, 1), 0.35, 1.0)
    shade = np.where(body, lambert, 0.8)
    period = rng.uniform(4.0, 7.0) * size / 64
    phase = rng.uniform(0, 2 * np.pi)
    # stripes across the body axis (vertical-ish), bent a little so they are not a fixed grating
    stripe = np.sin(2 * np.pi * ((xs - cx) + 0.25 * (ys - cy) * np.sin(0.3 * (ys - cy) / max(b, 1))) / period + phase)
    colour = colorsys.hsv_to_rgb(rng.uniform(18, 35) / 360, rng.uniform(0.55, 0.8), rng.uniform(0.45, 0.7))
    return {"mask": silhouette, "shade": shade, "stripe": stripe, "colour": np.array(colour) * 255.0}


def _render(size: int, rng: np.random.Generator) -> dict:
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    scene = {"background": _background(size, rng), "animals": []}
    for _ in range(int(rng.integers(1, 3))):
        scene["animals"].append(_animal(size, rng, xs, ys))
    scene["grain"] = rng.normal(0, 4.0, (size, size))
    return scene


def _paint(scene: dict, domain: str) -> tuple[np.ndarray, np.ndarray]:
    image = scene["background"].copy()
    mask = np.zeros(image.shape[:2], dtype=bool)
    for animal in scene["animals"]:  # later animals in front
        sel = animal["mask"]
        shade = animal["shade"][sel][:, None]
        if domain == "A":
            rgb = animal["colour"][None, :] * shade
        else:
            white = np.clip(animal["stripe"][sel] * 3, -1, 1)[:, None] * 0.5 + 0.5  # soft-edged stripes
            rgb = (25.0 + white * 210.0) * shade * np.ones((1, 3))
        image[sel] = rgb + scene["grain"][sel][:, None]
        mask |= sel
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), np.where(mask, 255, 0).astype(np.uint8)


def stripes_pair(size: int = 64, seed=0):
    """One scene in both domains: ``(img_A, mask_A, img_B, mask_B)`` (uint8; identical masks and backgrounds)."""
    scene = _render(size, _rng(seed))
    img_A, mask = _paint(scene, "A")
    img_B, _ = _paint(scene, "B")
    return img_A, mask, img_B, mask.copy()


def make_synthetic_stripes(root: str | os.PathLike, *, size: int = 64, n_train: int = 400, n_test: int = 60,
                           seed: int = 0) -> Path:
    """Write the plain <-> striped set to ``root`` (layout and masks as :func:`make_synthetic`); returns the root."""
    if size < 32 or n_train < 1 or n_test < 1 or seed < 0:
        raise ValueError(f"need size >= 32, n_train >= 1, n_test >= 1, seed >= 0; "
                         f"got {size}, {n_train}, {n_test}, {seed}")
    root = Path(root)
    names = prepare_folders(root, n_train, n_test)
    for domain_index, domain in enumerate("AB"):
        for i, name in enumerate(names["train"]):
            image, mask = _paint(_render(size, _rng([seed, 10, domain_index, i])), domain)
            _save_png(image, root / f"train{domain}" / name)
            _save_png(mask, root / f"train{domain}_masks" / name)
    for i, name in enumerate(names["test"]):
        img_A, mask_A, img_B, mask_B = stripes_pair(size, [seed, 11, i])
        for domain, image, mask in (("A", img_A, mask_A), ("B", img_B, mask_B)):
            _save_png(image, root / f"test{domain}" / name)
            _save_png(mask, root / f"test{domain}_masks" / name)
    (root / "README.md").write_text(
        f"# Synthetic two-domain dataset (plain \"horses\" <-> striped \"zebras\")\n\n"
        f"Generated by `unpaired.data.make_synthetic_stripes(root, size={size}, n_train={n_train}, n_test={n_test}, "
        f"seed={seed})` (`unpaired data synth DIR --kind stripes`). Deterministic.\n\n"
        f"`trainA/ trainB/` ({n_train} each, unpaired), `testA/ testB/` ({n_test} each, paired: the same scene in "
        f"both domains), `<split>_masks/` (255 = animal). A: plain brown animals; B: the same silhouettes with black "
        f"and white stripes. Backgrounds are textured landscapes (saturation <= {BACKGROUND_MAX_SATURATION}). A "
        f"translation must change the animal's texture and leave the background untouched.\n", encoding="utf-8")
    return root
