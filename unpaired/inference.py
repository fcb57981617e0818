"""``Translator``: load a trained generator once, translate images of any size, return attention maps.

Two-domain models translate in a ``direction`` (AtoB, BtoA); a multi-domain model (one generator, key
``multi``) translates to a ``target`` domain: ``translator.translate(img, target="happiness")``. The
target is a domain name, a list of names (multi-label attributes: those set, the others not) or a label
vector of length c_dim; ``translator.domains`` lists the names.

Sources: a run folder (``generators/{direction}.safetensors`` + ``.json``, written by training and by
``unpaired import``), a single generator ``.safetensors`` file with its ``.json`` beside it, or a
training checkpoint ``checkpoints/step_N.pt``.

Any size: the image is reflection-padded up to the multiple the network needs (4 for the ResNet
generators) and the result cropped back. Generators tied to one size (U-GAT-IT full) get the image
resized to that size and the result resized back.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from . import host_memory
from .data import target_label  # noqa: F401  (re-exported: the label of named target domains)
from .models.base import DIRECTIONS, MULTI, GeneratorOutput, InputSize, normalise_heatmap
from .runfolder import (ModelCard, generators_checkpoint, generators_from_training_state, latest_checkpoint,
                        load_generator)

ImageLike = Union[Image.Image, np.ndarray, torch.Tensor, str, Path]


@dataclass
class Translation:
    """One translated image. ``masks``: K×H×W float32 in [0, 1] (AttentionGAN; last = background in
    Scheme II) or None; ``attention``: H×W float32 in [0, 1], the foreground union (1 − background mask),
    Scheme I's mask, or U-GAT-IT's heatmap scaled to [0, 1] and resized to the image; None without."""

    image: Image.Image
    masks: Optional[np.ndarray] = None
    attention: Optional[np.ndarray] = None
    source: Optional[str] = None

    def overlay(self, alpha: float = 0.5) -> Optional[Image.Image]:
        """The attention as a red overlay on the translated image."""
        if self.attention is None:
            return None
        base = np.asarray(self.image, dtype=np.float32)
        red = np.zeros_like(base)
        red[..., 0] = 255
        a = (alpha * self.attention)[..., None]
        return Image.fromarray((base * (1 - a) + red * a).astype(np.uint8))


class Translator:
    def __init__(self, generators: Dict[str, torch.nn.Module], cards: Dict[str, Union[ModelCard, dict]], device="cpu",
                 keep_cpu_memory: bool = True):
        """``cards``: direction -> the generator's ``ModelCard`` (or a dict with at least model, args, direction).
        ``keep_cpu_memory`` (CPU, glibc): freed tensor memory stays in the process for the next image instead
        of going back to the kernel (:mod:`unpaired.host_memory`; 1.28x the images/s at 256 px, batch 8)."""
        self.generators, self.device = generators, torch.device(device)
        self.cards = {d: c if isinstance(c, ModelCard) else ModelCard.from_dict(c) for d, c in cards.items()}
        if keep_cpu_memory and self.device.type == "cpu":
            host_memory.keep_freed_memory()

    @classmethod
    def load(cls, source: Union[str, Path], device: str = "cpu",
             directions: Sequence[str] = DIRECTIONS) -> "Translator":
        source = Path(source)
        if not source.exists():
            raise FileNotFoundError(f"{source}: no such run folder or checkpoint file")
        generators, cards = {}, {}
        directions = tuple(dict.fromkeys((*directions, MULTI)))  # a multi-domain model's one generator, if any
        if source.is_dir():
            behind = generators_checkpoint(source, directions)  # generators/ apart from the newest checkpoint
            if behind is not None:
                return cls.load(behind, device, directions)
            for direction in directions:
                weights = source / "generators" / f"{direction}.safetensors"
                if weights.exists():
                    generators[direction], cards[direction] = load_generator(weights, device)
            present = sorted(p.stem for p in (source / "generators").glob("*.safetensors"))
            if not generators and present:  # e.g. an import of one direction: never a fresh one from the checkpoint
                raise FileNotFoundError(f"{source} has no {' or '.join(d for d in directions if d != MULTI)} "
                                        f"generator (generators/ holds {', '.join(present)})")
            if not generators:
                last = latest_checkpoint(source)
                if last is None:
                    raise FileNotFoundError(f"{source}: no generators/*.safetensors and no checkpoints/step_*.pt")
                return cls.load(last, device, directions)
        elif source.suffix == ".safetensors":
            module, card = load_generator(source, device)
            generators[card.direction], cards[card.direction] = module, card
        elif source.suffix == ".pt":
            generators, cards = generators_from_training_state(source, device, directions)
        elif source.suffix == ".onnx":  # an `unpaired export` file, run by onnxruntime
            from .exported import load_onnx_generator

            module, card = load_onnx_generator(source)
            generators[card.direction], cards[card.direction] = module, card
        else:
            raise ValueError(f"{source}: expected a run folder, a .safetensors generator, a step_N.pt checkpoint "
                             "or an exported .onnx file")
        return cls(generators, cards, device)

    @property
    def meta(self) -> Dict[str, dict]:
        """The cards as dicts (read-only view, for scripts written before ``cards``)."""
        return {d: c.to_dict() for d, c in self.cards.items()}

    @property
    def domains(self) -> Optional[List[str]]:
        """The target domains of a multi-domain model, in label order; None for two-domain models."""
        if MULTI not in self.generators:
            return None
        card = self.cards[MULTI]
        return list(card.domains) if card.domains else card.model_args().domain_names()

    def input_size(self, direction: Optional[str] = None) -> InputSize:
        """How ``direction``'s generator takes images (its card's rule)."""
        return self.cards[self._key(direction)].input_size

    def label_for(self, target) -> torch.Tensor:
        """The 1×c_dim label of ``target``: a domain name, a list of names (multi-label: those on) or a vector."""
        names = self.domains
        if names is None:
            raise ValueError(f"target {target!r}: this model translates between two domains; use direction= "
                             f"{' or '.join(self.generators)} instead")
        if torch.is_tensor(target) or (isinstance(target, (list, tuple)) and target
                                       and not isinstance(target[0], str)):
            label = torch.as_tensor(target, dtype=torch.float32).reshape(1, -1)
            if label.shape[1] != len(names):
                raise ValueError(f"target label has {label.shape[1]} values; this model has {len(names)} domains "
                                 f"({', '.join(names)})")
            return label
        wanted = [target] if isinstance(target, str) else list(target)
        multi = bool(self.cards[MULTI].args.get("multi_label"))
        if len(wanted) != 1 and not multi:
            raise ValueError(f"target {target!r}: the domains are exclusive; name exactly one of "
                             f"{', '.join(names)}")
        return target_label(names, wanted)

    def _resolve(self, direction: Optional[str], target) -> Tuple[str, Optional[torch.Tensor]]:
        """(generator key, label or None) for a direction or a target domain."""
        if target is None and (MULTI not in self.generators or direction not in (None, MULTI)):
            return self._key(direction), None
        if MULTI not in self.generators:
            self.label_for(target)  # raises: a two-domain model takes no target
        if target is None:
            raise ValueError(f"this model translates to a target domain: pass target= one of "
                             f"{', '.join(self.domains)}")
        fixed = self.cards[MULTI].target_domain  # an export with its target built in
        if fixed is not None:
            if target != fixed:
                raise ValueError(f"this exported file always translates to {fixed!r}, not {target!r}")
            return MULTI, None
        return MULTI, self.label_for(target)

    def _key(self, direction: Optional[str]) -> str:
        if direction is None:
            direction = "AtoB" if "AtoB" in self.generators or not self.generators else next(iter(self.generators))
        if direction not in self.generators:
            raise KeyError(f"direction {direction!r} not available; this checkpoint has {', '.join(self.generators)}")
        return direction

    def generator(self, direction: Optional[str] = None) -> torch.nn.Module:
        """The module for ``direction`` (default: AtoB, or the one generator of a multi-domain model)."""
        return self.generators[self._key(direction)]

    @torch.no_grad()
    def translate(self, image: ImageLike, direction: Optional[str] = None, target=None) -> Translation:
        return self.translate_batch([image], direction, target=target)[0]

    @torch.no_grad()
    def translate_batch(self, images: Sequence[ImageLike], direction: Optional[str] = None,
                        target=None) -> List[Translation]:
        """Translate images (batched where sizes agree); outputs have each input's own size."""
        key, label = self._resolve(direction, target)
        generator, rule = self.generators[key], self.cards[key].input_size
        tensors, sources = zip(*[_as_tensor(im) for im in images]) if images else ((), ())
        results: List[Optional[Translation]] = [None] * len(tensors)
        groups: Dict[Tuple[int, int], List[int]] = {}
        for i, t in enumerate(tensors):
            groups.setdefault(tuple(t.shape[-2:]), []).append(i)
        for size, idx in groups.items():
            batch = torch.stack([tensors[i] for i in idx]).to(self.device)
            labels = None if label is None else label.to(self.device).expand(len(idx), -1)
            out = run_any_size(generator, batch, labels, size=rule)
            for j, i in enumerate(idx):
                results[i] = _to_translation(out, j, size, sources[i])
        return results

    def translate_files(self, paths: Iterable[Path], direction: Optional[str] = None,
                        batch_size: int = 8, target=None) -> Iterator[Translation]:
        from .data import load_rgb

        paths = list(paths)
        for start in range(0, len(paths), batch_size):
            chunk = paths[start:start + batch_size]
            yield from self.translate_batch([_Named(load_rgb(p), str(p)) for p in chunk], direction, target=target)


def load_model(source: Union[str, Path], direction: Optional[str] = None, device: str = "cpu") -> torch.nn.Module:
    """The generator for ``direction`` (a module returning ``GeneratorOutput``; default AtoB, or a multi-domain
    model's one generator, called as ``g(x, label)``)."""
    return Translator.load(source, device, directions=(direction or "AtoB",)).generator(direction)


def run_any_size(generator: torch.nn.Module, batch: torch.Tensor, label: Optional[torch.Tensor] = None, *,
                 size: InputSize) -> GeneratorOutput:
    """Run ``generator`` on N×3×H×W of any H, W (and, for a multi-domain generator, the N×c_dim target
    ``label``) by its card's rule ``size``: pad to the size multiple (or resize to the fixed size) and crop
    (or resize) the outputs back."""
    h, w = batch.shape[-2:]
    fixed = size.fixed
    extra = () if label is None else (label,)
    if fixed:
        out = generator(F.interpolate(batch, size=(fixed, fixed), mode="bilinear", align_corners=False), *extra)
        return _map_spatial(out, lambda x: F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False))
    m = size.multiple
    ph, pw = (-h) % m, (-w) % m
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        batch = F.pad(batch, (0, pw, 0, ph), mode=mode)
    out = generator(batch, *extra)
    if ph or pw:
        out = _map_spatial(out, lambda x: x[..., :h, :w])
    return out


def _map_spatial(out: GeneratorOutput, fn) -> GeneratorOutput:
    return GeneratorOutput(image=fn(out.image), attention=None if out.attention is None else fn(out.attention),
                           content=None if out.content is None else fn(out.content),
                           cam_logit=out.cam_logit, heatmap=out.heatmap)


def _to_translation(out: GeneratorOutput, j: int, size, source) -> Translation:
    from .data import to_pil

    image = to_pil(out.image[j].float().cpu())
    masks = attention = None
    if out.attention is not None:
        masks = out.attention[j].float().cpu().numpy()
        attention = out.foreground()[j, 0].float().cpu().numpy()
    elif out.heatmap is not None:
        attention = normalise_heatmap(out.heatmap[j:j + 1], size)[0, 0].cpu().numpy()
    return Translation(image=image, masks=masks, attention=attention, source=source)


class _Named:
    def __init__(self, image, name):
        self.image, self.name = image, name


def _as_tensor(image) -> Tuple[torch.Tensor, Optional[str]]:
    """PIL image, H×W×3 uint8 array, 3×H×W tensor in [-1, 1], or a path -> (3×H×W in [-1, 1], name)."""
    from .data import load_rgb, to_tensor

    name = None
    if isinstance(image, _Named):
        image, name = image.image, image.name
    if isinstance(image, (str, Path)):
        name, image = str(image), load_rgb(image)
    if isinstance(image, Image.Image):
        return to_tensor(image.convert("RGB")), name
    if isinstance(image, np.ndarray):
        if image.ndim == 2:
            image = np.stack([image] * 3, axis=-1)
        if image.dtype != np.uint8:
            raise TypeError("numpy images must be H×W×3 uint8")
        return to_tensor(Image.fromarray(image[..., :3])), name
    if torch.is_tensor(image):
        if image.ndim != 3 or image.shape[0] != 3:
            raise TypeError(f"tensor images must be 3×H×W in [-1, 1], got shape {tuple(image.shape)}")
        return image.float(), name
    raise TypeError(f"cannot translate a {type(image).__name__}")


def expand_inputs(patterns: Sequence[str]) -> List[Path]:
    """Files, folders (their images, sorted) and glob patterns -> image paths, in the order given."""
    from .data import IMAGE_EXTENSIONS, list_images

    out: List[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            found = list_images(path)  # with the links that lead nowhere (or in a loop): named when read
            found = sorted(found + [p for p in path.iterdir() if p.is_symlink() and not p.exists()
                                    and p.suffix.lower() in IMAGE_EXTENSIONS], key=lambda p: p.name)
            if not found:
                raise FileNotFoundError(f"{path}: folder holds no images ({', '.join(IMAGE_EXTENSIONS)})")
            out += found
        elif path.is_file() or path.is_symlink():  # a broken link or a loop: load_rgb names it
            out.append(path)
        else:
            matches = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
            matches = [p for p in matches if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
            if not matches:
                raise FileNotFoundError(f"--input {pattern}: no such file or folder, and no image matches it")
            out += matches
    return out
