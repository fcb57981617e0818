"""A small deterministic two-domain dataset ("red apples" <-> "blue apples") with object masks.

Every image is a smooth, textured, muted background (greens, greys, browns) with 1-3 shaded
discs/ellipses on it. Domain A objects are red/orange, domain B objects are the same kind of
shapes in cyan/blue. Translating A <-> B is therefore a recolouring of the objects only; the
background must stay unchanged, and the ground-truth masks say where the objects are, so an
attention model's masks can be scored. A small GAN learns it in a few CPU minutes at 64 px.

Background saturation is capped at :data:`BACKGROUND_MAX_SATURATION` (HSV) while object colours
have saturation >= 0.7 (except a small specular highlight), so object colours never occur in
the background. The test split is *paired*: ``testA/k.png`` and ``testB/k.png`` show the same
scene with the objects in the two colours (one shared mask), which gives ground truth for
evaluating translations. The train split is unpaired (independent scenes per domain).
"""

from __future__ import annotations

import colorsys
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["make_synthetic", "make_synthetic_domains", "synthetic_pair", "BACKGROUND_MAX_SATURATION",
           "HUE_RANGE_A", "HUE_RANGE_B"]

BACKGROUND_MAX_SATURATION = 0.40
HUE_RANGE_A = (0.0, 30.0)  # degrees: red .. orange
HUE_RANGE_B = (190.0, 230.0)  # degrees: cyan-blue .. blue (hue_B = 190 + hue_A * 4/3)

# Muted background colours (RGB): greens, olive, greys, browns.
_PALETTE = np.array(
    [
        (86, 112, 64), (104, 128, 78), (70, 96, 60), (122, 138, 90),
        (118, 120, 76),
        (120, 122, 118), (100, 104, 100), (140, 140, 134),
        (124, 106, 82), (108, 92, 72), (136, 120, 96),
    ],
    dtype=np.float64,
)
_LIGHT = np.array([-0.45, -0.55, 0.70]) / np.linalg.norm([-0.45, -0.55, 0.70])
_SPLITS = ("trainA", "trainB", "testA", "testB")


def _smooth_field(size: int, nodes: np.ndarray) -> np.ndarray:
    """Interpolate a ``k x k x C`` grid of node values to ``size x size x C`` (smoothstep-bilinear)."""
    k = nodes.shape[0]
    coords = (np.arange(size) + 0.5) / size * (k - 1)
    i0 = np.clip(np.floor(coords).astype(int), 0, k - 2)
    t = coords - i0
    t = t * t * (3 - 2 * t)
    rows = nodes[i0] * (1 - t)[:, None, None] + nodes[i0 + 1] * t[:, None, None]  # size x k x C
    return rows[:, i0] * (1 - t)[None, :, None] + rows[:, i0 + 1] * t[None, :, None]


def _cap_saturation(rgb: np.ndarray, max_saturation: float) -> np.ndarray:
    """Lower the HSV saturation of each pixel to at most ``max_saturation``, keeping hue and value."""
    mx = rgb.max(axis=-1, keepdims=True)
    mn = rgb.min(axis=-1, keepdims=True)
    sat = (mx - mn) / np.maximum(mx, 1e-6)
    scale = np.minimum(1.0, max_saturation / np.maximum(sat, 1e-6))
    return mx - (mx - rgb) * scale


def _render_scene(size: int, rng: np.random.Generator) -> dict:
    """Draw everything about one scene except the object colours' domain.

    Returns the background (``HxWx3`` float, 0..255), a per-pixel ``owner`` map (object index or
    -1), a shading and a specular map (``HxW``), a fine grain map, and per-object colour
    parameters (``hue`` in A's range, ``sat``, ``val``).
    """
    k = int(rng.integers(3, 6))
    nodes = _PALETTE[rng.integers(0, len(_PALETTE), size=(k, k))] + rng.normal(0, 8, size=(k, k, 3))
    background = _smooth_field(size, nodes)
    mid = rng.normal(0, 7, size=(12, 12, 1))  # mid-frequency luminance texture
    background = background + _smooth_field(size, mid)
    background = background + rng.normal(0, 2.0, size=(size, size, 3))  # mild colour noise
    grain = rng.normal(0, 3.0, size=(size, size))  # luminance grain, shared by objects
    background = _cap_saturation(np.clip(background + grain[..., None], 0, 255), BACKGROUND_MAX_SATURATION)

    owner = np.full((size, size), -1, dtype=np.int64)
    shade = np.zeros((size, size))
    spec = np.zeros((size, size))
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    objects = []
    for index in range(int(rng.integers(1, 4))):
        a = rng.uniform(0.14, 0.32) * size / 2  # semi-major axis: diameter 14-32% of the side
        b = a * rng.uniform(0.75, 1.0)
        theta = rng.uniform(0, np.pi)
        cx, cy = rng.uniform(0.8 * a, size - 0.8 * a, size=2)
        cos, sin = np.cos(theta), np.sin(theta)
        u = ((xs - cx) * cos + (ys - cy) * sin) / a
        v = (-(xs - cx) * sin + (ys - cy) * cos) / b
        inside = u * u + v * v <= 1.0
        z = np.sqrt(np.clip(1.0 - u * u - v * v, 0.0, 1.0))
        nx, ny = u * cos - v * sin, u * sin + v * cos  # surface normal back in image axes
        lambert = np.clip(nx * _LIGHT[0] + ny * _LIGHT[1] + z * _LIGHT[2], 0.0, 1.0)
        owner[inside] = index
        shade[inside] = (0.5 + 0.5 * lambert)[inside]
        spec[inside] = (0.5 * lambert**24)[inside]
        objects.append(
            {
                "hue": float(rng.uniform(*HUE_RANGE_A)),
                "sat": float(rng.uniform(0.75, 0.95)),
                "val": float(rng.uniform(0.80, 1.0)),
            }
        )
    return {"background": background, "owner": owner, "shade": shade, "spec": spec, "grain": grain,
            "objects": objects}


def _object_rgb(obj: dict, domain: str | float) -> np.ndarray:
    """Base RGB colour (0..255) of an object in ``domain`` ("A": red/orange, "B": cyan/blue, a number:
    the multi-domain set's base hue in degrees, objects at base .. base + 30)."""
    if isinstance(domain, str):
        hue = obj["hue"] if domain == "A" else HUE_RANGE_B[0] + (obj["hue"] - HUE_RANGE_A[0]) * 4 / 3
    else:
        hue = (domain + obj["hue"] - HUE_RANGE_A[0]) % 360.0
    return np.array(colorsys.hsv_to_rgb(hue / 360.0, obj["sat"], obj["val"])) * 255.0


def _paint(scene: dict, domain: str | float) -> tuple[np.ndarray, np.ndarray]:
    """Composite the scene's objects in ``domain`` colours; return ``(image uint8 HxWx3, mask uint8 HxW)``."""
    image = scene["background"].copy()
    owner, shade, spec = scene["owner"], scene["shade"], scene["spec"]
    for index, obj in enumerate(scene["objects"]):
        sel = owner == index
        if not sel.any():
            continue
        colour = _object_rgb(obj, domain)[None, :] * shade[sel][:, None]
        colour = colour * (1 + scene["grain"][sel][:, None] / 255.0)
        s = spec[sel][:, None]
        image[sel] = colour * (1 - s) + 255.0 * s
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    mask = np.where(owner >= 0, 255, 0).astype(np.uint8)
    return image, mask


def _rng(seed: int | Sequence[int]) -> np.random.Generator:
    entropy = [int(seed)] if np.isscalar(seed) else [int(s) for s in seed]
    return np.random.default_rng(entropy)


def synthetic_pair(
    size: int = 64, seed: int | Sequence[int] = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Render one scene in both domains: ``(img_A, mask_A, img_B, mask_B)``.

    Images are ``size x size x 3`` uint8, masks ``size x size`` uint8 (255 = object). The two
    images differ only inside the (identical) masks: same background, same shapes and shading,
    objects red/orange in A and cyan/blue in B. ``seed`` is a non-negative int or a sequence of
    them; equal seeds give identical arrays.
    """
    scene = _render_scene(size, _rng(seed))
    img_A, mask_A = _paint(scene, "A")
    img_B, mask_B = _paint(scene, "B")
    return img_A, mask_A, img_B, mask_B


def _save_png(array: np.ndarray, path: Path) -> None:
    """Save an array as PNG without any metadata (byte-identical for identical arrays)."""
    Image.fromarray(array).save(path, format="PNG", compress_level=6)


def _readme(size: int, n_train: int, n_test: int, seed: int) -> str:
    return f"""# Synthetic two-domain dataset ("red apples" <-> "blue apples")

Generated by `unpaired.data.make_synthetic(root, size={size}, n_train={n_train}, n_test={n_test}, seed={seed})`.
Deterministic: the same arguments give byte-identical files.

Layout (CycleGAN): `trainA/ trainB/` ({n_train} images each), `testA/ testB/` ({n_test} each),
{size}x{size} RGB PNG.

* Every image has a smooth, textured background in muted greens, greys and browns (HSV
  saturation <= {BACKGROUND_MAX_SATURATION}), different per image, and 1-3 shaded discs/ellipses
  (diameter 14-32% of the side, may overlap or touch the border).
* Domain A objects are red/orange (hue {HUE_RANGE_A[0]:.0f}-{HUE_RANGE_A[1]:.0f} deg), domain B objects
  cyan/blue (hue {HUE_RANGE_B[0]:.0f}-{HUE_RANGE_B[1]:.0f} deg, hue_B = 190 + 4/3 * hue_A), saturation >= 0.7
  apart from a small specular highlight. Object colours never occur in the backgrounds.
* A <-> B translation = recolour the objects, leave the background untouched.

## Masks

`trainA_masks/ trainB_masks/ testA_masks/ testB_masks/` hold one grey PNG per image with the
same file name: 255 = object, 0 = background (hard edges, exactly the recoloured pixels).
Use them to score attention masks or to measure background preservation.

The test split is paired: `testA/k.png` and `testB/k.png` are the same scene in the two colours
(identical outside the mask, identical masks), so a translated `testA/k.png` can be compared
with `testB/k.png` directly. The train split is unpaired (independent scenes).
"""


def prepare_folders(root: Path, n_train: int, n_test: int) -> dict:
    """Create ``root/{train,test}{A,B}`` and their ``_masks`` folders; return the file names per split
    (``{"train": [...], "test": [...]}``). Files named like ours (``0012.png``) left over from an earlier,
    larger generation are deleted; other files are not touched."""
    width = max(4, len(str(max(n_train, n_test) - 1)))
    names = {"train": [f"{i:0{width}d}.png" for i in range(n_train)],
             "test": [f"{i:0{width}d}.png" for i in range(n_test)]}
    for split in _SPLITS:
        for folder in (root / split, root / f"{split}_masks"):
            folder.mkdir(parents=True, exist_ok=True)
            keep = set(names[split[:-1]])
            for stale in folder.iterdir():
                if stale.is_file() and re.fullmatch(r"\d+\.png", stale.name) and stale.name not in keep:
                    stale.unlink()
    return names


def make_synthetic(
    root: str | os.PathLike, *, size: int = 64, n_train: int = 200, n_test: int = 30, seed: int = 0
) -> Path:
    """Write the synthetic dataset to ``root`` (created if needed) and return ``Path(root)``.

    Writes ``trainA trainB testA testB`` (RGB PNG), ``<split>_masks`` (grey PNG, 255 = object,
    same file names) and ``README.md``. Train scenes are independent per domain; test scenes are
    paired (see module docstring). Files named like ours (``0012.png``) left over from an
    earlier, larger generation in these folders are deleted; other files are not touched.
    """
    if size < 8 or n_train < 1 or n_test < 1 or seed < 0:
        raise ValueError(f"need size >= 8, n_train >= 1, n_test >= 1, seed >= 0; got {size}, {n_train}, {n_test}, {seed}")
    root = Path(root)
    names = prepare_folders(root, n_train, n_test)
    for domain_index, domain in enumerate("AB"):
        for i, name in enumerate(names["train"]):
            scene = _render_scene(size, _rng([seed, 0, domain_index, i]))
            image, mask = _paint(scene, domain)
            _save_png(image, root / f"train{domain}" / name)
            _save_png(mask, root / f"train{domain}_masks" / name)
    for i, name in enumerate(names["test"]):
        img_A, mask_A, img_B, mask_B = synthetic_pair(size, [seed, 1, i])
        _save_png(img_A, root / "testA" / name)
        _save_png(mask_A, root / "testA_masks" / name)
        _save_png(img_B, root / "testB" / name)
        _save_png(mask_B, root / "testB_masks" / name)
    (root / "README.md").write_text(_readme(size, n_train, n_test, seed), encoding="utf-8")
    return root


def make_synthetic_domains(
    root: str | os.PathLike, n_domains: int = 3, *, size: int = 64, n_train: int = 100, n_test: int = 10,
    seed: int = 0,
) -> Path:
    """Write a synthetic multi-domain set: ``root/train/<domain>/`` and ``root/test/<domain>/`` (PNG).

    The scenes are those of :func:`make_synthetic`; domain k colours the objects with hues from
    ``360·k/n_domains`` to 30 degrees above it and is named ``hue<degrees>`` (e.g. ``hue000``, ``hue120``,
    ``hue240`` for 3 domains). Train scenes are independent per domain; test scene i is the same scene in
    every domain (paired). Deterministic: the same arguments give identical files.
    """
    if not 2 <= n_domains <= 36 or size < 8 or n_train < 1 or n_test < 1 or seed < 0:
        raise ValueError(f"need 2 <= n_domains <= 36, size >= 8, n_train >= 1, n_test >= 1, seed >= 0; got "
                         f"{n_domains}, {size}, {n_train}, {n_test}, {seed}")
    root = Path(root)
    hues = [360.0 * k / n_domains for k in range(n_domains)]
    width = max(4, len(str(max(n_train, n_test) - 1)))
    for k, hue in enumerate(hues):
        name = f"hue{int(hue):03d}"
        for split, count, stream in (("train", n_train, 2), ("test", n_test, 3)):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):  # test scenes: one per i, shared by the domains
                scene = _render_scene(size, _rng([seed, stream, k if split == "train" else 0, i]))
                _save_png(_paint(scene, hue)[0], folder / f"{i:0{width}d}.png")
    return root
