"""Attention and background scores where ground-truth masks of the changed objects exist (the synthetic set).

All images in [-1, 1] are compared in [0, 1] units. ``true_mask``: N×1×H×W, 1 = the object to change.
:func:`region_scores` applies the same scores to one fixed region for every image (aligned faces: eyes and mouth).
* ``background_psnr`` / ``background_ssim``: input vs translation outside the mask (higher = background kept);
  SSIM only where its 11×11 window does not reach into the mask. ``far_background_psnr``: PSNR over that same
  far background (more than 5 px from the object): the pixels next to an object's outline (soft mask edges,
  content bleeding over the edge) often dominate ``background_psnr``.
* ``foreground_change``: mean |translation − input| inside the mask (higher = the object did change).
* ``attention_iou``: IoU of the predicted foreground (attention > 0.5, or the U-GAT-IT heatmap scaled to
  [0, 1] and thresholded at 0.5) with the true mask.
* ``target_psnr``: translation vs the paired ground-truth target inside the mask, where a paired target exists.
* ``success``: where a paired target exists, the fraction of images whose object took the target's look: inside
  the mask, the translation's appearance (mean colour and fine-texture energy, :func:`object_appearance`) has
  covered more than half the distance from the input's to the paired target's. A model that only recolours
  fails where the texture must change.
"""

from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import Tensor


def _unit(x: Tensor) -> Tensor:
    return (x.float().clamp(-1, 1) + 1) / 2


def masked_psnr(a: Tensor, b: Tensor, weight: Tensor) -> Tensor:
    """Per-image PSNR (dB, peak 1) over the pixels where ``weight`` is 1; N-vector."""
    se = ((a - b) ** 2).mean(dim=1, keepdim=True) * weight
    mse = se.sum(dim=(1, 2, 3)) / weight.sum(dim=(1, 2, 3)).clamp_min(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-10))


SSIM_WINDOW = 11


def ssim_map(a: Tensor, b: Tensor, window: int = SSIM_WINDOW, sigma: float = 1.5) -> Tensor:
    """SSIM (Wang et al. 2004, Gaussian window, K1 0.01, K2 0.03, peak 1) per pixel, averaged over channels."""
    coords = torch.arange(window, dtype=torch.float32) - window // 2
    g = torch.exp(-(coords ** 2) / (2 * sigma ** 2))
    g = (g / g.sum()).to(a.device)
    kernel = (g[:, None] * g[None, :]).expand(a.shape[1], 1, window, window)

    def blur(x):
        return F.conv2d(F.pad(x, [window // 2] * 4, mode="reflect"), kernel, groups=a.shape[1])

    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b, cov = blur(a * a) - mu_a ** 2, blur(b * b) - mu_b ** 2, blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return s.mean(dim=1, keepdim=True)


def mask_scores(inputs: Tensor, outputs: Tensor, true_mask: Tensor, predicted: Optional[Tensor] = None,
                targets: Optional[Tensor] = None) -> Dict[str, float]:
    """Mean scores over the batch (see the module docstring)."""
    x, y = _unit(inputs), _unit(outputs)
    fg = (true_mask.float() > 0.5).float()
    bg = 1.0 - fg
    # SSIM looks at 11×11 windows: score it where the window does not reach into the object
    far_bg = 1.0 - F.max_pool2d(fg, SSIM_WINDOW, stride=1, padding=SSIM_WINDOW // 2)
    far_bg = torch.where(far_bg.sum(dim=(1, 2, 3), keepdim=True) > 0, far_bg, bg)
    out = {
        "background_psnr": float(masked_psnr(x, y, bg).mean()),
        "far_background_psnr": float(masked_psnr(x, y, far_bg).mean()),
        "background_ssim": float(((ssim_map(x, y) * far_bg).sum(dim=(1, 2, 3))
                                  / far_bg.sum(dim=(1, 2, 3)).clamp_min(1)).mean()),
        "foreground_change": float((((y - x).abs().mean(dim=1, keepdim=True) * fg).sum(dim=(1, 2, 3))
                                    / fg.sum(dim=(1, 2, 3)).clamp_min(1)).mean()),
    }
    if predicted is not None:
        p = (predicted.float() > 0.5).float()
        inter, union = (p * fg).sum(dim=(1, 2, 3)), ((p + fg) > 0).float().sum(dim=(1, 2, 3))
        keep = union > 0
        out["attention_iou"] = float((inter[keep] / union[keep]).mean()) if keep.any() else float("nan")
    if targets is not None:
        t = _unit(targets)
        out["target_psnr"] = float(masked_psnr(t, y, fg).mean())
        f_out, f_in, f_target = (object_appearance(v, fg) for v in (y, x, t))
        out["success"] = float(((f_out - f_target).norm(dim=1) < 0.5 * (f_in - f_target).norm(dim=1)).float().mean())
    return out


def object_appearance(images: Tensor, mask: Tensor) -> Tensor:
    """N×4 appearance of the masked object: mean R, G, B and the standard deviation of the fine luminance texture
    (luminance minus its 5×5 box blur), all in [0, 1] units over the pixels where ``mask`` is 1."""
    weight = mask.float()
    area = weight.sum(dim=(2, 3)).clamp_min(1)
    colour = (images * weight).sum(dim=(2, 3)) / area
    luma = images.mean(dim=1, keepdim=True)
    fine = luma - F.avg_pool2d(F.pad(luma, [2] * 4, mode="replicate"), 5, stride=1)
    mean = (fine * weight).sum(dim=(2, 3)) / area
    std = (((fine - mean[..., None, None]) ** 2 * weight).sum(dim=(2, 3)) / area).sqrt()
    return torch.cat([colour, std], dim=1)


def read_mask(path, size=None) -> Tensor:
    """A grey-scale mask image as H×W in [0, 1], resized (nearest) to ``size`` (H, W) if given."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        m = im.convert("L")
        m = m.resize(tuple(size)[::-1], Image.NEAREST) if size is not None else m
    return torch.from_numpy(np.asarray(m).copy()).float().div(255)


def load_region(path, size=None) -> Tensor:
    """A region mask image (white = where the translation is expected to change) as 1×1×H×W in {0, 1},
    resized (nearest) to ``size`` (H, W) if given."""
    try:
        grey = read_mask(path, size)
    except (OSError, ValueError) as e:
        raise ValueError(f"--region {path}: not a readable mask image ({e})") from e
    region = grey.gt(0.5).float()[None, None]
    if region.sum() == 0 or region.sum() == region.numel():
        raise ValueError(f"--region {path}: the mask must have both a white (may change) and a black (keep) part")
    return region


def region_scores(inputs: Tensor, outputs: Tensor, region: Tensor,
                  foreground: Optional[Tensor] = None) -> Dict[str, float]:
    """How much a translation changes outside a fixed ``region`` (1×1×H×W, 1 = may change, e.g. eyes and mouth
    of aligned faces) and inside it: ``outside_psnr`` / ``outside_ssim`` (input vs translation; higher = kept),
    ``outside_change`` / ``inside_change`` (mean |translation − input| in [0, 1] units), ``inside_share`` (the
    share of all the change, summed over the images, that lies inside the region: > 0.5 = most of it); with the
    predicted ``foreground`` (N×1×H×W attention), ``attention_inside``: the share of its mass inside the region
    (where the masks sit; the region's own area share is what masks spread evenly would score)."""
    scores = mask_scores(inputs, outputs, region.expand(len(inputs), -1, -1, -1))
    inside = region.float()
    keep = 1.0 - inside
    change = (_unit(outputs) - _unit(inputs)).abs().mean(dim=1, keepdim=True)
    row = {"outside_psnr": scores["background_psnr"], "outside_ssim": scores["background_ssim"],
           "outside_change": float(((change * keep).sum(dim=(1, 2, 3)) / keep.sum()).mean()),
           "inside_change": scores["foreground_change"],
           "inside_share": _share_inside(change, inside)}
    if foreground is not None:
        row["attention_inside"] = _share_inside(foreground.float(), inside)
    return row


def _share_inside(values: Tensor, inside: Tensor) -> float:
    """Σ values·inside / Σ values over every image and pixel (0 where there is nothing: no change, no mask)."""
    total = float(values.sum())
    return float((values * inside).sum()) / total if total > 0 else 0.0
