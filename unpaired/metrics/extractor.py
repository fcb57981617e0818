"""Feature extractors trained here, for FID/KID and domain accuracy where the standard Inception is unavailable.

``unpaired extractor train --data DIR --out FILE.safetensors`` trains a torchvision ResNet-18 (no pretrained
weights) to tell the domains of a dataset apart on its TRAINING split (two-domain layout: classes A and B from
``trainA``/``trainB``; multi-domain layout: one class per folder of ``train/``), reports its accuracy on the test
split, and writes the weights with a JSON description in the safetensors metadata.

Pass the file wherever a feature extractor is named (``unpaired evaluate --feature-extractor FILE``,
``train.eval_feature_extractor``): FID/KID are then computed on its 512-d pooled features, and the ``accuracy``
metric reports how often its classifier assigns a translation to the target domain. Numbers from such an
extractor compare models with each other on that dataset only; they are NOT comparable with published
FID/KID (Inception-v3 pool3 features of ImageNet weights).
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

ARCH = "resnet18"


def _resnet18(num_classes: int) -> nn.Module:
    from torchvision.models import resnet18

    return resnet18(weights=None, num_classes=num_classes)


def dataset_classes(data: Path, split: str) -> List[Tuple[str, Path]]:
    """(class name, folder) of a split: ``{split}A``/``{split}B`` -> A, B; else one per folder of ``split/``."""
    data = Path(data)
    if (data / f"{split}A").is_dir() and (data / f"{split}B").is_dir():
        return [("A", data / f"{split}A"), ("B", data / f"{split}B")]
    root = data / split
    folders = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if len(folders) < 2:
        raise FileNotFoundError(f"{data}: need {split}A/ and {split}B/, or at least two domain folders in {root}/")
    return [(p.name, p) for p in folders]


def _load_classes(data: Path, split: str, size: int) -> Tuple[List[str], torch.Tensor, torch.Tensor]:
    from ..data import load_split

    names, images, labels = [], [], []
    for k, (name, folder) in enumerate(dataset_classes(data, split)):
        _, class_images = load_split(folder, size)
        names.append(name)
        images.append(class_images)
        labels += [k] * len(class_images)
    return names, torch.cat(images), torch.tensor(labels)


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flip and a random crop of 7/8 of the side resized back (per batch)."""
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    ch, cw = h * 7 // 8, w * 7 // 8
    top = int(torch.randint(0, h - ch + 1, (1,), generator=generator))
    left = int(torch.randint(0, w - cw + 1, (1,), generator=generator))
    return F.interpolate(x[:, :, top:top + ch, left:left + cw], size=(h, w), mode="bilinear", align_corners=False)


@torch.no_grad()
def accuracy_of(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 128) -> float:
    model.eval()
    hits = sum(int((model(images[i:i + batch_size]).argmax(1) == labels[i:i + batch_size]).sum())
               for i in range(0, len(images), batch_size))
    return hits / max(1, len(images))


def train_extractor(data: Path, out: Path, *, size: int = 64, epochs: int = 12, batch_size: int = 64,
                    lr: float = 1e-3, seed: int = 0, split: str = "train", test_split: str = "test",
                    log=print) -> Dict[str, object]:
    """Train the ResNet-18 domain classifier on ``split`` and write it to ``out``; returns its description."""
    from safetensors.torch import save_file

    from ..runfolder import atomic_write

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    started = time.time()
    classes, images, labels = _load_classes(Path(data), split, size)
    model = _resnet18(len(classes))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * max(1, len(images) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    step = 0
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(images), generator=generator)
        for i in range(0, len(order) - batch_size + 1, batch_size):
            idx = order[i:i + batch_size]
            loss = F.cross_entropy(model(_augment(images[idx], generator)), labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
        log(f"epoch {epoch + 1}/{epochs}: last batch loss {loss.item():.3f}")
    info: Dict[str, object] = {"arch": ARCH, "size": size, "classes": classes, "data": str(data), "split": split,
                               "n_train": len(images), "epochs": epochs, "seed": seed,
                               "train_accuracy": accuracy_of(model, images, labels)}
    try:
        t_classes, t_images, t_labels = _load_classes(Path(data), test_split, size)
        if t_classes == classes:
            info.update(test_split=test_split, n_test=len(t_images), test_accuracy=accuracy_of(model, t_images, t_labels))
    except FileNotFoundError as e:
        log(f"no test accuracy: {e}")
    info["seconds"] = round(time.time() - started, 1)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    atomic_write(out, lambda tmp: save_file(tensors, str(tmp), metadata={"unpaired_extractor": json.dumps(info)}))
    return info


# ----------------------------------------------------------------------------------------------------------
# loading, and registration with torch-fidelity


def load_extractor(path: Path) -> Tuple[nn.Module, Dict[str, object]]:
    """The trained classifier (eval mode, frozen) and its description."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"feature extractor {path}: no such file")
    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    if "unpaired_extractor" not in meta:
        raise ValueError(f"{path}: not a feature extractor written by `unpaired extractor train` (no metadata)")
    info = json.loads(meta["unpaired_extractor"])
    if info.get("arch") != ARCH:
        raise ValueError(f"{path}: unknown extractor architecture {info.get('arch')!r} (expected {ARCH})")
    model = _resnet18(len(info["classes"]))
    model.load_state_dict(load_file(str(path)))
    model.eval().requires_grad_(False)
    return model, info


def is_extractor_file(name: str) -> bool:
    return str(name).endswith(".safetensors")


def _loaded(path) -> Tuple[str, nn.Module, Dict[str, object]]:
    """(digest of the file's bytes, classifier, description), read once per version of the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"feature extractor {path}: no such file")
    st = path.stat()
    return _load_version(str(path.resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _load_version(path: str, size: int, mtime_ns: int) -> Tuple[str, nn.Module, Dict[str, object]]:
    digest = hashlib.sha1(Path(path).read_bytes()).hexdigest()[:16]
    return (digest, *load_extractor(Path(path)))


def register_file(path: str) -> str:
    """Register the extractor file with torch-fidelity; returns its registry name (changes with the file's bytes)."""
    from torch_fidelity import register_feature_extractor
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    from .standin import EagerFeatureExtractor

    digest, model, info = _loaded(path)
    name = f"unpaired-file-{digest}"
    if name in FEATURE_EXTRACTORS_REGISTRY:
        return name

    class TrainedFeatures(EagerFeatureExtractor):
        DEFAULT = "512"

        def __init__(self, name, features_list, **kwargs):
            super().__init__(name, features_list)
            self.net, self.size = model, int(info["size"])

        @staticmethod
        def get_provided_features_list():
            return ("512", "logits")

        def forward(self, x):
            x = prepare_uint8(x, self.size)
            features = pooled_features(self.net, x)
            out = {"512": features.double(), "logits": self.net.fc(features).double()}
            return tuple(out[f] for f in self.features_list)

    register_feature_extractor(name, TrainedFeatures)
    return name


def prepare_uint8(x: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 N×3×H×W -> the classifier's input: [-1, 1] floats at ``size`` (as it was trained)."""
    x = x.float() / 127.5 - 1.0
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x


def pooled_features(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """ResNet's 512-d globally pooled features (the input of its classifier)."""
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    x = net.layer4(net.layer3(net.layer2(net.layer1(x))))
    return torch.flatten(net.avgpool(x), 1)


@torch.no_grad()
def domain_accuracy(path: str, images_uint8: torch.Tensor, target: str, batch_size: int = 64) -> Dict[str, float]:
    """Fraction of ``images`` the extractor's classifier assigns to the class ``target``."""
    _, model, info = _loaded(path)
    classes: Sequence[str] = info["classes"]
    if target not in classes:
        raise ValueError(f"{path}: its classes are {', '.join(classes)}; no class {target!r} to score against")
    k = list(classes).index(target)
    hits = 0
    for i in range(0, len(images_uint8), batch_size):
        logits = model(prepare_uint8(images_uint8[i:i + batch_size], int(info["size"])))
        hits += int((logits.argmax(1) == k).sum())
    return {"accuracy": hits / max(1, len(images_uint8)), "classifier_test_accuracy": info.get("test_accuracy")}
