"""Official CycleGAN checkpoints (junyanz/pytorch-CycleGAN-and-pix2pix) -> run folders.

Files as ``BaseModel.save_networks`` writes them: ``<epoch>_net_G_A.pth``, ``<epoch>_net_G_B.pth``,
``<epoch>_net_D_A.pth``, ``<epoch>_net_D_B.pth`` (plain state dicts of ``ResnetGenerator`` /
``NLayerDiscriminator``). G_A (A→B) = ``generators.AtoB``, G_B = ``generators.BtoA``; D_A judges domain B
(``discriminators.B``), D_B judges A (``discriminators.A``). Any subset with at least one generator is a
valid import: the run holds only the generators given (``generators/AtoB.*`` for G_A alone), and networks
not in the files start fresh in the checkpoint (``--resume`` then fine-tunes them from scratch).

The released 2017 generators (``horse2zebra.pth``, ``monet2photo.pth``, …; ``latest_net_G.pth`` after
``scripts/download_cyclegan_model.sh``) are one generator of a direction the file does not record: imported
alone under any other name, it becomes the run's ``AtoB`` (the direction its name reads, e.g. horse→zebra).
Those files were saved by PyTorch < 0.4 (legacy serialization, read by ``torch.load`` as it is) and carry
``running_mean`` / ``running_var`` after every InstanceNorm, buffers the official loader deletes
(``__patch_instance_norm_state_dict``, also for ``num_batches_tracked``); here they are skipped by rule, at
the InstanceNorm positions only, and any other extra key is an error.

The settings come from the tensors: ngf, n_blocks (``model.<i>.conv_block`` count), dropout (the second conv
of a block at ``conv_block.6`` instead of ``.5``), ndf and n_layers_D. Only ``--norm instance`` (the CycleGAN
default; every conv has a bias) is read.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Dict, List, Mapping, Sequence

import torch

from . import ImportMismatch, Row, convert, load_official, write_run
from .attentiongan import CONV, _rows, identify, patchgan_rows

FILES = {"G_A": "net_G_A.pth", "G_B": "net_G_B.pth", "D_A": "net_D_A.pth", "D_B": "net_D_B.pth"}
TARGETS = {"G_A": "generators.AtoB", "G_B": "generators.BtoA",  # D_A judges B, D_B judges A
           "D_A": "discriminators.B", "D_B": "discriminators.A", "G": "generators.AtoB"}
NORM_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def generator_rows(n_blocks: int, dropout: bool, prefix: str) -> List[Row]:
    """``ResnetGenerator`` (one Sequential ``model``) -> ``CycleGANGenerator``."""
    second = 6 if dropout else 5  # [pad, conv, IN, ReLU, (Dropout), pad, conv, IN]
    pairs = [("encoder.stem.conv", "model.1", CONV), ("encoder.down1.conv", "model.4", CONV),
             ("encoder.down2.conv", "model.7", CONV)]
    for i in range(n_blocks):
        pairs += [(f"encoder.blocks.{i}.conv1", f"model.{10 + i}.conv_block.1", CONV),
                  (f"encoder.blocks.{i}.conv2", f"model.{10 + i}.conv_block.{second}", CONV)]
    s = 10 + n_blocks  # convT, IN, ReLU, convT, IN, ReLU, pad, conv, tanh
    pairs += [("decoder.up1.conv", f"model.{s}", CONV), ("decoder.up2.conv", f"model.{s + 3}", CONV),
              ("decoder.head", f"model.{s + 7}", CONV)]
    return _rows(prefix, pairs)


def generator_norms(n_blocks: int, dropout: bool) -> List[str]:
    """The official generator's InstanceNorm modules (where 2017 files hold running statistics)."""
    s = 10 + n_blocks
    norms = ["model.2", "model.5", "model.8", f"model.{s + 1}", f"model.{s + 4}"]
    for i in range(n_blocks):
        norms += [f"model.{10 + i}.conv_block.2", f"model.{10 + i}.conv_block.{7 if dropout else 6}"]
    return norms


def discriminator_norms(n_layers: int) -> List[str]:
    return [f"model.{3 + 3 * i}" for i in range(n_layers)]


def infer_generator(state: Mapping[str, torch.Tensor], source: str) -> Dict[str, object]:
    if "model.1.weight" not in state:
        raise ImportMismatch(f"{source}: missing official key 'model.1.weight': not a CycleGAN ResnetGenerator file")
    if "model.1.bias" not in state:
        raise ImportMismatch(f"{source}: the first conv has no bias: a BatchNorm generator (--norm batch); only "
                             f"the default --norm instance is supported")
    ngf, in_ch = tuple(state["model.1.weight"].shape[:2])
    if in_ch != 3:
        raise ImportMismatch(f"{source}: model.1.weight takes {in_ch} input channels; only RGB (3) is supported")
    n_blocks = len({m.group(1) for k in state if (m := re.match(r"model\.(\d+)\.conv_block\.", k))})
    dropout = "model.10.conv_block.6.weight" in state
    return {"ngf": int(ngf), "n_blocks": n_blocks, "dropout": 0.5 if dropout else 0.0}


def infer_discriminator(state: Mapping[str, torch.Tensor], source: str) -> Dict[str, object]:
    if "model.0.weight" not in state:
        raise ImportMismatch(f"{source}: missing official key 'model.0.weight': not a CycleGAN "
                             f"NLayerDiscriminator file")
    convs = [k for k, v in state.items() if k.endswith(".weight") and v.ndim == 4]
    return {"ndf": int(state["model.0.weight"].shape[0]), "n_layers_d": len(convs) - 2}


def _roles(inputs: Sequence[Path]) -> Dict[str, Path]:
    """Role -> file. One file whose name is none of the four roles is a released generator (``G``: AtoB)."""
    paths = [Path(p) for p in inputs]
    if len(paths) == 1 and not any(paths[0].name.endswith(("_" + s, "-" + s)) or paths[0].name == s
                                   for s in FILES.values()):
        return {"G": paths[0]}
    found = identify(paths, FILES, required=())
    if not any(role.startswith("G") for role in found):
        raise ImportMismatch("no generator file given (…net_G_A.pth and/or …net_G_B.pth, or one released "
                             "generator such as horse2zebra.pth)")
    return found


def _agree(values: Sequence[Dict[str, object]], files: Sequence[Path]) -> Dict[str, object]:
    for other, path in zip(values[1:], files[1:]):
        if other != values[0]:
            raise ImportMismatch(f"{path}: settings {other} differ from {files[0]}'s {values[0]}")
    return dict(values[0]) if values else {}


def import_cyclegan(inputs: Sequence[Path], out: Path) -> Path:
    """``unpaired import --format cyclegan --input latest_net_G_A.pth [latest_net_G_B.pth latest_net_D_A.pth
    latest_net_D_B.pth] --out RUN``, or ``--input horse2zebra.pth`` (a released generator: the run's AtoB)."""
    from ..config import LossWeights
    from ..models import get_model

    found = _roles(inputs)
    loaded = {role: load_official(path) for role, path in found.items()}
    gens = [r for r in found if r.startswith("G")]
    dis = [r for r in found if r.startswith("D")]
    model: Dict[str, object] = {"name": "cyclegan"}
    model.update(_agree([infer_generator(loaded[r], str(found[r])) for r in gens], [found[r] for r in gens]))
    model.update(_agree([infer_discriminator(loaded[r], str(found[r])) for r in dis], [found[r] for r in dis]))
    spec = get_model("cyclegan")
    args = spec.args(**{k: v for k, v in model.items() if k != "name"})
    ours_all = spec.build(args, LossWeights()).state_dict()
    dropout = args.dropout > 0
    state: Dict[str, torch.Tensor] = {}
    for role in gens + dis:
        prefix = TARGETS[role]
        if role.startswith("G"):
            rows, norms = generator_rows(args.n_blocks, dropout, prefix), generator_norms(args.n_blocks, dropout)
        else:
            rows, norms = patchgan_rows(args.n_layers_d, prefix), discriminator_norms(args.n_layers_d)
        skipped = [f"{norm}.{b}" for norm in norms for b in NORM_BUFFERS]  # pre-0.4 files; the official loader drops them
        ours = {k: v for k, v in ours_all.items() if k.startswith(prefix + ".")}
        state.update(convert(loaded[role], rows, ours, str(found[role]), optional_theirs=skipped))
    directions = [TARGETS[r].split(".")[1] for r in gens]
    imported = [TARGETS[r] for r in gens + dis]
    fresh = [p for p in ("generators.AtoB", "generators.BtoA", "discriminators.A", "discriminators.B")
             if p not in imported]
    run = write_run(out, model, state, partial=fresh, directions=directions)
    note = {"format": "cyclegan", "files": {TARGETS[r]: str(found[r]) for r in found}, "imported": imported,
            "fresh": fresh, "generators": directions}
    (Path(out) / "import.json").write_text(json.dumps(note, indent=2) + "\n")
    if fresh:
        print(f"imported {', '.join(imported)}; not in the files (fresh weights in the checkpoint, trained from "
              f"scratch by --resume): {', '.join(fresh)}")
    if "G" in found:
        print(f"{found['G'].name}: one released generator, imported as the run's AtoB (translate --direction AtoB)")
    return run
