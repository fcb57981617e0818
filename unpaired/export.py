"""Export a generator to ONNX or TorchScript and check the exported file against PyTorch.

``unpaired export --checkpoint RUN --format onnx --output g.onnx`` writes ``g.onnx`` and ``g.onnx.json``.

The exported graph takes one input and returns a tuple of the ``GeneratorOutput`` fields the model fills,
in this order (fields that are None for the model are left out):

============  =====================  =============================================================
name          shape                  meaning
============  =====================  =============================================================
``input``     N×3×H×W float32        RGB images in [-1, 1]: ``x / 127.5 - 1`` for 8-bit pixels x
``image``     N×3×H×W float32        the translation in [-1, 1]: pixels = ``(y + 1) * 127.5``
``attention`` N×K×H×W float32        AttentionGAN masks in [0, 1] (Scheme II: sum to 1 over K, the
                                     last is the background mask); Scheme I: K = 1, the foreground
``heatmap``   N×1×h×w float32        U-GAT-IT's channel-summed CAM map (unnormalised, h = H/4)
============  =====================  =============================================================

Multi-domain generators (``c_dim`` > 0) take the target too: by default as a second input ``label``
(N×c_dim float32, one-hot over exclusive domains or multi-hot over attributes, in the order the JSON's
``domains`` lists); with a fixed target (``--target-domain NAME``) the label is built into the graph, which
then has the one ``input`` like a two-domain generator.

``content`` and ``cam_logit`` are training-time outputs and are not exported. Batch is always dynamic;
H and W are dynamic unless the generator is tied to one size (its model card's ``input_size.fixed``, U-GAT-IT
full); then the input must be fixed_size × fixed_size. Otherwise H and W must be multiples of ``size_multiple``
(``Translator`` pads to it). The JSON beside the file says which, and embeds the model card (``card``).

ONNX goes through the TorchScript-based ``torch.onnx.export(dynamo=False)``: it needs no onnxscript and
exports these convolutional generators (reflection padding, instance norm, dynamic H/W) reliably on
torch 2.x. The check runs the file (onnxruntime / ``torch.jit.load``) and PyTorch on the same random
inputs at two sizes (two batch sizes for fixed-size models) and fails above the tolerance: the
difference is absolute for image and attention (both in [-1, 1] / [0, 1]); the unbounded heatmap's is
divided by max(1, max |heatmap|).

``OnnxGenerator`` (in ``exported.py``) wraps an exported ONNX file as a generator returning ``GeneratorOutput``, so
``Translator.load("g.onnx")`` translates with onnxruntime.
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor, nn

from .exported import OnnxGenerator, description_path, load_onnx_generator, onnx_session, read_export_info  # noqa: F401
from .models.base import GeneratorOutput
from .runfolder import ModelCard, atomic_write_text

__all__ = ["EXPORTED_FIELDS", "FORMATS", "ExportCheckError", "ExportWrapper", "OnnxGenerator",
           "export_generator", "load_onnx_generator"]

FORMATS = ("onnx", "torchscript")
#: GeneratorOutput fields an exported graph may return, in this order
EXPORTED_FIELDS = ("image", "attention", "heatmap")
INPUT_MEANING = "RGB images, NCHW float32 in [-1, 1]: x / 127.5 - 1 for 8-bit pixel values x"
LABEL_MEANING = ("the target: one-hot over exclusive domains, or multi-hot over attributes (1 = has it), "
                 "in the order of 'domains'")
OUTPUT_MEANINGS = {
    "image": "translated RGB images in [-1, 1]; 8-bit pixels = (y + 1) * 127.5",
    "attention": "attention masks in [0, 1]; K > 1: they sum to 1 over K and the last is the background "
                 "mask (keeps the input); K = 1: the foreground mask",
    "heatmap": "U-GAT-IT CAM heatmap (channel sum of the attended features), unnormalised; min-max scale "
               "and resize it to the image to display it",
}
OUTPUT_RANGES = {"image": [-1.0, 1.0], "attention": [0.0, 1.0], "heatmap": None}


class ExportCheckError(RuntimeError):
    """The exported file disagrees with PyTorch beyond the tolerance; ``report`` holds the numbers."""

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report


class ExportWrapper(nn.Module):
    """Returns the non-None ``GeneratorOutput`` fields as a tuple (``fields``, in ``EXPORTED_FIELDS`` order).
    ``target``: a 1×c_dim label built into the graph (a multi-domain generator with a fixed target)."""

    def __init__(self, generator: nn.Module, fields: Sequence[str], target: Optional[Tensor] = None):
        super().__init__()
        self.generator, self.fields = generator, tuple(fields)
        self.register_buffer("target", None if target is None else target.float().reshape(1, -1))

    def forward(self, x: Tensor, *label: Tensor) -> Tuple[Tensor, ...]:
        if self.target is not None:
            label = (self.target * torch.ones_like(x[:, :1, 0, 0]),)  # N×c_dim, traced with a dynamic N
        out = self.generator(x, *label)
        return tuple(getattr(out, name) for name in self.fields)


# ----------------------------------------------------------------------------------------------------------
# export + check


def export_generator(generator: nn.Module, fmt: str, output: Union[str, Path], example_size: int,
                     opset: int = 17, tolerance: float = 1e-4, meta: Union[ModelCard, dict, None] = None,
                     target: Optional[Tensor] = None, source: Optional[dict] = None) -> dict:
    """Export ``generator`` to ``output`` (``fmt`` "onnx" or "torchscript"), check it against PyTorch, write
    ``<output>.json``; returns that description (with the check's numbers under ``"check"``).

    ``example_size``: the side of the tracing input, rounded up to the size multiple (ignored for
    fixed-size generators). ``meta``: the generator's ``ModelCard`` (or a dict with model, args, direction):
    its input size rule decides the shapes; it is embedded in the JSON. ``source``: more to note there.
    ``target``: for a multi-domain generator, the 1×c_dim label to build in (default: a ``label`` input).
    Raises ``ExportCheckError`` above ``tolerance``: then ``output`` does not exist and the rejected
    file is kept as ``<output>.failed`` for inspection.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if meta is None:
        raise ValueError("export_generator needs the generator's model card (meta=): it says which sizes it takes")
    card = meta if isinstance(meta, ModelCard) else ModelCard.from_dict(meta)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    # a copy: the caller's module keeps its device, dtype and requires_grad; the saved graph needs no grad
    generator = copy.deepcopy(generator).float().cpu().eval().requires_grad_(False)
    fixed, multiple = card.input_size.fixed, card.input_size.multiple
    side = fixed or -(-int(example_size) // multiple) * multiple
    c_dim = len(card.domains or ()) if target is None else 0  # > 0: a 'label' input
    example = (_random_images((1, 3, side, side), seed=0), *_random_labels(1, c_dim, seed=0))
    with torch.no_grad():
        probe = generator(*example) if target is None else generator(example[0], target.float().reshape(1, -1))
    fields = [name for name in EXPORTED_FIELDS if getattr(probe, name) is not None]
    wrapper = ExportWrapper(generator, fields, target).eval()

    tmp = output.with_name(f".{output.name}.tmp")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecation / tracer notes; the numerical check is the judge
            if fmt == "onnx":
                _export_onnx(wrapper, example, tmp, fields, dynamic_hw=fixed is None, opset=opset)
            else:
                _export_torchscript(wrapper, example, tmp)
        # two sizes (batch 1 and 2) where H and W are free; batch 1 and 2 at the one size otherwise
        second = (side, side) if fixed else (side + multiple, side + 2 * multiple)
        shapes = [(1, 3, side, side), (2, 3, *second)]
        try:
            check = check_exported(fmt, tmp, wrapper, fields, shapes, tolerance, c_dim)
        except ExportCheckError as e:  # wrong output shapes
            _reject(tmp, output)
            raise ExportCheckError(f"{e}; rejected file kept as {output.name}.failed", e.report) from None
        info = describe(fmt, output, card, probe, fields, example_size=side, opset=opset, source=source,
                        c_dim=c_dim)
        info["check"] = check
        if not check["passed"]:
            failed = _reject(tmp, output)
            raise ExportCheckError(f"{fmt} export of {output.name} differs from PyTorch by {check['max_diff']:.3g} "
                                   f"> tolerance {tolerance:g} ({_diff_text(check)}); rejected file kept as "
                                   f"{failed}", info)
        if fmt == "onnx":
            _embed_onnx_metadata(tmp, info)
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)  # an exporter error leaves no half-written file behind
    atomic_write_text(description_path(output), json.dumps(info, indent=2) + "\n")
    return info


def _reject(tmp: Path, output: Path) -> Path:
    """Keep a rejected export as ``<output>.failed``; remove ``output`` and its JSON (they would mislead)."""
    failed = output.with_name(output.name + ".failed")
    os.replace(tmp, failed)
    for stale in (output, description_path(output)):
        stale.unlink(missing_ok=True)
    return failed


def _random_images(shape, seed: int) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g) * 2 - 1


def _random_labels(n: int, c_dim: int, seed: int) -> Tuple[Tensor, ...]:
    """() without a label input, else (N×c_dim one-hot labels of random domains,)."""
    if not c_dim:
        return ()
    g = torch.Generator().manual_seed(1000 + seed)
    return (nn.functional.one_hot(torch.randint(c_dim, (n,), generator=g), c_dim).float(),)


def _input_names(example) -> List[str]:
    return ["input", "label"][:len(example)]


def _export_onnx(wrapper: ExportWrapper, example: Tuple[Tensor, ...], path: Path, fields, dynamic_hw: bool,
                 opset: int):
    axes = {name: {0: "batch"} for name in _input_names(example)}
    for name in fields:
        axes[name] = {0: "batch"}
    if dynamic_hw:
        for name in ("input", "image", "attention"):
            if name in axes:
                axes[name].update({2: "height", 3: "width"})
        if "heatmap" in axes:
            axes["heatmap"].update({2: "heatmap_height", 3: "heatmap_width"})
    torch.onnx.export(wrapper, tuple(example), str(path), dynamo=False, opset_version=opset,
                      input_names=_input_names(example), output_names=list(fields), dynamic_axes=axes,
                      do_constant_folding=True)
    import onnx

    onnx.checker.check_model(str(path))


def _export_torchscript(wrapper: ExportWrapper, example: Tuple[Tensor, ...], path: Path):
    traced = torch.jit.trace(wrapper, tuple(example), check_trace=False)
    torch.jit.save(traced, str(path))


def _embed_onnx_metadata(path: Path, info: dict) -> None:
    """Store the description inside the ONNX file too (metadata key ``unpaired``)."""
    import onnx

    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = "unpaired", json.dumps({k: v for k, v in info.items() if k != "check"})
    onnx.save(model, str(path))


def _exported_runner(fmt: str, path: Path):
    """A function (N×3×H×W images[, N×c_dim labels]) -> list of numpy outputs, running the exported file."""
    if fmt == "onnx":
        session = onnx_session(path)
        return lambda *inputs: session.run(None, {n: t.numpy() for n, t in zip(_input_names(inputs), inputs)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated in favour of torch.export
        module = torch.jit.load(str(path), map_location="cpu").eval()

    def run(*inputs):
        with torch.no_grad():
            return [t.numpy() for t in module(*inputs)]

    return run


def check_exported(fmt: str, path: Path, wrapper: ExportWrapper, fields: Sequence[str],
                   shapes: Sequence[Tuple[int, ...]], tolerance: float, c_dim: int = 0) -> dict:
    """Run the exported file and PyTorch on random inputs of each shape (and random one-hot labels when
    ``c_dim``); per-output max differences."""
    run = _exported_runner(fmt, path)
    diffs: Dict[str, float] = {name: 0.0 for name in fields}
    for i, shape in enumerate(shapes):
        inputs = (_random_images(shape, seed=1 + i), *_random_labels(shape[0], c_dim, seed=1 + i))
        with torch.no_grad():
            expected = [t.numpy() for t in wrapper(*inputs)]
        got = run(*inputs)
        for name, e, g in zip(fields, expected, got):
            if e.shape != g.shape:
                raise ExportCheckError(f"{fmt}: output {name!r} has shape {g.shape} for input {shape}, "
                                       f"PyTorch gives {e.shape}", {"shapes": [list(s) for s in shapes]})
            d = float(np.abs(e.astype(np.float64) - g).max())
            if name == "heatmap":
                d /= max(1.0, float(np.abs(e).max()))
            diffs[name] = max(diffs[name], d)
    max_diff = max(diffs.values())
    return {"input_shapes": [list(s) for s in shapes], "max_abs_diff": diffs, "max_diff": max_diff,
            "tolerance": tolerance, "passed": bool(max_diff <= tolerance),
            "runtime": "onnxruntime" if fmt == "onnx" else "torch.jit.load"}


def _diff_text(check: dict) -> str:
    return ", ".join(f"{name} {d:.2e}" for name, d in check["max_abs_diff"].items())


# ----------------------------------------------------------------------------------------------------------
# the description written beside the file


def describe(fmt: str, output: Path, card: ModelCard, probe: GeneratorOutput, fields: Sequence[str],
             example_size: int, opset: int, source: Optional[dict] = None, c_dim: int = 0) -> dict:
    from . import __version__

    fixed, multiple = card.input_size.fixed, card.input_size.multiple
    h, w = ((fixed, fixed) if fixed else ("height", "width"))
    outputs = []
    for name in fields:
        t = getattr(probe, name)
        if name == "heatmap" and not fixed:
            ratio = example_size // t.shape[-1]
            spatial = [f"height/{ratio}", f"width/{ratio}"]
        else:
            spatial = list(t.shape[-2:]) if fixed else [h, w]
        outputs.append({"name": name, "shape": ["batch", int(t.shape[1]), *spatial], "dtype": "float32",
                        "range": OUTPUT_RANGES[name], "meaning": OUTPUT_MEANINGS[name]})
    inputs = [{"name": "input", "shape": ["batch", 3, h, w], "dtype": "float32", "range": [-1.0, 1.0],
               "meaning": INPUT_MEANING}]
    if c_dim:
        inputs.append({"name": "label", "shape": ["batch", c_dim], "dtype": "float32", "range": [0.0, 1.0],
                       "meaning": LABEL_MEANING})
    info = {
        "format": fmt,
        "file": output.name,
        "model": card.model,
        "args": card.args,
        "direction": card.direction,
        "domains": card.domains,
        "target_domain": card.target_domain,
        "inputs": inputs,
        "outputs": outputs,
        "normalisation": {"input": "x / 127.5 - 1 (8-bit RGB -> [-1, 1])", "output": "(y + 1) * 127.5"},
        "card": card.to_dict(),
        "size_multiple": multiple,
        "fixed_size": fixed,
        "dynamic_axes": ["batch"] if fixed else ["batch", "height", "width"],
        "example_size": example_size,
        "exporter": (f"torch.onnx.export(dynamo=False), opset {opset}" if fmt == "onnx" else "torch.jit.trace"),
        "torch_version": torch.__version__,
        "unpaired_version": __version__,
    }
    if fmt != "onnx":
        info.pop("dynamic_axes")  # a trace keeps no axis names; sizes follow the rules above
    info["source"] = dict(source or {})
    return info
