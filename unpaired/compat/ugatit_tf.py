"""Importer for the official U-GAT-IT TensorFlow checkpoints (taki0112/UGATIT ``UGATIT.save``): the only
released U-GAT-IT weights (selfie2anime), full or light, read without TensorFlow (``tf_bundle.py``).

``unpaired import --format ugatit-tf --input CHECKPOINT_DIR --out RUN``: CHECKPOINT_DIR is the folder holding
``checkpoint``, ``UGATIT[_light].model-N.index`` and ``.data-*`` (the ``.index`` path works too). The run
uses ``model.variant: tf`` (``models/ugatit.py``: the TF code's biases, affine encoder norms, shared CAM
classifier, biased variances, size-keeping stride-1 padding in D), and the importer converts the rest:

* scopes: ``generator_B`` (A→B) → ``generators.AtoB``, ``generator_A`` → ``generators.BtoA``;
  ``discriminator_A/{global,local}`` (judges A) → ``discriminators.A.{global,local}``, likewise B;
* layouts: conv kernels HWIO → OIHW (``permute(3, 2, 0, 1)``), dense kernels [in, out] → [out, in]; the
  full model's ``MLP/linear_0`` rows are in NHWC flattening order (h, w, c) and are reordered to (c, h, w);
  norm vectors [C] → (1, C, 1, 1) where ours are;
* AdaLIN rho: with ``smoothing`` (the official default, ``_smoothing`` at the end of the model folder's name)
  the TF graph uses clip(rho − 0.1, 0, 1): that value is stored. ``--tf-smoothing off`` keeps rho as stored
  (code without smoothing, or official code before 2019-08-14, which stored the effective rho);
* spectral norm: TF runs one power iteration from the stored ``u`` at every forward; ours iterates only in
  training mode, so the iteration is done once here: ``weight_v`` = normalise(Wᵀu), ``weight_u`` =
  normalise(W·weight_v). Eval-mode outputs then equal the official first forward after restoring;
* skipped by rule: optimizer state (``…/Adam``, ``…/Adam_1``, ``beta1_power*``, ``beta2_power*``). Every
  other variable is used exactly once; an unknown one is refused with its name.

Settings come from the tensors: ngf, n_blocks, light (``MLP/linear_0`` takes 4·ngf inputs) or img_size, ndf,
the two discriminator depths (official n_dis → global n_dis + 1, local n_dis − 1). The step is the counter of
the file name minus one.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F

from . import ImportMismatch, Row, convert, prefixed, write_run
from .tf_bundle import TFBundleError, TFCheckpoint

SCOPES = {  # official scope -> our state-dict prefix
    "generator_B": "generators.AtoB",
    "generator_A": "generators.BtoA",
    "discriminator_A/global": "discriminators.A.global",
    "discriminator_A/local": "discriminators.A.local",
    "discriminator_B/global": "discriminators.B.global",
    "discriminator_B/local": "discriminators.B.local",
}
OPTIMIZER = re.compile(r"^(.*/Adam(_1)?|beta[12]_power(_\d+)?)$")


def conv(k: torch.Tensor) -> torch.Tensor:
    return k.permute(3, 2, 0, 1)


def dense(k: torch.Tensor) -> torch.Tensor:
    return k.t()


def as_map(v: torch.Tensor) -> torch.Tensor:
    return v.reshape(1, -1, 1, 1)


def flat(v: torch.Tensor) -> torch.Tensor:
    return v.reshape(-1)


def nhwc_dense(side: int, channels: int):
    """``MLP/linear_0`` of the full model: rows (h, w, c) -> (c, h, w), then transpose."""
    def transform(k: torch.Tensor) -> torch.Tensor:
        out = k.shape[1]
        return k.reshape(side, side, channels, out).permute(2, 0, 1, 3).reshape(-1, out).t()
    return transform


def smoothed(shift: float):
    def transform(rho: torch.Tensor) -> torch.Tensor:
        return (rho - shift).clamp(0.0, 1.0).reshape(1, -1, 1, 1)
    return transform


# ----------------------------------------------------------------------------------------------------------
# key tables (ours <- theirs, relative to a scope)


def generator_table(n_blocks: int, mlp_input, rho) -> List[Row]:
    rows: List[Row] = []

    def conv_rows(ours: str, theirs: str) -> None:
        rows.extend([(f"{ours}.weight", f"{theirs}/kernel", conv), (f"{ours}.bias", f"{theirs}/bias", None)])

    def norm_rows(ours: str, theirs: str) -> None:  # affine instance norm
        rows.extend([(f"{ours}.weight", f"{theirs}/gamma", None), (f"{ours}.bias", f"{theirs}/beta", None)])

    for ours, conv_scope, norm_scope in (("stem", "conv", "ins_norm"), ("down1", "conv_0", "ins_norm_0"),
                                         ("down2", "conv_1", "ins_norm_1")):
        conv_rows(f"encoder.{ours}.conv", f"{conv_scope}/conv2d")
        norm_rows(f"encoder.{ours}.norm", norm_scope)
    for i in range(n_blocks):
        for j in (1, 2):
            conv_rows(f"encoder.blocks.{i}.conv{j}", f"resblock_{i}/res{j}/conv_0/conv2d")
            norm_rows(f"encoder.blocks.{i}.norm{j}", f"resblock_{i}/res{j}/instance_norm")
    rows += [("cam.fc.weight", "CAM_logit/kernel", dense), ("cam.fc.bias", "CAM_logit/bias", None)]
    conv_rows("cam.conv1x1", "conv_1x1/conv2d")
    for ours, theirs in (("fc.0", "linear_0"), ("fc.2", "linear_1"), ("gamma", "gamma"), ("beta", "beta")):
        rows += [(f"mlp.{ours}.weight", f"MLP/{theirs}/dense/kernel", mlp_input if ours == "fc.0" else dense),
                 (f"mlp.{ours}.bias", f"MLP/{theirs}/dense/bias", None)]
    for k in range(n_blocks):
        for j in (1, 2):
            conv_rows(f"decoder.{k}.conv{j}", f"adaptive_resblock{k}/res{j}/conv_0/conv2d")
            rows.append((f"decoder.{k}.norm{j}.rho", f"adaptive_resblock{k}/res{j}/instance_layer_norm/rho", rho))
    for u in (0, 1):
        conv_rows(f"upsample.up{u + 1}.conv", f"up_conv_{u}/conv2d")
        rows += [(f"upsample.up{u + 1}.norm.{p}", f"layer_ins_norm_{u}/{p}", as_map) for p in ("rho", "gamma", "beta")]
    conv_rows("upsample.head", "G_logit/conv2d")
    return rows


def sn_rows(ours: str, theirs: str, transform) -> List[Row]:
    """A spectral-normed TF layer (kernel, bias, u); ``weight_v`` is derived (``power_iteration``)."""
    return [(f"{ours}.weight_orig", f"{theirs}/kernel", transform), (f"{ours}.bias", f"{theirs}/bias", None),
            (f"{ours}.weight_u", f"{theirs}/u", flat)]


def discriminator_table(n_layers: int) -> List[Row]:
    """One TF part (``global`` or ``local``): conv_0 … conv_{n_layers-3}, conv_last, CAM_logit, conv_1x1, D_logit."""
    rows: List[Row] = []
    for i in range(n_layers - 1):
        rows += sn_rows(f"features.{i}.conv", f"conv_{i}" if i < n_layers - 2 else "conv_last", conv)
    rows += sn_rows("cam.fc", "CAM_logit", dense)
    rows += [("cam.conv1x1.weight", "conv_1x1/conv2d/kernel", conv), ("cam.conv1x1.bias", "conv_1x1/conv2d/bias", None)]
    rows += sn_rows("head", "D_logit", conv)
    return rows


@torch.no_grad()
def power_iteration(state: Dict[str, torch.Tensor]) -> None:
    """For every ``X.weight_u`` (TF's stored u): ``X.weight_v`` = normalise(Wᵀu), ``X.weight_u`` = normalise(W v)
    with W = ``X.weight_orig`` as (out, -1), the iteration TF runs at each forward (l2-normalise, eps 1e-12)."""
    for key in [k for k in state if k.endswith(".weight_u")]:
        layer = key[:-len(".weight_u")]
        w = state[f"{layer}.weight_orig"].flatten(1)
        v = F.normalize(torch.mv(w.t(), state[key]), dim=0, eps=1e-12)
        state[key] = F.normalize(torch.mv(w, v), dim=0, eps=1e-12)
        state[f"{layer}.weight_v"] = v


# ----------------------------------------------------------------------------------------------------------
# settings, files


def _shape(variables: Mapping[str, tuple], name: str, source: str) -> tuple:
    if name not in variables:
        raise ImportMismatch(f"{source}: missing variable {name!r}: not an official U-GAT-IT TensorFlow checkpoint?")
    return variables[name]


def _count(variables: Mapping[str, tuple], pattern: str) -> int:
    return len({m.group(1) for k in variables if (m := re.match(pattern, k))})


def infer_settings(variables: Mapping[str, tuple], source: str) -> Dict[str, object]:
    """-> the ``model`` section (name and arguments) read off the variable shapes."""
    ngf = _shape(variables, "generator_B/conv/conv2d/kernel", source)[3]
    n_blocks = _count(variables, r"generator_B/resblock_(\d+)/")
    fc_in = _shape(variables, "generator_B/MLP/linear_0/dense/kernel", source)[0]
    dim = 4 * ngf
    model: Dict[str, object] = {"name": "ugatit-light", "ngf": ngf, "n_blocks": n_blocks}
    if fc_in != dim:
        side = math.isqrt(fc_in // dim)
        if side * side * dim != fc_in:
            raise ImportMismatch(f"{source}: generator_B/MLP/linear_0/dense/kernel has {fc_in} inputs, neither "
                                 f"4·ch = {dim} (light) nor 4·ch·(img_size/4)² (full)")
        model.update(name="ugatit", img_size=4 * side)
    model["ndf"] = _shape(variables, "discriminator_A/global/conv_0/kernel", source)[3]
    for part in ("global", "local"):  # conv_0 … conv_k + conv_last feature convs; n_layers = convs + 1
        model[f"n_layers_{part}"] = _count(variables, rf"discriminator_A/{part}/conv_(\d+)/kernel") + 2
    model["variant"] = "tf"
    return model


def _smoothing(ckpt: TFCheckpoint, option: str) -> bool:
    if option in ("on", "off"):
        return option == "on"
    if option != "auto":
        raise ImportMismatch(f"--tf-smoothing: expected auto, on or off, got {option!r}")
    folder = ckpt.prefix.parent.name
    if re.search(r"_\d+resblock_\d+dis_", folder):  # the official model_dir: ..._sn_smoothing or without
        return folder.endswith("_smoothing")
    print(f"note: {folder!r} is not an official model folder name; assuming --smoothing True (the official "
          f"default): rho_eff = clip(rho - 0.1, 0, 1). Pass --tf-smoothing off if it was trained without.")
    return True


def step_from_prefix(prefix: Path) -> int:
    """``UGATIT.model-1001`` -> 1000 (the official counter starts at 1 and is incremented before saving)."""
    m = re.search(r"-(\d+)$", prefix.name)
    return max(int(m.group(1)) - 1, 0) if m else 0


def read_model_variables(ckpt: TFCheckpoint, source: str) -> Dict[str, torch.Tensor]:
    """Every model variable (optimizer state skipped by rule), as tensors; an unknown variable is an error."""
    names = [n for n in ckpt.names() if not OPTIMIZER.match(n)]
    for name in names:
        if not any(name.startswith(scope + "/") for scope in SCOPES):
            raise ImportMismatch(f"{source}: unknown variable {name!r} (neither a U-GAT-IT network's nor "
                                 f"optimizer state)")
        if name.startswith(("generator_A/CAM_logit/dense/", "generator_B/CAM_logit/dense/")):
            raise ImportMismatch(f"{source}: variable {name!r} comes from official code before 2019-08-20 "
                                 f"(separate CAM logit layer), which this importer does not support")
    return {name: torch.from_numpy(ckpt.read(name)) for name in names}


def import_ugatit_tf(inputs: Sequence[Path], out: Path, tf_smoothing: Optional[str] = None) -> Path:
    """``unpaired import --format ugatit-tf --input CHECKPOINT_DIR --out RUN`` (or the ``.index`` path)."""
    from ..config import LossWeights
    from ..models import get_model

    if len(inputs) != 1:
        raise ImportMismatch(f"ugatit-tf: expected one checkpoint folder or .index file, got {len(inputs)}")
    try:
        ckpt = TFCheckpoint(Path(inputs[0]))
        source = str(ckpt.prefix)
        theirs = read_model_variables(ckpt, source)
    except TFBundleError as e:
        raise ImportMismatch(str(e)) from e
    model = infer_settings({k: tuple(v.shape) for k, v in theirs.items()}, source)
    shift = 0.1 if _smoothing(ckpt, tf_smoothing or "auto") else 0.0
    spec = get_model(str(model["name"]))
    args = spec.args(**{k: v for k, v in model.items() if k != "name"})
    with torch.device("meta"):  # shapes only
        ours_all = spec.build(args, LossWeights()).state_dict()
    dim = 4 * args.ngf
    mlp_input = dense if args.img_size is None else nhwc_dense(args.img_size // 4, dim)
    state: Dict[str, torch.Tensor] = {}
    for scope, prefix in SCOPES.items():
        if scope.startswith("generator"):
            table = generator_table(args.n_blocks, mlp_input, smoothed(shift))
        else:
            table = discriminator_table(args.n_layers_global if scope.endswith("global") else args.n_layers_local)
        mine = {k[len(prefix) + 1:]: v for k, v in ours_all.items()
                if k.startswith(prefix + ".") and not k.endswith(".weight_v")}
        scoped = {k: v for k, v in theirs.items() if k.startswith(scope + "/")}
        converted = convert(scoped, [(o, f"{scope}/{t}", f) for o, t, f in table], mine, source)
        power_iteration(converted)
        state.update(prefixed(prefix, converted))
    step = step_from_prefix(ckpt.prefix)
    overrides = [f"train.steps={max(1_000_000, step)}"]  # official --iteration default
    if args.img_size is not None:  # full: the network's size is the crop size
        overrides += [f"data.crop_size={args.img_size}", f"data.load_size={args.img_size + 30}"]
    run = write_run(out, model, state, step=step, overrides=overrides)
    note = {"format": "ugatit-tf", "checkpoint": source, "smoothing": bool(shift), "rho": "clip(rho - 0.1, 0, 1)"
            if shift else "as stored", "skipped_optimizer_variables": len(ckpt.names()) - len(theirs)}
    (Path(out) / "import.json").write_text(json.dumps(note, indent=2) + "\n")
    print(f"generator_B -> AtoB, generator_A -> BtoA; AdaLIN rho {note['rho']}; "
          f"{note['skipped_optimizer_variables']} optimizer variables skipped")
    return run
