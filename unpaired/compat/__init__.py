"""Readers for the official repositories' checkpoint files. All knowledge of foreign key names lives in
this package: each format is an explicit key table (ours ← theirs) in which every official key must be
used exactly once and every shape must match; the result is an ordinary run folder.

Formats register themselves in ``FORMATS`` (name -> ``importer(inputs, out) -> Path``); the CLI's
``unpaired import --format NAME --input FILE... --out RUN`` calls ``import_checkpoint``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable, Dict, Iterable, Mapping, Optional, Sequence, Tuple

import torch

#: format name -> "module:function"; modules are imported only when their format is used
FORMATS: Dict[str, str] = {}
#: format name -> one line for ``unpaired import --help``
FORMAT_HELP: Dict[str, str] = {}


class ImportMismatch(ValueError):
    """An official checkpoint does not fit the expected layout; the message names the first bad key."""


def register_format(name: str, target: str, help: str) -> None:
    FORMATS[name] = target
    FORMAT_HELP[name] = help


def import_checkpoint(fmt: str, inputs: Sequence[Path], out: Path, **options) -> Path:
    """Run format ``fmt``'s importer; ``options`` (e.g. ``domains="a,b,c"``) go to importers that take them."""
    import inspect

    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(sorted(FORMATS))}")
    for path in inputs:
        if not Path(path).exists():
            raise FileNotFoundError(f"{path}: no such file")
    module, function = FORMATS[fmt].split(":")
    importer = getattr(importlib.import_module(module, __name__), function)
    accepted = inspect.signature(importer).parameters
    for name in options:
        if name not in accepted:
            raise ImportMismatch(f"--{name} does not apply to format {fmt!r}")
    return importer(list(inputs), Path(out), **options)


def load_official(path: Path) -> dict:
    """``torch.load(weights_only=True)`` of a foreign file; strips a DataParallel ``module.`` prefix."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise ImportMismatch(f"{path}: not a readable PyTorch state dict ({type(e).__name__}: {e})") from e
    if not isinstance(state, Mapping):
        raise ImportMismatch(f"{path}: expected a dict of tensors, got {type(state).__name__}")
    return {(k[7:] if k.startswith("module.") else k): v for k, v in state.items()}


Row = Tuple[str, str, Optional[Callable[[torch.Tensor], torch.Tensor]]]


def convert(theirs: Mapping[str, torch.Tensor], table: Iterable[Row], ours: Mapping[str, torch.Tensor],
            source: str, optional_theirs: Iterable[str] = ()) -> Dict[str, torch.Tensor]:
    """Fill our state dict from theirs through ``table`` rows ``(our_key, their_key, transform)``.

    Every our-key in ``ours`` must be filled exactly once, every their-key used exactly once (except
    the ones listed in ``optional_theirs``, e.g. BatchNorm ``num_batches_tracked``), shapes must agree.
    """
    result: Dict[str, torch.Tensor] = {}
    used: Dict[str, str] = {}
    for our_key, their_key, transform in table:
        if their_key not in theirs:
            raise ImportMismatch(f"{source}: missing official key {their_key!r} (needed for {our_key})")
        if their_key in used:
            raise ImportMismatch(f"{source}: official key {their_key!r} used twice ({used[their_key]}, {our_key})")
        if our_key not in ours:
            raise ImportMismatch(f"{source}: key table names {our_key!r}, which this model does not have")
        if our_key in result:
            raise ImportMismatch(f"{source}: {our_key} filled twice")
        value = theirs[their_key]
        value = transform(value) if transform is not None else value
        if tuple(value.shape) != tuple(ours[our_key].shape):
            raise ImportMismatch(f"{source}: official key {their_key!r} has shape {tuple(theirs[their_key].shape)}, "
                                 f"expected {tuple(ours[our_key].shape)} for {our_key}")
        used[their_key] = our_key
        result[our_key] = value.to(ours[our_key].dtype)
    unused = [k for k in theirs if k not in used and k not in set(optional_theirs)]
    if unused:
        raise ImportMismatch(f"{source}: official key {unused[0]!r} not used by the key table "
                             f"({len(unused)} unused): wrong format or model settings?")
    unfilled = [k for k in ours if k not in result]
    if unfilled:
        raise ImportMismatch(f"{source}: nothing in the file fills {unfilled[0]!r} ({len(unfilled)} unfilled)")
    return result


def write_run(out: Path, model: Dict[str, object], state: Dict[str, torch.Tensor], *, step: int = 0,
              overrides: Sequence[str] = (), partial: Sequence[str] = (),
              directions: Optional[Sequence[str]] = None) -> Path:
    """Write a run folder (config.yaml, checkpoints/step_N.pt, generators/* with their cards) holding ``state``.

    ``model``: the ``model`` config section (``name`` and arguments). ``state``: our method's state dict;
    networks named in ``partial`` (e.g. ``"discriminators"``) may be absent and keep fresh weights (initialised
    as the trainer would, from ``train.seed``). ``directions``: the generators written to ``generators/``
    (default all; an import of one direction writes only that one). The checkpoint holds weights only;
    ``--resume`` starts fresh optimisers from it.
    """
    import random

    from .. import runfolder
    from ..config import resolve
    from ..models import get_model
    from ..nn.init import init_weights

    out = Path(out)
    if (out / "checkpoints").is_dir() and any((out / "checkpoints").iterdir()):
        raise FileExistsError(f"{out} already holds checkpoints; import into a new folder")
    cfg = resolve({"model": dict(model)}, [*overrides, "train.device=cpu"])
    random.seed(cfg.train.seed)
    torch.manual_seed(cfg.train.seed)
    method = init_weights(get_model(cfg.model_name).build(cfg.model, cfg.loss), cfg.train.init, cfg.train.init_gain)
    expected = method.state_dict()
    missing = [k for k in expected if k not in state and not any(k.startswith(p + ".") for p in partial)]
    extra = [k for k in state if k not in expected]
    if missing or extra:
        raise ImportMismatch(f"internal: converted state does not fit {model['name']}: "
                             f"missing {missing[:3]}, unexpected {extra[:3]}")
    merged = dict(expected)
    merged.update(state)
    method.load_state_dict(merged)
    runfolder.write_config(out, cfg)
    generators = {d: g for d, g in method.generators.items() if directions is None or d in directions}
    return runfolder.write_run(out, cfg, {"step": step, "method": method.state_dict()}, generators)


def prefixed(prefix: str, state: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in state.items()}


def state_shapes(module: torch.nn.Module) -> Dict[str, torch.Tensor]:
    return dict(module.state_dict())


__all__ = ["FORMATS", "FORMAT_HELP", "ImportMismatch", "register_format", "import_checkpoint", "load_official",
           "convert", "write_run", "prefixed", "state_shapes"]

register_format("ugatit-pytorch", ".ugatit_pytorch:import_ugatit_pytorch",
                "official U-GAT-IT PyTorch file <dataset>_params_<step>.pt (znxlwm/UGATIT-pytorch; full or light)")
register_format("attentiongan", ".attentiongan:import_attentiongan",
                "official AttentionGAN Scheme II / geo files <epoch>_net_G_A.pth, <epoch>_net_G_B.pth "
                "[, <epoch>_net_D_A.pth, <epoch>_net_D_B.pth] (Ha0Tang/AttentionGAN)")
register_format("attentiongan-v1", ".attentiongan:import_attentiongan_v1",
                "official AttentionGAN-v1 (Scheme I) files netG_A2B.pth, netG_B2A.pth "
                "[, netD_A.pth, netD_B.pth]")
register_format("attentiongan-multi", ".multidomain:import_attentiongan_multi",
                "official AttentionGAN-v1-multi files <iter>-G.ckpt [, <iter>-D.ckpt]; --domains a,b,c names them")
register_format("stargan", ".multidomain:import_stargan",
                "original StarGAN files <iter>-G.ckpt [, <iter>-D.ckpt] (yunjey/stargan); --domains a,b,c")
register_format("cyclegan", ".cyclegan:import_cyclegan",
                "official CycleGAN files latest_net_G_A.pth [, latest_net_G_B.pth, latest_net_D_A.pth, "
                "latest_net_D_B.pth] (junyanz/pytorch-CycleGAN-and-pix2pix), or one released generator "
                "such as horse2zebra.pth (2017 format; it becomes the run's AtoB)")
register_format("ugatit-tf", ".ugatit_tf:import_ugatit_tf",
                "official U-GAT-IT TensorFlow checkpoint folder (checkpoint, *.index, *.data-*) or its .index "
                "file (taki0112/UGATIT; full or light; generator_B = AtoB); --tf-smoothing auto|on|off")
