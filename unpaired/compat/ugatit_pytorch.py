"""Importer for the official U-GAT-IT PyTorch checkpoint (znxlwm/UGATIT-pytorch ``UGATIT.save``).

The file ``<dataset>_params_<step:07d>.pt`` (or ``<dataset>_params_latest.pt``) is one ``torch.save`` dict
``{genA2B, genB2A, disGA, disGB, disLA, disLB}`` of state dicts; spectral-norm layers store
``weight_orig``, ``weight_u``, ``weight_v``. The settings are read off the tensors (models.md §5.6):

* ngf = ``DownBlock.1.weight``.shape[0]; n_blocks = number of ``UpBlock1_*`` blocks;
* light ⇔ ``FC.0.weight``.shape[1] == 4·ngf; otherwise img_size = 4·√(shape[1] / 4ngf);
* ndf = ``model.1.weight_orig``.shape[0]; n_layers = number of convs under ``model.`` + 1, separately
  for the global and the local discriminators (the official code hard-codes 7 and 5, but checkpoints
  of modified code exist, e.g. 6-layer global Ds below 96 px).

Official network → ours: genA2B → ``generators.AtoB``, genB2A → ``generators.BtoA``, disGA / disLA →
``discriminators.A.global`` / ``.local``, disGB / disLB → ``discriminators.B.global`` / ``.local``.
Light checkpoints do not record the image size: the run keeps the default data sizes (256/286).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Dict, List, Mapping, Sequence, Tuple

import torch

from . import ImportMismatch, convert, load_official, prefixed, write_run

NETWORKS = {  # official name -> our state-dict prefix
    "genA2B": "generators.AtoB",
    "genB2A": "generators.BtoA",
    "disGA": "discriminators.A.global",
    "disLA": "discriminators.A.local",
    "disGB": "discriminators.B.global",
    "disLB": "discriminators.B.local",
}
SN = ("weight_orig", "weight_u", "weight_v")
Row = Tuple[str, str, None]


def generator_table(n_blocks: int) -> List[Row]:
    rows = [("encoder.stem.conv.weight", "DownBlock.1.weight"),
            ("encoder.down1.conv.weight", "DownBlock.5.weight"),
            ("encoder.down2.conv.weight", "DownBlock.9.weight")]
    for i in range(n_blocks):
        rows += [(f"encoder.blocks.{i}.conv1.weight", f"DownBlock.{12 + i}.conv_block.1.weight"),
                 (f"encoder.blocks.{i}.conv2.weight", f"DownBlock.{12 + i}.conv_block.5.weight")]
    rows += [("cam.gap_fc.weight", "gap_fc.weight"), ("cam.gmp_fc.weight", "gmp_fc.weight"),
             ("cam.conv1x1.weight", "conv1x1.weight"), ("cam.conv1x1.bias", "conv1x1.bias"),
             ("mlp.fc.0.weight", "FC.0.weight"), ("mlp.fc.2.weight", "FC.2.weight"),
             ("mlp.gamma.weight", "gamma.weight"), ("mlp.beta.weight", "beta.weight")]
    for k in range(n_blocks):
        for part in ("conv1.weight", "norm1.rho", "conv2.weight", "norm2.rho"):
            rows.append((f"decoder.{k}.{part}", f"UpBlock1_{k + 1}.{part}"))
    for ours, conv, norm in (("up1", 2, 3), ("up2", 7, 8)):
        rows.append((f"upsample.{ours}.conv.weight", f"UpBlock2.{conv}.weight"))
        rows += [(f"upsample.{ours}.norm.{p}", f"UpBlock2.{norm}.{p}") for p in ("rho", "gamma", "beta")]
    rows.append(("upsample.head.weight", "UpBlock2.11.weight"))
    return [(o, t, None) for o, t in rows]


def discriminator_table(n_layers: int) -> List[Row]:
    rows = []
    for i in range(n_layers - 1):  # official Sequential: pad, conv, act → convs at 1, 4, 7, ...
        rows += [(f"features.{i}.conv.{p}", f"model.{3 * i + 1}.{p}") for p in ("bias",) + SN]
    for fc in ("gap_fc", "gmp_fc"):
        rows += [(f"cam.{fc}.{p}", f"{fc}.{p}") for p in SN]
    rows += [("cam.conv1x1.weight", "conv1x1.weight"), ("cam.conv1x1.bias", "conv1x1.bias")]
    rows += [(f"head.{p}", f"conv.{p}") for p in SN]
    return [(o, t, None) for o, t in rows]


def _get(state: Mapping[str, torch.Tensor], key: str, source: str) -> torch.Tensor:
    if key not in state:
        raise ImportMismatch(f"{source}: missing official key {key!r} (needed to infer the model settings)")
    return state[key]


def _count_convs(state: Mapping[str, torch.Tensor]) -> int:
    return len({k.split(".")[1] for k in state if re.fullmatch(r"model\.\d+\.weight_orig", k)})


def infer_settings(params: Mapping[str, Mapping[str, torch.Tensor]],
                   source: str) -> Tuple[str, Dict[str, int]]:
    """-> (model name, model arguments) read off the official tensors."""
    gen, d_global, d_local = params["genA2B"], params["disGA"], params["disLA"]
    ngf = _get(gen, "DownBlock.1.weight", f"{source}:genA2B").shape[0]
    n_blocks = len({k.split(".")[0] for k in gen if k.startswith("UpBlock1_")})
    fc_in = _get(gen, "FC.0.weight", f"{source}:genA2B").shape[1]
    dim = 4 * ngf
    args = {"ngf": ngf, "n_blocks": n_blocks}
    if fc_in == dim:
        name = "ugatit-light"
    else:
        side = math.isqrt(fc_in // dim)
        if side * side * dim != fc_in:
            raise ImportMismatch(f"{source}:genA2B: official key 'FC.0.weight' has {fc_in} inputs, neither "
                                 f"4·ngf = {dim} (light) nor 4·ngf·(img_size/4)² (full)")
        name, args["img_size"] = "ugatit", 4 * side
    args["ndf"] = _get(d_global, "model.1.weight_orig", f"{source}:disGA").shape[0]
    args["n_layers_global"] = _count_convs(d_global) + 1
    args["n_layers_local"] = _count_convs(d_local) + 1
    return name, args


def step_from_name(path: Path) -> int:
    """``horse2zebra_params_0100000.pt`` -> 100000; ``..._params_latest.pt`` (no step recorded) -> 0."""
    m = re.search(r"_params_(\d+)\.pt$", Path(path).name)
    return int(m.group(1)) if m else 0


def convert_params(params: Mapping[str, Mapping[str, torch.Tensor]], name: str, args: Dict[str, int],
                   source: str) -> Dict[str, torch.Tensor]:
    """The official six state dicts -> our method's state dict (every key and shape checked)."""
    from ..config import LossWeights
    from ..models import get_model

    spec = get_model(name)
    with torch.device("meta"):  # shapes only, no memory (the full G alone has 268M parameters at 256 px)
        ours = spec.build(spec.args(**args), LossWeights()).state_dict()
    state: Dict[str, torch.Tensor] = {}
    for official, prefix in NETWORKS.items():
        if official.startswith("gen"):
            table = generator_table(args["n_blocks"])
        else:
            table = discriminator_table(args["n_layers_global" if official[3] == "G" else "n_layers_local"])
        mine = {k[len(prefix) + 1:]: v for k, v in ours.items() if k.startswith(prefix + ".")}
        state.update(prefixed(prefix, convert(params[official], table, mine, f"{source}:{official}")))
    return state


def import_ugatit_pytorch(inputs: Sequence[Path], out: Path) -> Path:
    """``unpaired import --format ugatit-pytorch --input X_params_0100000.pt --out RUN``."""
    if len(inputs) != 1:
        raise ImportMismatch(f"ugatit-pytorch: expected one <dataset>_params_<step>.pt file, "
                             f"got {len(inputs)}")
    path = Path(inputs[0])
    params = load_official(path)
    for key in params:
        if key not in NETWORKS:
            raise ImportMismatch(f"{path}: unexpected entry {key!r}; an official U-GAT-IT file holds "
                                 f"{', '.join(NETWORKS)}")
    for key in NETWORKS:
        if key not in params:
            raise ImportMismatch(f"{path}: missing entry {key!r}; an official U-GAT-IT file holds "
                                 f"{', '.join(NETWORKS)}")
    name, args = infer_settings(params, str(path))
    state = convert_params(params, name, args, str(path))
    step = step_from_name(path)
    overrides = [f"train.steps={max(1_000_000, step)}"]  # official --iteration default
    if "img_size" in args:  # full: the network's size is the crop size; official Resize((S+30, S+30))
        overrides += [f"data.crop_size={args['img_size']}", f"data.load_size={args['img_size'] + 30}"]
    return write_run(out, {"name": name, **args}, state, step=step, overrides=overrides)
