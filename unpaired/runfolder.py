"""The run folder and the model card: the one owner of what a saved model is.

A run folder (``RUN/``) holds ``config.yaml`` (the resolved settings), ``checkpoints/step_{step:07d}.pt`` (the
full training state for ``--resume``) and ``generators/{direction}.safetensors`` + ``{direction}.json`` (what
inference needs). Every file is written atomically (temporary file, fsync, rename): a crash never leaves a
half-written one. ``--checkpoint RUN`` anywhere means the newest checkpoint (``latest_checkpoint``).

The JSON beside a generator is its **model card** (``ModelCard``): which model with which arguments, the
direction (or the domains of a multi-domain model), the training step, how it takes images
(``InputSize``), the pixel normalisation and the package version that wrote it. The trainer, the importers
(``write_run``) and export write cards; ``Translator``, evaluate, export and the demo read them. A card of a
newer format than this package knows is refused; the cards of earlier versions (no ``card_version``: the
keys model, args, direction, step, crop_size, load_size, resize, version) are migrated on load.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch

from . import __version__
from .models import get_model
from .models.base import MULTI, InputSize
from .safefiles import BadFileError, safetensors_header

log = logging.getLogger("unpaired")

__all__ = ["CARD_VERSION", "NonFiniteWeightsError", "clean_temp_files", "checkpoint_intact", "check_finite",
           "safetensors_header", "generators_checkpoint", "STATE_FORMAT", "NORMALISATION", "CardVersionError", "InputSize", "ModelCard",
           "atomic_write", "atomic_write_text", "checkpoint_path", "list_checkpoints", "latest_checkpoint",
           "prune_checkpoints", "save_training_state", "load_training_state", "save_generator",
           "load_generator", "write_run"]

#: the model card's format; bump it (and migrate the old one in ``ModelCard.from_dict``) when a field changes
CARD_VERSION = 1
#: the training state's format (``checkpoints/step_N.pt``); states without one are format 0, read as 1
STATE_FORMAT = 1
NORMALISATION = "input x / 127.5 - 1 (8-bit RGB -> [-1, 1]); output pixels (y + 1) * 127.5"
CHECKPOINT_RE = re.compile(r"^step_(\d+)\.pt$")


class CardVersionError(ValueError):
    """A file written by a newer version of unpaired, in a format this version cannot read."""


class NonFiniteWeightsError(ValueError):
    """Weights with NaN or Inf values: never written to a checkpoint or a generator file."""


TEMP_RE = re.compile(r"^\..+\.tmp$")  # atomic_write's temporary files: .NAME.XXXX.tmp


# ----------------------------------------------------------------------------------------------------------
# atomic files


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)``, fsync, then rename over ``path`` (same folder, so the rename is atomic)."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError) and e.errno is not None:  # read-only folder, full disk: one line naming the file
            raise OSError(e.errno, f"cannot write {path}: {e.strerror or e}") from None
        raise


def clean_temp_files(run_dir: Path) -> List[Path]:
    """Remove the temporary files of writes interrupted by a kill (``.NAME.XXXX.tmp`` in the run folder,
    ``checkpoints/`` and ``generators/``); returns what was removed."""
    removed = []
    for folder in (Path(run_dir), Path(run_dir) / "checkpoints", Path(run_dir) / "generators"):
        if folder.is_dir():
            for p in folder.iterdir():
                if TEMP_RE.match(p.name) and p.is_file():
                    p.unlink(missing_ok=True)
                    removed.append(p)
    if removed:
        log.warning("removed %d temporary file(s) of an interrupted write: %s", len(removed),
                    ", ".join(str(p) for p in removed))
    return removed


def check_finite(tensors: Dict[str, Any], what: str) -> None:
    """Raise NonFiniteWeightsError naming ``what`` and the first tensors holding NaN or Inf."""
    bad = [k for k, v in tensors.items()
           if torch.is_tensor(v) and v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise NonFiniteWeightsError(f"{what}: {len(bad)} of {len(tensors)} tensors hold NaN or Inf "
                                    f"({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}); not written")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


# ----------------------------------------------------------------------------------------------------------
# training checkpoints


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step_{step:07d}.pt"


def list_checkpoints(run_dir: Path) -> List[Path]:
    """Complete checkpoints of a run, oldest first (temporary files of interrupted saves are ignored)."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := CHECKPOINT_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def checkpoint_intact(path: Path) -> bool:
    """Whether ``path`` is a complete ``torch.save`` archive (its zip directory, at the end, reads and every
    member's stored size fits in the file): a truncated or overwritten file is not."""
    try:
        size = Path(path).stat().st_size
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            return bool(infos) and all(i.header_offset + i.compress_size <= size for i in infos)
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def latest_checkpoint(run_dir: Path) -> Optional[Path]:
    """The newest intact checkpoint of a run (the highest step whose file is complete), or None; a newer one that
    is damaged is skipped with a warning."""
    for path in reversed(list_checkpoints(run_dir)):
        if checkpoint_intact(path):
            return path
        log.warning("%s: damaged or truncated checkpoint; skipped in favour of an older one", path)
    return None


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)


def save_training_state(path: Path, state: Dict[str, Any]) -> None:
    state = {**state, "format": STATE_FORMAT, "version": __version__}
    check_finite(state.get("method", {}), str(path))
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_training_state(path: Path, map_location="cpu") -> Dict[str, Any]:
    """The training state (``torch.load(weights_only=True)``); a newer format than this version reads is refused."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - re-raised with the file name
        raise RuntimeError(f"{path}: cannot read this training checkpoint ({type(e).__name__}: {e})") from e
    _check_format(path, state.get("format", 0), STATE_FORMAT, state.get("version"), "training checkpoint format")
    return state


def _check_format(source, found: int, known: int, version: Optional[str], what: str) -> None:
    if int(found) > known:
        raise CardVersionError(f"{source}: written by unpaired {version or '(unknown version)'} in {what} {found}; "
                               f"unpaired {__version__} reads formats up to {known}: upgrade unpaired to load it")


# ----------------------------------------------------------------------------------------------------------
# the model card


@dataclass
class ModelCard:
    """What a saved generator is. ``args`` are the model's ``model.*`` settings (its argument dataclass as a dict)."""

    model: str  # registry name (``unpaired.models.list_models()``)
    args: Dict[str, Any]
    direction: str  # "AtoB", "BtoA", or "multi" (a multi-domain model's one generator)
    input_size: InputSize = field(default_factory=InputSize)
    step: int = 0
    domains: Optional[List[str]] = None  # a multi-domain model: its domains in label order (the label's length)
    target_domain: Optional[str] = None  # an exported multi-domain graph with its target built in
    load_size: Optional[int] = None  # the training transform: resize to load_size, crop input_size.train
    resize: str = "bicubic"
    normalisation: str = NORMALISATION
    version: str = __version__  # the package that wrote the card
    card_version: int = CARD_VERSION

    @classmethod
    def for_config(cls, cfg, direction: str, step: int = 0) -> "ModelCard":
        """The card of ``direction``'s generator of a run with the resolved settings ``cfg`` (a ``RunConfig``)."""
        spec = get_model(cfg.model_name)
        domains = cfg.model.domain_names() if hasattr(cfg.model, "domain_names") else None
        return cls(model=cfg.model_name, args=dataclasses.asdict(cfg.model), direction=direction,
                   input_size=spec.input_size(cfg.model, cfg.data.crop_size), step=int(step), domains=domains,
                   load_size=cfg.data.load_size, resize=cfg.data.resize)

    def model_args(self):
        """``args`` as the model's argument dataclass."""
        return get_model(self.model).args(**self.args)

    def build_generator(self) -> torch.nn.Module:
        """A generator of this card's model and arguments, with fresh weights."""
        return get_model(self.model).build_generator(self.model_args())

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any], source: str = "model card") -> "ModelCard":
        """Read a card; migrates earlier versions' generator JSON and refuses a newer format."""
        data = dict(data)
        _check_format(source, data.get("card_version", 0), CARD_VERSION, data.get("version"), "model card format")
        if "card_version" not in data:
            data = _migrate_v0(data)
        known = {f.name for f in dataclasses.fields(cls)}
        card = cls(**{k: v for k, v in data.items() if k in known})
        card.input_size = InputSize(**card.input_size) if isinstance(card.input_size, dict) else card.input_size
        return card

    def write(self, path: Path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def read(cls, path: Path) -> "ModelCard":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise BadFileError(f"{path}: not a readable model card ({e})") from None
        return cls.from_dict(data, str(path))


def _migrate_v0(old: Dict[str, Any]) -> Dict[str, Any]:
    """The generator JSON written before the card (``version``, ``crop_size`` beside the arguments); also a bare
    ``{"model", "args", "direction"}``: the input size then follows from the model's registry entry."""
    spec = get_model(old["model"])
    args = spec.args(**(old.get("args") or {}))
    direction = old.get("direction") or "AtoB"
    new = {"model": old["model"], "args": dataclasses.asdict(args), "direction": direction,
           "input_size": spec.input_size(args, old.get("crop_size")), "step": int(old.get("step") or 0),
           "domains": args.domain_names() if hasattr(args, "domain_names") else None,
           "target_domain": old.get("target_domain"), "load_size": old.get("load_size"),
           "version": old.get("version") or old.get("unpaired_version") or "0.1.0"}
    if old.get("resize"):
        new["resize"] = old["resize"]
    return new


# ----------------------------------------------------------------------------------------------------------
# generators for inference


def save_generator(folder: Path, card: ModelCard, module: torch.nn.Module) -> Path:
    """``folder/{direction}.safetensors`` + ``folder/{direction}.json`` (the card)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    weights = folder / f"{card.direction}.safetensors"
    check_finite(tensors, str(weights))
    atomic_write(weights, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    card.write(folder / f"{card.direction}.json")
    return weights


def load_generator(weights: Path, device="cpu") -> Tuple[torch.nn.Module, ModelCard]:
    """Rebuild a generator from ``X.safetensors`` and its card ``X.json``; returns (module in eval mode, card)."""
    from safetensors.torch import load_file

    weights = Path(weights)
    card_path = weights.with_suffix(".json")
    if not card_path.exists():
        raise FileNotFoundError(f"{card_path}: missing; it says which model {weights.name} belongs to")
    card = ModelCard.read(card_path)
    check_generator_file(weights, card, card_path)  # before anything is allocated
    module = card.build_generator()
    try:
        state = load_file(str(weights), device="cpu")
    except Exception as e:  # noqa: BLE001 - safetensors' errors do not name the file
        raise BadFileError(f"{weights}: not a readable safetensors file ({type(e).__name__}: {e})") from None
    module.load_state_dict(state)
    return module.to(device).eval(), card


def check_generator_file(weights: Path, card: ModelCard, card_path: Path) -> None:
    """The card's network (built on the meta device: no memory) must have exactly the tensors, with the shapes,
    that the weights file's header lists; a card that would build another network is refused naming both files."""
    found = safetensors_header(weights)
    try:
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in card.build_generator().state_dict().items()}
    except Exception as e:  # noqa: BLE001 - a card whose arguments build no network
        raise BadFileError(f"{card_path}: model {card.model!r} cannot be built with {card.args} ({e})") from None
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    shapes = [f"{k} {found[k][1]} != {expected[k]}" for k in expected if k in found and found[k][1] != expected[k]]
    if missing or unexpected or shapes:
        raise BadFileError(f"{weights}: does not fit the model its card {card_path.name} describes ({card.model}, "
                         f"ngf={card.args.get('ngf')}): missing {missing[:3]}, unexpected {unexpected[:3]}, "
                         f"shapes {shapes[:3]}")


def generators_from_training_state(path: Path, device="cpu", directions=("AtoB", "BtoA", MULTI)):
    """({direction: generator}, {direction: card}) from a ``checkpoints/step_N.pt``."""
    from .config import resolve

    state = load_training_state(path)
    cfg = resolve(state["config"])
    generators, cards = {}, {}
    for direction in directions:
        prefix = f"generators.{direction}."
        weights = {k[len(prefix):]: v for k, v in state["method"].items() if k.startswith(prefix)}
        if not weights:
            continue
        card = ModelCard.for_config(cfg, direction, state["step"])
        module = card.build_generator()
        module.load_state_dict(weights)
        generators[direction], cards[direction] = module.to(device).eval(), card
    return generators, cards


# ----------------------------------------------------------------------------------------------------------
# writing a whole run (the trainer, the importers)


def write_run(run_dir: Path, cfg, state: Dict[str, Any], generators, keep: Optional[int] = None) -> Path:
    """Write ``checkpoints/step_N.pt`` (``state``: at least ``step`` and ``method``; the trainer adds optimisers,
    scalers, pools and RNG states) and each of ``generators`` (direction -> module) with its card; returns the
    checkpoint's path. ``config.yaml`` is written by ``write_config``, once, when a run starts."""
    run_dir, step = Path(run_dir), int(state["step"])
    path = checkpoint_path(run_dir, step)
    check_finite(state["method"], str(path))  # nothing of this step is written when any weight is NaN/Inf
    save_training_state(path, {**state, "config": cfg.to_dict()})
    for direction, generator in generators.items():
        save_generator(run_dir / "generators", ModelCard.for_config(cfg, direction, step), generator)
    if keep:
        prune_checkpoints(run_dir, keep)
    return path


def generators_checkpoint(run_dir: Path, directions) -> Optional[Path]:
    """None when ``generators/`` of ``directions`` is that of the newest intact checkpoint (every card names
    its step); else that checkpoint, to load the generators from (a kill between the files of one save, or a
    damaged newest checkpoint, leaves them apart), with a warning."""
    run_dir = Path(run_dir)
    newest = latest_checkpoint(run_dir)
    cards = [run_dir / "generators" / f"{d}.json" for d in directions]
    cards = [c for c in cards if c.exists() and c.with_suffix(".safetensors").exists()]
    if newest is None or not cards:
        return None
    step = int(CHECKPOINT_RE.match(newest.name).group(1))
    steps = {c.stem: ModelCard.read(c).step for c in cards}
    if all(s == step for s in steps.values()):
        return None
    log.warning("%s: generators/ (steps %s) is not that of the newest intact checkpoint %s; loading the generators "
                "from the checkpoint", run_dir, steps, newest.name)
    return newest


def write_config(run_dir: Path, cfg) -> None:
    atomic_write_text(Path(run_dir) / "config.yaml", cfg.to_yaml())


def read_config(run_dir: Path) -> Dict[str, Any]:
    """``RUN/config.yaml`` as a mapping (``config.resolve`` turns it into a ``RunConfig``)."""
    from .config import read_preset

    return read_preset(str(Path(run_dir) / "config.yaml"))
