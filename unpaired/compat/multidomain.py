"""Official multi-domain checkpoints -> run folders: ``AttentionGAN-v1-multi/`` (format ``attentiongan-multi``)
and the original StarGAN (format ``stargan``: the same networks, generator head 64 → 3 then tanh).

Files: ``<iter>-G.ckpt`` and optionally ``<iter>-D.ckpt`` (plain state dicts). The generator is one
Sequential ``main`` (shared/spec/models.md §4.1): for ``repeat_num`` = r residual blocks,

    main.0 conv, main.1 IN | main.3 conv, main.4 IN | main.6 conv, main.7 IN | main.{9..8+r}.main.{0,1,3,4}
    | main.{9+r} convT, main.{10+r} IN | main.{12+r} convT, main.{13+r} IN | main.{15+r} head conv.

Its instance norms keep running statistics that the official test never uses (it never calls ``eval()``):
those buffers (``running_mean``, ``running_var``, ``num_batches_tracked``) are listed as known and dropped;
ours normalise with per-instance statistics in every mode. The discriminator: ``main.{0,2,…}`` convs,
``conv1`` (real/fake map) → ``src``, ``conv2`` (classifier) → ``cls``.

Settings from the tensors (§4.3): c_dim = main.0.weight[1] − 3, conv_dim = main.0.weight[0], repeat_num =
the number of ``main.k.main`` blocks, the head's output channels (4: Scheme I attention, 3: StarGAN); D:
d_conv_dim = main.0.weight[0], d_repeat_num = its number of convs in ``main``, image_size =
conv2.weight[-1] · 2^d_repeat_num. Domain names: ``--domains a,b,c`` (default domain0, domain1, …).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import torch

from . import ImportMismatch, Row, convert, load_official, write_run
from .attentiongan import _count, _ours, _rows, _shape, identify
from ..models.multidomain import split_names

AFFINE = ("weight", "bias")
RUNNING = ("running_mean", "running_var", "num_batches_tracked")  # unused by the official test: dropped


def generator_pairs(n_blocks: int) -> List[tuple]:
    """(our module, their module, is a norm) for the generator, in the official order."""
    pairs = [("encoder.stem", "main.0", "main.1"), ("encoder.down1", "main.3", "main.4"),
             ("encoder.down2", "main.6", "main.7")]
    out = []
    for ours, conv, norm in pairs:
        out += [(f"{ours}.conv", conv, False), (f"{ours}.norm", norm, True)]
    for i in range(n_blocks):
        ours, theirs = f"encoder.blocks.{i}", f"main.{9 + i}.main"
        out += [(f"{ours}.conv1", f"{theirs}.0", False), (f"{ours}.norm1", f"{theirs}.1", True),
                (f"{ours}.conv2", f"{theirs}.3", False), (f"{ours}.norm2", f"{theirs}.4", True)]
    r = n_blocks
    out += [("decoder.up1.conv", f"main.{9 + r}", False), ("decoder.up1.norm", f"main.{10 + r}", True),
            ("decoder.up2.conv", f"main.{12 + r}", False), ("decoder.up2.norm", f"main.{13 + r}", True),
            ("head", f"main.{15 + r}", False)]
    return out


def generator_rows(n_blocks: int, prefix: str) -> List[Row]:
    return _rows(prefix, [(ours, theirs, AFFINE if norm else ("weight",))
                          for ours, theirs, norm in generator_pairs(n_blocks)])


def ignored_generator_keys(n_blocks: int) -> List[str]:
    return [f"{theirs}.{b}" for _, theirs, norm in generator_pairs(n_blocks) if norm for b in RUNNING]


def discriminator_rows(n_layers: int, prefix: str) -> List[Row]:
    pairs = [(f"main.{2 * i}", f"main.{2 * i}", ("weight", "bias")) for i in range(n_layers)]
    pairs += [("src", "conv1", ("weight",)), ("cls", "conv2", ("weight",))]
    return _rows(prefix, pairs)


def infer_generator(state: Mapping[str, torch.Tensor], source: str) -> Dict[str, object]:
    ngf, in_ch = _shape(state, "main.0.weight", source)[:2]
    n_blocks = _count(state, r"main\.(\d+)\.main\.")
    head = f"main.{15 + n_blocks}.weight"
    out_ch = _shape(state, head, source)[0]
    if out_ch not in (3, 4) or in_ch < 4:
        raise ImportMismatch(f"{source}: {head} has {out_ch} output channels and main.0.weight {in_ch} inputs; "
                             f"expected 4 (attention) or 3 (StarGAN) outputs and 3 + c_dim inputs")
    return {"name": "attentiongan-multi" if out_ch == 4 else "stargan", "c_dim": in_ch - 3, "ngf": ngf,
            "n_blocks": n_blocks, "attention": "scheme1" if out_ch == 4 else "none"}


def infer_discriminator(state: Mapping[str, torch.Tensor], source: str) -> Dict[str, object]:
    n_layers = len({m.group(1) for k in state if (m := re.fullmatch(r"main\.(\d+)\.weight", k))})
    c_dim, _, k, _ = _shape(state, "conv2.weight", source)
    return {"ndf": _shape(state, "main.0.weight", source)[0], "n_layers_d": n_layers,
            "image_size": k * 2 ** n_layers, "d_c_dim": c_dim}


def _import(inputs: Sequence[Path], out: Path, expected: str, domains: Optional[str]) -> Path:
    found = identify(inputs, {"G": "G.ckpt", "D": "D.ckpt"}, required=["G"])
    theirs = {role: load_official(path) for role, path in found.items()}
    model = infer_generator(theirs["G"], str(found["G"]))
    if model["name"] != expected:
        raise ImportMismatch(f"{found['G']}: a {model['name']} generator (head with "
                             f"{4 if model['name'] != 'stargan' else 3} channels); use --format {model['name']}")
    if "D" in theirs:
        d = infer_discriminator(theirs["D"], str(found["D"]))
        if d.pop("d_c_dim") != model["c_dim"]:
            raise ImportMismatch(f"{found['D']}: its classifier (conv2) has a different number of domains "
                                 f"than {found['G']} (c_dim {model['c_dim']})")
        model.update(d)
    names = split_names(domains)
    if names and len(names) != model["c_dim"]:
        raise ImportMismatch(f"--domains names {len(names)} domains, "
                             f"the checkpoint has c_dim = {model['c_dim']}")
    model["domains"] = ",".join(names or [f"domain{i}" for i in range(int(model["c_dim"]))])
    model["image_size"] = size = int(model.get("image_size", 128))  # from the D's classifier; official default 128
    ours_all = _ours(model)
    n_blocks = int(model["n_blocks"])
    jobs = [("G", "generators.multi", generator_rows(n_blocks, "generators.multi"),
             ignored_generator_keys(n_blocks))]
    if "D" in theirs:
        rows = discriminator_rows(int(model["n_layers_d"]), "discriminators.multi")
        jobs.append(("D", "discriminators.multi", rows, []))
    state: Dict[str, torch.Tensor] = {}
    for role, prefix, rows, ignored in jobs:
        ours = {k: v for k, v in ours_all.items() if k.startswith(prefix + ".")}
        state.update(convert(theirs[role], rows, ours, str(found[role]), optional_theirs=ignored))
    return write_run(out, model, state, partial=() if "D" in theirs else ("discriminators",),
                     overrides=[f"data.load_size={size}", f"data.crop_size={size}"])


def import_attentiongan_multi(inputs: Sequence[Path], out: Path, domains: Optional[str] = None) -> Path:
    """``AttentionGAN-v1-multi``: ``<iter>-G.ckpt`` [, ``<iter>-D.ckpt``] (Scheme I head, 4 channels)."""
    return _import(inputs, out, "attentiongan-multi", domains)


def import_stargan(inputs: Sequence[Path], out: Path, domains: Optional[str] = None) -> Path:
    """The original StarGAN: ``<iter>-G.ckpt`` [, ``<iter>-D.ckpt``] (tanh head, 3 channels)."""
    return _import(inputs, out, "stargan", domains)
