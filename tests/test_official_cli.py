"""Imported official checkpoints work as trained runs do: `unpaired import` -> `translate` -> `export` (ONNX,
checked against PyTorch by the export command), as a user runs them."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import FIXTURES, unpaired

needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"{FIXTURES} not found: official fixtures "
                                                                     f"not checked")


def tf_folder(name: str) -> Path:
    return next((FIXTURES / name / "checkpoint").iterdir())


CASES = {
    "cyclegan": lambda: ["--format", "cyclegan", "--input",
                         *sorted((FIXTURES / "cyclegan").glob("latest_net_*.pth"))],
    "cyclegan-2017": lambda: ["--format", "cyclegan", "--input", FIXTURES / "cyclegan" / "pretrained_2017style.pth"],
    "ugatit-tf": lambda: ["--format", "ugatit-tf", "--input", tf_folder("ugatit-tf")],
    "ugatit-light-tf": lambda: ["--format", "ugatit-tf", "--input",
                                next(tf_folder("ugatit-light-tf").glob("*.index"))],
}


@needs_fixtures
@pytest.mark.parametrize("case", list(CASES))
def test_import_translate_export(tmp_path, case):
    run = tmp_path / "run"
    proc = unpaired("import", *CASES[case](), "--out", run)
    assert f"into run folder {run}" in proc.stdout
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name, (w, h) in (("a.png", (40, 28)), ("b.png", (52, 52))):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(images / name)
    out = tmp_path / "out"
    proc = unpaired("translate", "--checkpoint", run, "--input", images, "--output", out, "--save-attention")
    assert "translated 2 image(s)" in proc.stdout
    assert ("resized to 64x64" in proc.stdout) == (case == "ugatit-tf")  # full U-GAT-IT: fixed input size
    assert Image.open(out / "a.png").size == (40, 28) and Image.open(out / "b.png").size == (52, 52)
    assert (out / "a_attention.png").exists() == case.startswith("ugatit")
    onnx = tmp_path / "model.onnx"
    proc = unpaired("export", "--checkpoint", run, "--format", "onnx", "--output", onnx)
    assert onnx.exists() and json.loads((tmp_path / "model.onnx.json").read_text())["card"]["direction"] == "AtoB"
    if case == "cyclegan-2017":  # one generator: the run has no BtoA
        proc = unpaired("translate", "--checkpoint", run, "--input", images, "--output", out, "--direction", "BtoA",
                        ok=False)
        assert proc.returncode != 0 and "has no BtoA generator" in proc.stderr
