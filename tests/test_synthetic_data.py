"""Tests for unpaired.data's synthetic sets (``unpaired data synth``): deterministic, well formed, paired test split."""

from __future__ import annotations

import colorsys
import warnings

import numpy as np
from PIL import Image

from unpaired.data import UnpairedFolders, list_images, make_synthetic, synthetic_pair


def _hsv(pixels: np.ndarray) -> np.ndarray:
    return np.array([colorsys.rgb_to_hsv(*(p / 255.0)) for p in pixels.reshape(-1, 3)])


def _object_like(hsv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    hue_deg, sat = hsv[:, 0] * 360, hsv[:, 1]
    red = (sat > 0.55) & ((hue_deg <= 40) | (hue_deg >= 340))
    blue = (sat > 0.55) & (hue_deg >= 180) & (hue_deg <= 240)
    return red, blue


def test_synthetic_dataset_is_deterministic_and_well_formed(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = make_synthetic(tmp_path / "one", size=32, n_train=6, n_test=3, seed=4)
        b = make_synthetic(tmp_path / "two", size=32, n_train=6, n_test=3, seed=4)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) == 2 * 2 * (6 + 3) + 1
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files_a)
    assert "mask" in (a / "README.md").read_text()
    assert len(UnpairedFolders(a, "train")) == 6

    for split in ("trainA", "trainB", "testA", "testB"):
        for path in list_images(a / split):
            img = np.asarray(Image.open(path))
            mask = np.asarray(Image.open(a / f"{split}_masks" / path.name))
            assert img.shape == (32, 32, 3) and mask.shape == (32, 32)
            assert set(np.unique(mask)) <= {0, 255} and (mask == 255).sum() > 0
            inside, outside = img[mask == 255].astype(float), img[mask == 0]
            if split.endswith("A"):
                assert inside[:, 0].mean() > inside[:, 2].mean() + 80
            else:
                assert inside[:, 2].mean() > inside[:, 0].mean() + 80
            red, blue = _object_like(_hsv(outside))
            assert not red.any() and not blue.any()
    other = make_synthetic(tmp_path / "three", size=32, n_train=6, n_test=3, seed=5)
    assert (other / "trainA" / "0000.png").read_bytes() != (a / "trainA" / "0000.png").read_bytes()


def test_synthetic_pair_differs_only_inside_mask():
    img_A, mask_A, img_B, mask_B = synthetic_pair(48, seed=3)
    assert np.array_equal(mask_A, mask_B)
    outside = mask_A == 0
    assert np.array_equal(img_A[outside], img_B[outside])
    assert not np.array_equal(img_A[~outside], img_B[~outside])
    red, _ = _object_like(_hsv(img_A[~outside]))
    _, blue = _object_like(_hsv(img_B[~outside]))
    assert red.mean() > 0.8 and blue.mean() > 0.8
    again = synthetic_pair(48, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip((img_A, mask_A, img_B, mask_B), again))
