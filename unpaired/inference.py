"""``Translator``: load a trained generator once, translate images of any size, return attention maps.

Two-domain models translate in a ``direction`` (AtoB, BtoA); a multi-domain model (one generator, key
``multi``) translates to a ``target`` domain: ``translator.translate(img, target="happiness")``. The
target is a domain name, a list of names (multi-label attributes: those set, the others not) or a label
vector of length c_dim; ``translator.domains`` lists the names.

Sources: a run folder (``generators/{direction}.safetensors`` + ``.json``, written by training and by
``unpaired import``), a single generator ``.safetensors`` file with its ``.json`` beside it, or a
training checkpoint ``checkpoints/step_N.pt``.

Any size: the image is reflection-padded up to the multiple the network needs (4 for the ResNet
generators) and the result cropped back. An image whose whole-image inference would not fit ``max_memory``
is translated tile by tile (``tiling``: auto, whole, fast or exact; :mod:`unpaired.tiling`). Generators tied
to one size (U-GAT-IT full) get the image resized to that size and the result resized back (with PIL, on
uint8 pixels, when the image is over the budget).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from . import host_memory, tiling
from .data import target_label  # noqa: F401  (re-exported: the label of named target domains)
from .image_inputs import ImageLike, Named, as_input, as_pixels, as_tensor, size_of
from .image_inputs import expand_inputs  # noqa: F401  (re-exported: the CLI's input patterns)
from .models.base import DIRECTIONS, MULTI, GeneratorOutput, InputSize, normalise_heatmap
from .nn.lean import lean_inference
from .runfolder import (ModelCard, generators_checkpoint, generators_from_training_state, latest_checkpoint,
                        load_generator)
from .visualize import unit_range


@dataclass
class Translation:
    """One translated image. ``masks``: K×H×W float32 in [0, 1] (AttentionGAN; last = background in
    Scheme II) or None; ``attention``: H×W float32 in [0, 1], the foreground union (1 − background mask),
    Scheme I's mask, or U-GAT-IT's heatmap scaled to [0, 1] and resized to the image; None without.
    An image translated in tiles (``tiled`` true) keeps both as uint8, 0-255 for 0-1 (the values
    ``--save-attention`` writes): 10 float masks of an 8000×8000 image would take 2.5 GB."""

    image: Image.Image
    masks: Optional[np.ndarray] = None
    attention: Optional[np.ndarray] = None
    source: Optional[str] = None
    tiled: bool = False

    def overlay(self, alpha: float = 0.5) -> Optional[Image.Image]:
        """The attention as a red overlay on the translated image."""
        if self.attention is None:
            return None
        base = np.asarray(self.image, dtype=np.float32)
        red = np.zeros_like(base)
        red[..., 0] = 255
        a = (alpha * unit_range(self.attention))[..., None]
        return Image.fromarray((base * (1 - a) + red * a).astype(np.uint8))


class Translator:
    def __init__(self, generators: Dict[str, torch.nn.Module], cards: Dict[str, Union[ModelCard, dict]], device="cpu",
                 keep_cpu_memory: bool = True, max_memory: int = tiling.DEFAULT_MAX_MEMORY, tiling_mode: str = "auto",
                 progress=None):
        """``cards``: direction -> the generator's ``ModelCard`` (or a dict with at least model, args, direction).
        ``keep_cpu_memory`` (CPU, glibc): freed tensor memory stays in the process for the next image instead
        of going back to the kernel (:mod:`unpaired.host_memory`; 1.28x the images/s at 256 px, batch 8).
        ``max_memory`` (bytes, default 2 GiB) and ``tiling_mode`` (auto, whole, fast, exact): when and how an image
        is translated in tiles (:mod:`unpaired.tiling`); ``progress``: called with a line when an image is tiled."""
        if tiling_mode not in tiling.MODES:
            raise ValueError(f"tiling {tiling_mode!r}: choose one of {', '.join(tiling.MODES)}")
        self.max_memory, self.tiling_mode, self.progress = max_memory, tiling_mode, progress
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
    def translate(self, image: ImageLike, direction: Optional[str] = None, target=None,
                  attention: bool = True) -> Translation:
        return self.translate_batch([image], direction, target=target, attention=attention)[0]

    @torch.no_grad()
    def translate_batch(self, images: Sequence[ImageLike], direction: Optional[str] = None,
                        target=None, attention: bool = True, names: Optional[Sequence[str]] = None,
                        on_error: Optional[Callable[[int, Exception], None]] = None) -> List[Optional[Translation]]:
        """Translate images (batched where sizes agree); outputs have each input's own size. An image over the
        memory budget is translated alone, in tiles (``attention=False``: its masks are not kept). ``names``:
        the images' sources, for ``Translation.source`` and the progress line (paths name themselves).
        ``on_error(i, error)``: an image that cannot be translated (RuntimeError, ValueError, MemoryError: too
        small, out of memory, no room for tiling's files) is reported there and its result is None, the others go
        on (a batch that fails is tried again image by image; the tiled ones are not done twice); without it the
        error is raised."""
        key, label = self._resolve(direction, target)
        generator, rule = self.generators[key], self.cards[key].input_size
        if names is not None:
            images = [Named(im, name) for im, name in zip(images, names)]
        inputs, sources = zip(*[as_input(im) for im in images]) if images else ((), ())
        results: List[Optional[Translation]] = [None] * len(inputs)
        groups: Dict[Tuple[int, int], List[int]] = {}
        extra = () if label is None else (label.to(self.device),)
        with lean_inference(generator):  # norms and ReLUs in place, channels-last convs (nn/lean.py)
            for i, x in enumerate(inputs):
                size = size_of(x)
                chosen = self._plan(generator, rule, size, extra, attention)
                if chosen is None:
                    groups.setdefault(size, []).append(i)
                    continue
                if self.progress:
                    self.progress(f"{sources[i] or 'image'}: {chosen.describe(size[1], size[0])}")
                with _reported(on_error, i):
                    pixels = as_pixels(x)
                    if rule.fixed:
                        image, masks, fg = tiling.translate_resized(generator, pixels, rule.fixed, extra)
                    else:
                        image, masks, fg = tiling.translate_pixels(generator, pixels, chosen, extra,
                                                                   attention=attention, device=self.device,
                                                                   progress=self.progress)
                    results[i] = Translation(image=image, masks=masks, attention=fg, source=sources[i], tiled=True)
            for size, idx in groups.items():
                try:
                    self._translate_whole(generator, rule, label, size, inputs, sources, idx, results)
                except _TRANSLATION_ERRORS as error:
                    if on_error is None:
                        raise
                    if len(idx) == 1:
                        on_error(idx[0], error)
                        continue
                    for i in idx:  # find the one that fails, keep the others
                        with _reported(on_error, i):
                            self._translate_whole(generator, rule, label, size, inputs, sources, [i], results)
        return results

    def _translate_whole(self, generator, rule: InputSize, label, size, inputs, sources, idx, results) -> None:
        """``inputs[i]`` for i in ``idx`` (all of one size) as one batch, whole-image inference, into
        ``results[i]``."""
        batch = torch.stack([as_tensor(inputs[i]) for i in idx]).to(self.device)
        labels = None if label is None else label.to(self.device).expand(len(idx), -1)
        out = run_any_size(generator, batch, labels, size=rule)
        for j, i in enumerate(idx):
            results[i] = _to_translation(out, j, size, sources[i])

    def _plan(self, generator, rule: InputSize, size: Tuple[int, int], extra, attention: bool) -> Optional[tiling.Plan]:
        """None: whole-image inference; else how to tile (or, for a fixed-size generator, resize with PIL)."""
        h, w = size
        if self.tiling_mode == "whole" or not _tileable(generator):
            return None
        if rule.fixed:  # the network sees fixed×fixed; only the full-size float copies can outgrow the budget
            return tiling.Plan("resized", rule.fixed, budget=self.max_memory) if 64 * h * w > self.max_memory else None
        ph, pw = h + (-h) % rule.multiple, w + (-w) % rule.multiple
        masks = tiling.attention_maps(generator, extra, self.device) if attention else 0
        chosen = tiling.plan(generator, ph, pw, mode=self.tiling_mode, budget=self.max_memory, masks=masks,
                             padded=(ph, pw) != (h, w), extra=extra,
                             stride=max(4, rule.multiple), device=self.device)
        return None if chosen.mode == "whole" else chosen

    def translate_files(self, paths: Iterable[Path], direction: Optional[str] = None,
                        batch_size: int = 8, target=None) -> Iterator[Translation]:
        from .data import load_rgb

        paths = list(paths)
        for start in range(0, len(paths), batch_size):
            chunk = paths[start:start + batch_size]
            yield from self.translate_batch([Named(load_rgb(p), str(p)) for p in chunk], direction, target=target)


def load_model(source: Union[str, Path], direction: Optional[str] = None, device: str = "cpu") -> torch.nn.Module:
    """The generator for ``direction`` (a module returning ``GeneratorOutput``; default AtoB, or a multi-domain
    model's one generator, called as ``g(x, label)``)."""
    return Translator.load(source, device, directions=(direction or "AtoB",)).generator(direction)


def run_any_size(generator: torch.nn.Module, batch: torch.Tensor, label: Optional[torch.Tensor] = None, *,
                 size: InputSize, max_memory: Optional[int] = None) -> GeneratorOutput:
    """Run ``generator`` on N×3×H×W of any H, W (and, for a multi-domain generator, the N×c_dim target
    ``label``) by its card's rule ``size``: pad to the size multiple (or resize to the fixed size) and crop
    (or resize) the outputs back. ``max_memory`` (bytes): tile (fast mode) when whole-image inference of the
    batch would not fit (the outputs are still full-size float tensors); None: always whole."""
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
    chosen = None
    if max_memory is not None and _tileable(generator):
        chosen = tiling.plan(generator, batch.shape[-2], batch.shape[-1], budget=max_memory, uint8=False,
                             batch=batch.shape[0], masks=tiling.attention_maps(generator, extra, batch.device),
                             padded=bool(ph or pw), extra=extra, stride=max(4, m), device=batch.device)
    with lean_inference(generator):
        if chosen is not None and chosen.mode != "whole":
            out = tiling.run_tiled(generator, batch, chosen, extra)
        else:
            out = generator(batch, *extra)
    if ph or pw:
        out = _map_spatial(out, lambda x: x[..., :h, :w])
    return out


_TRANSLATION_ERRORS = (RuntimeError, ValueError, MemoryError)  # too small, out of memory, tiling's files failed


@contextmanager
def _reported(on_error: Optional[Callable[[int, Exception], None]], i: int) -> Iterator[None]:
    """Inside the block, a translation error of image ``i`` goes to ``on_error`` (when given) instead of up."""
    if on_error is None:
        yield
        return
    try:
        yield
    except _TRANSLATION_ERRORS as error:
        on_error(i, error)


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


def _tileable(generator) -> bool:
    """Tiling switches the generator's own layers: a torch module with parameters, not an exported ONNX session."""
    return any(True for _ in generator.parameters())
