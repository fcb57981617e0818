"""Typed settings: data / model / loss weights / training; YAML presets; ``--set key=value`` overrides.

Resolution order (later wins): dataclass defaults → the model's own defaults (``ModelSpec.defaults``) →
the preset YAML → ``--set`` overrides. Unknown keys and badly typed values are errors that name the key
and suggest close matches. The resolved config is what ``RUN/config.yaml`` holds.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional

import yaml

PRESET_DIR = Path(__file__).parent / "presets"
SECTIONS = ("model", "data", "loss", "train")


class ConfigError(ValueError):
    """A bad setting; the message names the key, the value and what would be accepted."""


@dataclass
class DataConfig:
    root: str = ""  # dataset folder (trainA/ trainB/ testA/ testB/); --data sets it
    load_size: int = 286  # images are resized to load_size × load_size ...
    crop_size: int = 256  # ... then randomly cropped to crop_size (the network's training size)
    flip: bool = True  # random horizontal flip
    vflip: bool = False  # ours: random vertical flip too, for data without an up and down (docs/attention.md)
    resize: Literal["bicubic", "bilinear", "nearest", "lanczos"] = "bicubic"
    skip_bad_files: bool = False  # exclude unreadable images (with a warning) instead of failing
    num_workers: int = 2  # loader worker processes (persistent between steps); 0 = load in the training process
    pin_memory: bool = True  # page-locked batches for faster host-to-GPU copies (CUDA only; ignored on CPU)
    prefetch_factor: int = 2  # batches each worker loads ahead (with num_workers > 0)


@dataclass
class LossWeights:
    """Absolute weights of the loss terms; a model uses the ones its paper defines."""

    gan_mode: Literal["lsgan", "vanilla", "hinge", "wgan"] = "lsgan"
    adv: float = 1.0
    cycle: float = 10.0
    identity: float = 5.0  # CycleGAN: lambda_identity 0.5 × lambda_A 10
    cam: float = 1000.0  # U-GAT-IT generator auxiliary classifier
    tv: float = 0.0  # attention total variation (AttentionGAN Scheme I: 1e-6)
    pixel: float = 0.0  # L1(G(x), x) (AttentionGAN Scheme I: 1)
    attention_adv: float = 1.0  # attention-guided discriminator term (when model.discriminator=attention)
    attention_sparsity: float = 0.0  # AttentionGAN: mean foreground mask of G(a), F(b) (an L1 prior; ours)
    attention_smoothness: float = 0.0  # AttentionGAN: per-pixel TV of those foreground masks (ours)
    cls: float = 1.0  # domain classification (multi-domain)
    gp: float = 10.0  # gradient penalty (WGAN-GP)


@dataclass
class TrainConfig:
    steps: int = 10000  # optimiser iterations; the learning-rate schedule scales to it
    batch_size: int = 1
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    weight_decay: float = 0.0
    decay_fraction: float = 0.5  # lr constant, then linear to 0 over the last decay_fraction of the steps
    pool_size: int = 50  # image history pool per domain (0 = off)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # bf16/fp16 autocast; fp16 (CUDA): a GradScaler per optimiser
    channels_last: bool = False  # NHWC memory format for networks and batches
    compile: bool = False  # torch.compile every network in place (same parameter names and checkpoints)
    sync_batchnorm: bool = True  # several processes: BatchNorm -> SyncBatchNorm (CUDA); see docs/distributed.md
    init: Literal["normal", "xavier", "kaiming", "orthogonal", "default"] = "normal"
    init_gain: float = 0.02
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    deterministic: bool = False  # torch.use_deterministic_algorithms
    eval_every: int = 0  # score the test split every N steps (0 = never); logged as Eval/<direction>/<metric>
    eval_metrics: str = "fid,kid"  # comma-separated: fid, kid, masks (see `unpaired evaluate`)
    eval_images: int = 64  # how many test images per direction
    eval_feature_extractor: str = "unpaired-tiny"  # torch-fidelity extractor; inception-v3-compat needs its weights


@dataclass
class RunConfig:
    model_name: str
    model: Any  # the model's argument dataclass
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossWeights = field(default_factory=LossWeights)
    train: TrainConfig = field(default_factory=TrainConfig)
    description: str = ""

    def to_dict(self) -> Dict[str, Any]:
        out = {"model": {"name": self.model_name, **dataclasses.asdict(self.model)}}
        for section in ("data", "loss", "train"):
            out[section] = dataclasses.asdict(getattr(self, section))
        if self.description:
            out["description"] = self.description
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# ----------------------------------------------------------------------------------------------------------
# presets


def list_presets() -> List[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def preset_summaries() -> Dict[str, str]:
    """Preset name -> the first sentence of its leading comment (for ``unpaired train --help``): the first line,
    continued by the next ones while they carry on the sentence (start in lower case or with a digit)."""
    out = {}
    for name in list_presets():
        lines = []
        for line in (PRESET_DIR / f"{name}.yaml").read_text().splitlines():
            text = line.lstrip("# ").strip()
            if not line.startswith("#") or (lines and not text[:1].islower() and not text[:1].isdigit()):
                break
            lines.append(text)
        summary = " ".join(lines)
        out[name] = summary.split(". ")[0].rstrip(".") if ". " in summary else summary.rstrip(".")
    return out


def read_preset(name_or_path: str) -> Dict[str, Any]:
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") and path.exists()):
        if name_or_path not in list_presets():
            hint = difflib.get_close_matches(name_or_path, list_presets(), n=3)
            raise ConfigError(
                f"no preset or YAML file {name_or_path!r}"
                + (f"; did you mean {', '.join(hint)}?" if hint else "")
                + f" (presets: {', '.join(list_presets())})"
            )
        path = PRESET_DIR / f"{name_or_path}.yaml"
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections ({', '.join(SECTIONS)})")
    return raw


# ----------------------------------------------------------------------------------------------------------
# values


def _coerce(value: Any, kind: Any, key: str) -> Any:
    """``value`` (from YAML or a ``--set`` string) as the type ``kind``, or a ConfigError naming ``key``."""
    origin = typing.get_origin(kind)
    if origin is typing.Union:
        options = typing.get_args(kind)
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "~")):
            if type(None) in options:
                return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")
    if origin is Literal:
        choices = typing.get_args(kind)
        if value not in choices:
            hint = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
            raise ConfigError(
                f"{key}: {value!r} is not one of {', '.join(map(str, choices))}"
                + (f"; did you mean {hint[0]!r}?" if hint else "")
            )
        return value
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
            return value.lower() in ("true", "yes", "on", "1")
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if kind is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).replace("_", ""))
        except ValueError:
            raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
    if kind is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if kind is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    raise ConfigError(f"{key}: unsupported setting type {kind}")


def _update(obj: Any, values: Dict[str, Any], section: str) -> None:
    hints = typing.get_type_hints(type(obj))
    names = [f.name for f in dataclasses.fields(obj)]
    for key, value in values.items():
        if key not in names:
            raise ConfigError(_unknown(f"{section}.{key}", [f"{section}.{n}" for n in names]))
        setattr(obj, key, _coerce(value, hints[key], f"{section}.{key}"))


def _unknown(key: str, known: List[str]) -> str:
    hint = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
    return f"unknown key {key!r}" + (f"; did you mean {', '.join(hint)}?" if hint else f" (known: {', '.join(known)})")


def parse_overrides(pairs: List[str]) -> Dict[str, Dict[str, str]]:
    """``["train.lr=1e-4", "model.name=cyclegan"]`` -> ``{"train": {"lr": "1e-4"}, "model": {...}}``."""
    out: Dict[str, Dict[str, str]] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--set {pair!r}: expected key=value, e.g. train.lr=1e-4")
        key, value = pair.split("=", 1)
        key = key.strip()
        if key.count(".") != 1:
            raise ConfigError(f"--set {pair!r}: the key must be section.name with section one of {', '.join(SECTIONS)}")
        section, name = key.split(".")
        if section not in SECTIONS:
            raise ConfigError(_unknown(key, [f"{s}.*" for s in SECTIONS]))
        out.setdefault(section, {})[name] = value
    return out


def resolve(preset: Optional[Dict[str, Any]] = None, overrides: Optional[List[str]] = None) -> RunConfig:
    """A validated RunConfig from a preset mapping (``read_preset`` or a saved config.yaml) and overrides."""
    from .models import get_model, list_models

    preset = dict(preset or {})
    description = preset.pop("description", "")
    for key in preset:
        if key not in SECTIONS:
            raise ConfigError(_unknown(key, list(SECTIONS) + ["description"]))
    sets = parse_overrides(overrides or [])
    preset_model = dict(preset.get("model") or {})
    preset_name = preset_model.pop("name", "cyclegan")
    name = sets.get("model", {}).pop("name", preset_name)
    if name not in list_models():
        hint = difflib.get_close_matches(str(name), list_models(), n=2)
        raise ConfigError(f"model.name: unknown model {name!r}" + (f"; did you mean {', '.join(hint)}?" if hint else "")
                          + f" (models: {', '.join(list_models())})")
    spec = get_model(name)
    model_args = spec.args()
    arg_names = {f.name for f in dataclasses.fields(model_args)}
    if name != preset_name:  # a model switched by --set keeps the preset's settings it understands
        dropped = sorted(set(preset_model) - arg_names)
        if dropped:
            import warnings

            warnings.warn(f"model {name!r} has no setting(s) {', '.join(dropped)} from the preset; ignored")
        preset_model = {k: v for k, v in preset_model.items() if k in arg_names}
    cfg = RunConfig(model_name=name, model=model_args, description=str(description or ""))
    for section, values in getattr(spec, "defaults", {}).items():
        _update(getattr(cfg, section), values, section)
    _update(cfg.model, preset_model, "model")
    for section in ("data", "loss", "train"):
        _update(getattr(cfg, section), dict(preset.get(section) or {}), section)
    for section, values in sets.items():
        _update(getattr(cfg, section), values, section)
    size_arg = spec.size_arg
    if size_arg and getattr(cfg.model, size_arg) is None:  # the one input size: derived, never written twice
        setattr(cfg.model, size_arg, cfg.data.crop_size)
    validate(cfg)
    return cfg


def check_input_size(cfg: RunConfig) -> None:
    """A model tied to one input size (``ModelSpec.size_arg``) must be built for ``data.crop_size``. Resolving
    derives it; a value set by hand that differs is refused here (by ``--dry-run`` and before training)."""
    from .models import get_model

    key = get_model(cfg.model_name).size_arg
    if key and getattr(cfg.model, key) != cfg.data.crop_size:
        raise ConfigError(f"model.{key} ({getattr(cfg.model, key)}) must equal data.crop_size ({cfg.data.crop_size}): "
                          f"{cfg.model_name} is built for images of exactly that size; set data.crop_size alone "
                          f"(model.{key} follows it)")


#: (low, high, high included) of number settings; every number must also be finite. The model's integer
#: arguments (channels, blocks, layers, masks, c_dim, n_critic) are at least 1 (a step count: 0), its other numbers
#: at least 0.
BOUNDS = {
    "data.load_size": (1, None, True), "train.lr": (0.0, None, True), "train.beta1": (0.0, 1.0, False),
    "train.beta2": (0.0, 1.0, False), "train.weight_decay": (0.0, None, True), "train.init_gain": (0.0, None, True),
    "train.seed": (0, None, True), "model.dropout": (0.0, 1.0, False), "model.background_prior_steps": (0, None, True),
}


def check_bounds(cfg: RunConfig) -> None:
    """Every number setting finite and within ``BOUNDS``; ``train.lr`` above 0. One ConfigError naming the key."""
    sections = {"model": cfg.model, "data": cfg.data, "loss": cfg.loss, "train": cfg.train}
    for section, obj in sections.items():
        for f in dataclasses.fields(obj):
            value, key = getattr(obj, f.name), f"{section}.{f.name}"
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if not math.isfinite(value):
                raise ConfigError(f"{key}: must be a finite number, got {value}")
            default = (1 if isinstance(value, int) else 0.0, None, True) if section == "model" else \
                ((0.0, None, True) if section == "loss" else None)
            low, high, closed = BOUNDS.get(key, default) or (None, None, True)
            if low is not None and value < low or (key == "train.lr" and value <= 0):
                raise ConfigError(f"{key}: must be {'above' if key == 'train.lr' else 'at least'} {low}, got {value}")
            if high is not None and (value > high or (value == high and not closed)):
                raise ConfigError(f"{key}: must be below {high}{' or equal' if closed else ''}, got {value}")


def validate(cfg: RunConfig) -> None:
    d, t = cfg.data, cfg.train
    if d.crop_size > d.load_size:
        raise ConfigError(f"data.crop_size ({d.crop_size}) is larger than data.load_size ({d.load_size})")
    for key, value in (("data.crop_size", d.crop_size), ("train.steps", t.steps), ("train.batch_size", t.batch_size),
                       ("train.log_every", t.log_every), ("train.sample_every", t.sample_every),
                       ("train.checkpoint_every", t.checkpoint_every), ("train.keep_checkpoints", t.keep_checkpoints)):
        if value < 1:
            raise ConfigError(f"{key}: must be at least 1, got {value}")
    if not 0.0 <= t.decay_fraction <= 1.0:
        raise ConfigError(f"train.decay_fraction: must be in [0, 1], got {t.decay_fraction}")
    if t.eval_every < 0 or t.eval_images < 2:
        raise ConfigError("train.eval_every must be >= 0 and train.eval_images >= 2")
    if t.pool_size < 0 or d.num_workers < 0:
        raise ConfigError("train.pool_size and data.num_workers must be >= 0")
    if d.prefetch_factor < 1:
        raise ConfigError(f"data.prefetch_factor: must be at least 1, got {d.prefetch_factor}")
    if not (t.device in ("auto", "cpu", "cuda", "mps") or re.fullmatch(r"cuda:\d+", t.device)):
        raise ConfigError(f"train.device: {t.device!r} is not one of auto, cpu, cuda, cuda:N (N a GPU number), mps")
    check_bounds(cfg)
    check = getattr(cfg.model, "validate", None)
    if check is not None:
        try:
            check()
        except ValueError as e:
            raise ConfigError(f"model: {e}") from None
