"""Where an expression lives on aligned face crops: eyes (with brows) and mouth, found on the training split.

There are no landmarks in the face data, but the crops are aligned, so one region serves every image:
* the eyes are the darkest points of the mean face in the upper-left and upper-right quarters of the
  eye band (rows 20–55% of the height);
* the mouth is where the domains' mean faces differ most below 60% of the height (each image normalised to
  zero mean and unit variance first, so lighting differences between domains do not count).
The region is the union of one ellipse per eye (shifted up to take in the brow) and one around the mouth,
sized as fractions of the image. :func:`face_oval` draws the whole face instead (forehead to chin, cheek to
cheek, in eye-to-eye and eye-to-mouth distances), for "do the masks stay on the face?".
``unpaired evaluate --metrics region --region FILE`` then scores how much a translation changes outside the
region (background preservation) and inside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Tuple

import torch
import torch.nn.functional as F

EYE_AXES = (0.12, 0.15)    # (vertical, horizontal) semi-axes of an eye + brow ellipse, fractions of H, W
EYE_LIFT = 0.04            # the ellipse centre sits this far (fraction of H) above the eye, towards the brow
MOUTH_AXES = (0.14, 0.24)  # semi-axes of the mouth ellipse
# The whole face ("do the masks stay on the face?"): one ellipse from the same three points, in face units.
FACE_HALF_WIDTH = 1.2      # horizontal semi-axis, in eye-to-eye distances (cheek to cheek)
FACE_ABOVE_EYES = 0.9      # top (forehead) above the eyes, in eye-to-mouth distances
FACE_BELOW_MOUTH = 0.5     # bottom (chin) below the mouth, in eye-to-mouth distances
PARTS = ("expression", "face")


def _smooth(x: torch.Tensor) -> torch.Tensor:
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
    k = (k[:, None] * k[None, :]) / k.sum() ** 2
    return F.conv2d(F.pad(x[None, None], (2, 2, 2, 2), mode="replicate"), k[None, None])[0, 0]


def landmarks(class_images: Dict[str, torch.Tensor]) -> Dict[str, Tuple[float, float]]:
    """(row, column) fractions of the left eye, right eye and mouth from {domain: N×3×H×W in [-1, 1]}."""
    if len(class_images) < 2:
        raise ValueError("the mouth is found where domains differ: need images of at least two domains")
    greys = [x.float().mean(dim=1) for x in class_images.values()]
    h, w = greys[0].shape[-2:]
    mean_face = _smooth(torch.cat(greys).mean(dim=0))
    normalised = [(g - g.mean(dim=(1, 2), keepdim=True)) / g.std(dim=(1, 2), keepdim=True).clamp_min(1e-6)
                  for g in greys]
    spread = _smooth(torch.stack([g.mean(dim=0) for g in normalised]).std(dim=0))

    def argbest(field, rows, cols, largest):
        r0, r1, c0, c1 = int(rows[0] * h), int(rows[1] * h), int(cols[0] * w), int(cols[1] * w)
        patch = field[r0:r1, c0:c1]
        i = int(torch.argmax(patch) if largest else torch.argmin(patch))
        return ((r0 + i // patch.shape[1] + 0.5) / h, (c0 + i % patch.shape[1] + 0.5) / w)

    return {"left_eye": argbest(mean_face, (0.2, 0.55), (0.15, 0.5), largest=False),
            "right_eye": argbest(mean_face, (0.2, 0.55), (0.5, 0.85), largest=False),
            "mouth": argbest(spread, (0.6, 0.95), (0.25, 0.75), largest=True)}


def _pixel_centres(size: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """(rows, columns) of the size×size pixel centres, as fractions of the image."""
    centres = (torch.arange(size) + 0.5) / size
    return torch.meshgrid(centres, centres, indexing="ij")


def region_mask(points: Dict[str, Tuple[float, float]], size: int) -> torch.Tensor:
    """H×W mask in {0, 1}: 1 inside the eye/brow and mouth ellipses."""
    yy, xx = _pixel_centres(size)
    mask = torch.zeros(size, size, dtype=torch.bool)
    for name, (r, c) in points.items():
        (ay, ax), lift = (MOUTH_AXES, 0.0) if name == "mouth" else (EYE_AXES, EYE_LIFT)
        mask |= ((yy - (r - lift)) / ay) ** 2 + ((xx - c) / ax) ** 2 <= 1
    return mask.float()


def face_oval(points: Dict[str, Tuple[float, float]], size: int) -> torch.Tensor:
    """H×W mask in {0, 1}: 1 inside the face ellipse (forehead to chin, cheek to cheek) around the landmarks."""
    (le_r, le_c), (re_r, re_c), (m_r, m_c) = points["left_eye"], points["right_eye"], points["mouth"]
    eyes_r, eyes_c = (le_r + re_r) / 2, (le_c + re_c) / 2
    eye_to_mouth, eye_to_eye = m_r - eyes_r, abs(re_c - le_c)
    top, bottom = eyes_r - FACE_ABOVE_EYES * eye_to_mouth, m_r + FACE_BELOW_MOUTH * eye_to_mouth
    yy, xx = _pixel_centres(size)
    ay, ax = (bottom - top) / 2, FACE_HALF_WIDTH * eye_to_eye
    return ((((yy - (top + bottom) / 2) / ay) ** 2 + ((xx - (eyes_c + m_c) / 2) / ax) ** 2) <= 1).float()


def face_region(data: Path, size: int = 64, split: str = "train",
                part: str = "expression") -> Tuple[torch.Tensor, Dict, torch.Tensor]:
    """(mask H×W, landmarks, mean face H×W in [-1, 1]) from the ``split`` images of a two- or multi-domain
    dataset, at ``size`` pixels. ``part``: "expression" (eyes, brows and mouth: :func:`region_mask`) or "face"
    (the whole face: :func:`face_oval`)."""
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    from .evaluate import load_split
    from .extractor import dataset_classes

    images = {name: load_split(folder, size)[1] for name, folder in dataset_classes(Path(data), split)}
    points = landmarks(images)
    mean_face = torch.cat([x.mean(dim=1) for x in images.values()]).mean(dim=0)
    mask = region_mask(points, size) if part == "expression" else face_oval(points, size)
    return mask, points, mean_face
