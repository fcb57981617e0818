"""Running an exported generator: an ONNX file through onnxruntime, returning ``GeneratorOutput`` like the
PyTorch module, and reading the description ``unpaired export`` writes beside (and into) the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional, Union

import torch
from torch import Tensor, nn

from .models.base import GeneratorOutput


def description_path(output: Path) -> Path:
    return output.with_name(output.name + ".json")


def onnx_session(path: Path, providers: Optional[List[str]] = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])


class OnnxGenerator(nn.Module):
    """An exported ONNX generator run by onnxruntime, returning ``GeneratorOutput`` like the PyTorch one.

    It has no parameters; ``size_multiple`` and ``fixed_size`` come from the description beside the file,
    so ``run_any_size`` (and thus ``Translator``) pads or resizes inputs as for the original model.
    """

    def __init__(self, path: Union[str, Path], info: dict, providers: Optional[List[str]] = None):
        super().__init__()
        self.path, self.info = Path(path), info
        self.session = onnx_session(self.path, providers)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.size_multiple = int(info.get("size_multiple") or 1)
        self.fixed_size = info.get("fixed_size")

    def forward(self, x: Tensor, *label: Tensor) -> GeneratorOutput:
        """``label`` (N×c_dim) only for a multi-domain export with a label input."""
        if len(label) != len(self.input_names) - 1:
            raise ValueError(f"{self.path.name} takes inputs {', '.join(self.input_names)}")
        arrays = [t.detach().to("cpu", torch.float32).contiguous().numpy() for t in (x, *label)]
        outs = self.session.run(None, dict(zip(self.input_names, arrays)))
        named = {name: torch.from_numpy(o).to(x.device) for name, o in zip(self.output_names, outs)}
        return GeneratorOutput(image=named["image"], attention=named.get("attention"), heatmap=named.get("heatmap"))

    def extra_repr(self) -> str:
        return f"{self.path.name}, outputs={self.output_names}"


def read_export_info(path: Union[str, Path]) -> dict:
    """The description of an exported file: ``<file>.json`` beside it, else the one embedded in the ONNX file."""
    path = Path(path)
    for candidate in (description_path(path), path.with_suffix(".json")):
        if candidate.exists():
            return json.loads(candidate.read_text())
    if path.suffix == ".onnx":
        import onnx

        model = onnx.load(str(path), load_external_data=False)
        for entry in model.metadata_props:
            if entry.key == "unpaired":
                return json.loads(entry.value)
    raise FileNotFoundError(f"{description_path(path)}: missing; it says which sizes {path.name} accepts "
                            "(re-export with `unpaired export`)")


def load_onnx_generator(path: Union[str, Path]):
    """(generator, its ``ModelCard``) for ``Translator``. The card is the one the export embedded (its input size
    is the exported graph's: fixed when the export fixed H and W)."""
    from .runfolder import InputSize, ModelCard

    info = read_export_info(path)
    if "card" in info:
        card = ModelCard.from_dict(info["card"], str(path))
    else:  # exported before the card: the description's own keys
        card = ModelCard.from_dict({"model": info.get("model"), "args": info.get("args"),
                                    "direction": info.get("direction") or "AtoB",
                                    "target_domain": info.get("target_domain"),
                                    "unpaired_version": info.get("unpaired_version")}, str(path))
        card.input_size = InputSize(train=card.input_size.train, multiple=int(info.get("size_multiple") or 1),
                                    fixed=info.get("fixed_size"))
    return OnnxGenerator(path, info), card
