"""Official AttentionGAN checkpoints (Ha0Tang/AttentionGAN) -> run folders.

``attentiongan`` (Scheme II and AttentionGAN-geo, repo root and ``AttentionGAN-geo/``): files
``<epoch>_net_G_A.pth``, ``<epoch>_net_G_B.pth`` and optionally ``<epoch>_net_D_A.pth``,
``<epoch>_net_D_B.pth`` (plain state dicts). G_A (A→B) = ``generators.AtoB``, G_B = ``generators.BtoA``;
D_A judges domain B, so D_A = ``discriminators.B`` and D_B = ``discriminators.A``. The settings come from
the tensors (shared/spec/models.md §1.5): ngf, n_blocks, the number of masks, and geo ⇔ as many content
images as masks.

``attentiongan-v1`` (Scheme I, ``AttentionGAN-v1/``): ``netG_A2B.pth``, ``netG_B2A.pth`` and optionally
``netD_A.pth``, ``netD_B.pth``. Here netD_A judges domain A (= ``discriminators.A``). BatchNorm buffers are
imported; files from torch 0.3 have no ``num_batches_tracked`` and get 0.

Each network has one key-table function below (rows: our key ← their key), generated from the settings;
``convert`` checks that every official key is used exactly once and every shape fits.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Mapping, Sequence

import torch

from . import ImportMismatch, Row, convert, load_official, write_run

CONV = ("weight", "bias")
BATCHNORM = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _rows(prefix: str, pairs: Sequence[tuple]) -> List[Row]:
    """(our module, their module, parameter names) -> one row per parameter, ours under ``prefix``."""
    head = f"{prefix}." if prefix else ""
    return [(f"{head}{ours}.{p}", f"{theirs}.{p}", None) for ours, theirs, params in pairs for p in params]


# ----------------------------------------------------------------------------------------------------------
# key tables


def v2_generator_rows(n_blocks: int, prefix: str = "") -> List[Row]:
    """``ResnetGenerator_our`` (models/networks.py) -> ``AttentionGANGenerator``."""
    pairs = [("encoder.stem.conv", "conv1", CONV), ("encoder.down1.conv", "conv2", CONV),
             ("encoder.down2.conv", "conv3", CONV)]
    pairs += [(f"encoder.blocks.{i}.conv{j}", f"resnet_blocks.{i}.conv{j}", CONV)
              for i in range(n_blocks) for j in (1, 2)]
    for ours, theirs in (("content_decoder", "content"), ("attention_decoder", "attention")):
        pairs += [(f"{ours}.up1.conv", f"deconv1_{theirs}", CONV),
                  (f"{ours}.up2.conv", f"deconv2_{theirs}", CONV),
                  (f"{ours}.head", f"deconv3_{theirs}", CONV)]
    return _rows(prefix, pairs)


def patchgan_rows(n_layers: int, prefix: str = "") -> List[Row]:
    """CycleGAN's ``NLayerDiscriminator`` (instance norm: no norm parameters) -> ``PatchGANDiscriminator``;
    both Sequentials have the convs at the same indices: 0, 2, 5, …, 3·n_layers + 2."""
    indices = [0] + [2 + 3 * i for i in range(n_layers)] + [3 * n_layers + 2]
    return _rows(prefix, [(f"model.{i}", f"model.{i}", CONV) for i in indices])


def v1_generator_rows(n_blocks: int, prefix: str = "") -> List[Row]:
    """AttentionGAN-v1 ``Generator`` (one Sequential ``model``) -> ``AttentionGANS1Generator``."""
    pairs = [("encoder.stem.conv", "model.1", CONV), ("encoder.stem.norm", "model.2", BATCHNORM),
             ("encoder.down1.conv", "model.4", CONV), ("encoder.down1.norm", "model.5", BATCHNORM),
             ("encoder.down2.conv", "model.7", CONV), ("encoder.down2.norm", "model.8", BATCHNORM)]
    for i in range(n_blocks):  # model.10 … : ResnetBlock.conv_block = [pad, conv, BN, ReLU, pad, conv, BN]
        ours, theirs = f"encoder.blocks.{i}", f"model.{10 + i}.conv_block"
        pairs += [(f"{ours}.conv1", f"{theirs}.1", CONV), (f"{ours}.norm1", f"{theirs}.2", BATCHNORM),
                  (f"{ours}.conv2", f"{theirs}.5", CONV), (f"{ours}.norm2", f"{theirs}.6", BATCHNORM)]
    start = 10 + n_blocks
    for u in (1, 2):  # each up-sampling: pad, conv, BN, ReLU, conv1×1, PixelShuffle, BN, ReLU
        ours, s = f"decoder.up{u}", start + 8 * (u - 1)
        pairs += [(f"{ours}.conv", f"model.{s + 1}", CONV), (f"{ours}.norm1", f"model.{s + 2}", BATCHNORM),
                  (f"{ours}.expand", f"model.{s + 4}", CONV), (f"{ours}.norm2", f"model.{s + 6}", BATCHNORM)]
    pairs.append(("decoder.head", f"model.{start + 17}", CONV))  # after pad
    return _rows(prefix, pairs)


def v1_discriminator_rows(n_layers: int, prefix: str = "") -> List[Row]:
    """AttentionGAN-v1 ``Discriminator.conv_tower`` -> ``GlobalDiscriminator.model`` (same indices)."""
    pairs = []
    for i in range(n_layers):
        pairs += [(f"model.{3 * i}", f"conv_tower.{3 * i}", CONV),
                  (f"model.{3 * i + 1}", f"conv_tower.{3 * i + 1}", BATCHNORM)]
    pairs += [(f"model.{3 * n_layers}", f"conv_tower.{3 * n_layers}", CONV),
              (f"model.{3 * n_layers + 3}", f"conv_tower.{3 * n_layers + 3}", CONV)]
    return _rows(prefix, pairs)


# ----------------------------------------------------------------------------------------------------------
# settings from the tensors


def _shape(state: Mapping[str, torch.Tensor], key: str, source: str) -> tuple:
    if key not in state:
        raise ImportMismatch(f"{source}: missing official key {key!r}: "
                             f"not an AttentionGAN file of this kind?")
    return tuple(state[key].shape)


def _count(state: Mapping[str, torch.Tensor], pattern: str) -> int:
    return len({m.group(1) for k in state if (m := re.match(pattern, k))})


def infer_v2_generator(state: Mapping[str, torch.Tensor], source: str) -> Dict[str, object]:
    ngf, in_ch = _shape(state, "conv1.weight", source)[:2]
    if in_ch != 3:
        raise ImportMismatch(f"{source}: conv1.weight takes {in_ch} input channels; "
                             f"only RGB (3) is supported")
    n_content, rest = divmod(_shape(state, "deconv3_content.weight", source)[0], 3)
    n_masks = _shape(state, "deconv3_attention.weight", source)[0]
    if rest or n_content not in (n_masks - 1, n_masks):
        raise ImportMismatch(f"{source}: deconv3_content has {3 * n_content + rest} channels and "
                             f"deconv3_attention {n_masks}: expected 3·(masks − 1) (Scheme II) "
                             f"or 3·masks (geo)")
    return {"name": "attentiongan-geo" if n_content == n_masks else "attentiongan", "ngf": ngf,
            "n_blocks": _count(state, r"resnet_blocks\.(\d+)\."), "n_masks": n_masks}


def infer_patchgan(state: Mapping[str, torch.Tensor], source: str) -> Dict[str, object]:
    convs = [k for k, v in state.items() if k.endswith(".weight") and v.ndim == 4]
    return {"ndf": _shape(state, "model.0.weight", source)[0], "n_layers_d": len(convs) - 2}


def infer_v1_generator(state: Mapping[str, torch.Tensor], source: str) -> Dict[str, object]:
    ngf = _shape(state, "model.1.weight", source)[0]
    n_blocks = _count(state, r"model\.(\d+)\.conv_block\.")
    if "model.2.running_mean" not in state:
        raise ImportMismatch(f"{source}: no BatchNorm statistics (model.2.running_mean): only the official "
                             f"BatchNorm generator is supported")
    return {"name": "attentiongan-s1", "ngf": ngf, "n_blocks": n_blocks, "norm": "batch"}


def infer_v1_discriminator(state: Mapping[str, torch.Tensor], source: str) -> Dict[str, object]:
    return {"ndf": _shape(state, "conv_tower.0.weight", source)[0],
            "n_layers_d": sum(1 for k in state if k.endswith(".running_mean"))}


# ----------------------------------------------------------------------------------------------------------
# files


def identify(inputs: Sequence[Path], suffixes: Mapping[str, str], required: Sequence[str]) -> Dict[str, Path]:
    """Role -> file, by name suffix after ``_`` or ``-`` (``latest_net_G_A.pth`` is G_A, ``200000-G.ckpt``
    is G); unknown, duplicate or missing files are errors that say what was expected."""
    found: Dict[str, Path] = {}
    for path in map(Path, inputs):
        roles = [role for role, suffix in suffixes.items()
                 if path.name == suffix or path.name.endswith(("_" + suffix, "-" + suffix))]
        if not roles:
            raise ImportMismatch(f"{path}: cannot tell which network this file holds; expected names "
                                 f"ending in {', '.join(suffixes.values())}")
        if roles[0] in found:
            raise ImportMismatch(f"two files for {roles[0]}: {found[roles[0]]} and {path}")
        found[roles[0]] = path
    missing = [suffixes[r] for r in required if r not in found]
    if missing:
        raise ImportMismatch(f"missing required file(s) ending in {', '.join(missing)} (given: "
                             f"{', '.join(p.name for p in map(Path, inputs)) or 'none'})")
    return found


def _agree(settings: Sequence[Dict[str, object]], files: Sequence[Path]) -> Dict[str, object]:
    for other, path in zip(settings[1:], files[1:]):
        if other != settings[0]:
            raise ImportMismatch(f"{path}: settings {other} differ from {files[0]}'s {settings[0]}")
    return dict(settings[0])


def _ours(model: Dict[str, object]) -> Dict[str, torch.Tensor]:
    """Our method's state dict for these settings (for the keys and shapes)."""
    from ..config import LossWeights
    from ..models import get_model

    spec = get_model(str(model["name"]))
    args = spec.args(**{k: v for k, v in model.items() if k != "name"})
    return spec.build(args, LossWeights()).state_dict()


def _convert_networks(jobs, ours_all: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """``jobs``: (file, its state, our prefix, rows); each file fills exactly the keys under its prefix."""
    state: Dict[str, torch.Tensor] = {}
    for path, theirs, prefix, rows in jobs:
        ours = {k: v for k, v in ours_all.items() if k.startswith(prefix + ".")}
        optional = [their for _, their, _ in rows if their.endswith("num_batches_tracked")]
        theirs = dict(theirs)
        for key in optional:  # torch 0.3 files have no num_batches_tracked
            theirs.setdefault(key, torch.tensor(0, dtype=torch.long))
        state.update(convert(theirs, rows, ours, str(path), optional_theirs=optional))
    return state


def _import(inputs: Sequence[Path], out: Path, *, files: Mapping[str, str], targets: Mapping[str, str],
            infer_g, infer_d, g_rows, d_rows) -> Path:
    """The two importers' common path. ``files``: role -> file-name suffix, the two generators first, then
    the two optional discriminators; ``targets``: role -> our prefix; ``infer_*`` read the settings off
    a state dict; ``*_rows(n, prefix)`` build the key tables."""
    roles = list(files)
    generators, optional = roles[:2], roles[2:]
    found = identify(inputs, files, required=generators)
    loaded = {role: load_official(path) for role, path in found.items()}
    model = _agree([infer_g(loaded[r], str(found[r])) for r in generators], [found[r] for r in generators])
    discriminators = [r for r in optional if r in loaded]
    if discriminators:
        model.update(_agree([infer_d(loaded[r], str(found[r])) for r in discriminators],
                            [found[r] for r in discriminators]))
    jobs = [(found[r], loaded[r], targets[r], g_rows(int(model["n_blocks"]), targets[r])) for r in generators]
    jobs += [(found[r], loaded[r], targets[r], d_rows(int(model["n_layers_d"]), targets[r]))
             for r in discriminators]
    state = _convert_networks(jobs, _ours(model))
    partial = ("discriminators",) if len(discriminators) < 2 else ()
    return write_run(out, model, state, partial=partial)


def import_attentiongan(inputs: Sequence[Path], out: Path) -> Path:
    """Scheme II / geo: ``*_net_G_A.pth``, ``*_net_G_B.pth`` [, ``*_net_D_A.pth``, ``*_net_D_B.pth``]."""
    return _import(inputs, out,
                   files={"G_A": "net_G_A.pth", "G_B": "net_G_B.pth",
                          "D_A": "net_D_A.pth", "D_B": "net_D_B.pth"},
                   targets={"G_A": "generators.AtoB", "G_B": "generators.BtoA",  # D_A judges B, D_B judges A
                            "D_A": "discriminators.B", "D_B": "discriminators.A"},
                   infer_g=infer_v2_generator, infer_d=infer_patchgan,
                   g_rows=v2_generator_rows, d_rows=patchgan_rows)


def import_attentiongan_v1(inputs: Sequence[Path], out: Path) -> Path:
    """Scheme I: ``netG_A2B.pth``, ``netG_B2A.pth`` [, ``netD_A.pth``, ``netD_B.pth``]."""
    return _import(inputs, out,
                   files={"G_A2B": "netG_A2B.pth", "G_B2A": "netG_B2A.pth",
                          "D_A": "netD_A.pth", "D_B": "netD_B.pth"},
                   targets={"G_A2B": "generators.AtoB", "G_B2A": "generators.BtoA",  # v1: netD_A judges A
                            "D_A": "discriminators.A", "D_B": "discriminators.B"},
                   infer_g=infer_v1_generator, infer_d=infer_v1_discriminator, g_rows=v1_generator_rows,
                   d_rows=v1_discriminator_rows)
