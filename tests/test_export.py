"""ONNX / TorchScript export of every registered generator, checked against PyTorch; ``Translator`` on ONNX;
the ``unpaired export`` command on a tiny trained run."""

import dataclasses
import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY_CYCLEGAN, sets, unpaired
from unpaired.export import FORMATS, ExportCheckError, export_generator
from unpaired.inference import Translator
from unpaired.models import get_model, list_models

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

# Small widths for any model: every dataclass field of these names that a model's args have is overridden.
TINY_ARGS = {"ngf": 8, "ndf": 8, "ch": 8, "n_blocks": 1, "n_res": 1, "img_size": 32, "n_masks": 3}
SIZE = 32
TOL = 1e-4


def tiny_generator(name):
    spec = get_model(name)
    names = {f.name for f in dataclasses.fields(spec.args)}
    args = spec.args(**{k: v for k, v in TINY_ARGS.items() if k in names})
    torch.manual_seed(0)
    return spec.build_generator(args).eval(), args


def meta_for(name, args, direction="AtoB"):
    return {"model": name, "args": dataclasses.asdict(args), "direction": direction}


def inputs_for(generator, n, h, w, seed):
    """Random images (and, for a multi-domain generator, one-hot target labels: its second input)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, h, w, generator=g) * 2 - 1
    c_dim = getattr(generator, "c_dim", 0)
    if not c_dim:
        return (x,)
    return x, torch.nn.functional.one_hot(torch.randint(c_dim, (n,), generator=g), c_dim).float()


def sizes_for(generator):
    """Two (batch, H, W) test inputs; one size (two batches) for fixed-size generators."""
    fixed, m = generator.fixed_size, generator.size_multiple
    if fixed:
        return [(1, fixed, fixed), (3, fixed, fixed)]
    return [(1, SIZE + m, SIZE + 2 * m), (2, SIZE - m, SIZE + 3 * m)]


def run_exported(fmt, path, *inputs):
    if fmt == "onnx":
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = {name: t.numpy() for name, t in zip(["input", "label"], inputs)}
        return session.run(None, feed), [o.name for o in session.get_outputs()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        module = torch.jit.load(str(path))
    return [t.numpy() for t in module(*inputs)], None


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", list_models())
def test_export_matches_pytorch(name, fmt, tmp_path):
    generator, args = tiny_generator(name)
    output = tmp_path / f"{name}.{fmt}"
    info = export_generator(generator, fmt, output, SIZE, tolerance=TOL, meta=meta_for(name, args))
    assert output.exists() and info["check"]["passed"] and info["check"]["max_diff"] <= TOL

    # the JSON beside it
    described = json.loads((tmp_path / f"{name}.{fmt}.json").read_text())
    assert described["model"] == name and described["direction"] == "AtoB"
    assert described["args"] == dataclasses.asdict(args)
    assert described["inputs"][0]["range"] == [-1.0, 1.0]
    assert described["fixed_size"] == generator.fixed_size
    assert described["size_multiple"] == generator.size_multiple
    names = [o["name"] for o in described["outputs"]]
    assert names[0] == "image" and set(names) <= {"image", "attention", "heatmap"}

    # independently of the command's own check: run the file at two sizes (dynamic batch, H, W)
    for i, (n, h, w) in enumerate(sizes_for(generator)):
        inputs = inputs_for(generator, n, h, w, seed=10 + i)
        with torch.no_grad():
            ref = generator(*inputs)
        got, onnx_names = run_exported(fmt, output, *inputs)
        assert len(got) == len(names)
        if onnx_names is not None:
            assert onnx_names == names
        for field, array in zip(names, got):
            expected = getattr(ref, field).numpy()
            assert array.shape == expected.shape, (field, array.shape, expected.shape)
            scale = max(1.0, float(np.abs(expected).max())) if field == "heatmap" else 1.0
            assert np.abs(array - expected).max() / scale <= TOL, (field, (n, h, w))
        absent = {"image", "attention", "heatmap"} - set(names)
        assert all(getattr(ref, f) is None for f in absent)


@pytest.mark.parametrize("name", list_models())
def test_translator_runs_onnx_like_pytorch(name, tmp_path):
    generator, args = tiny_generator(name)
    output = tmp_path / f"{name}.onnx"
    # a multi-domain generator has the one key "multi" and translates to a target domain
    key, target = ("multi", "domain1") if getattr(generator, "c_dim", 0) else ("BtoA", None)
    export_generator(generator, "onnx", output, SIZE, meta=meta_for(name, args, key))
    eager = Translator({key: generator}, {key: meta_for(name, args, key)})
    exported = Translator.load(output)
    assert list(exported.generators) == [key]
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for h, w in ((30, 22), (32, 32))]
    pairs = zip(eager.translate_batch(images, key, target=target), exported.translate_batch(images, key, target=target))
    for a, b in pairs:
        assert a.image.size == b.image.size
        # to_pil truncates to uint8: a 1e-6 difference can move a pixel across a level boundary
        assert np.abs(np.asarray(a.image, np.int16) - np.asarray(b.image, np.int16)).max() <= 1
        assert (a.attention is None) == (b.attention is None) and (a.masks is None) == (b.masks is None)
        if a.attention is not None:
            assert np.abs(a.attention - b.attention).max() < 1e-3
        if a.masks is not None:
            assert np.abs(a.masks - b.masks).max() < 1e-4


def test_failed_check_rejects_the_file(tmp_path):
    generator, args = tiny_generator("cyclegan")
    output = tmp_path / "g.onnx"
    output.write_bytes(b"an older export")
    with pytest.raises(ExportCheckError) as err:
        export_generator(generator, "onnx", output, SIZE, tolerance=-1.0, meta=meta_for("cyclegan", args))
    assert not output.exists() and not (tmp_path / "g.onnx.json").exists()
    assert (tmp_path / "g.onnx.failed").exists()
    assert err.value.report["check"]["passed"] is False


# ----------------------------------------------------------------------------------------------------------
# the command


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("export_cli")
    data, run = root / "data", root / "run"
    unpaired("data", "synth", data, "--size", 32, "--n-train", 4, "--n-test", 2)
    unpaired("train", "quick", "--data", data, "--out", run, "--no-progress", *sets(*TINY_CYCLEGAN, "train.steps=2"))
    return root, data, run


def test_cli_export_onnx(tiny_run):
    root, data, run = tiny_run
    output = root / "exported" / "g.onnx"
    proc = unpaired("export", "--checkpoint", run, "--format", "onnx", "--output", output, "--direction", "BtoA")
    assert "max abs difference" in proc.stdout
    info = json.loads((root / "exported" / "g.onnx.json").read_text())
    assert info["model"] == "cyclegan" and info["direction"] == "BtoA" and info["example_size"] == 32
    assert info["check"]["passed"] and len(info["check"]["input_shapes"]) == 2
    image = next((data / "testB").iterdir())
    a = Translator.load(run, directions=("BtoA",)).translate(image, "BtoA").image
    b = Translator.load(output).translate(image, "BtoA").image
    assert np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).max() <= 1


def test_cli_export_torchscript_and_failure(tiny_run):
    root, _, run = tiny_run
    output = root / "exported" / "g.ts"
    unpaired("export", "--checkpoint", run, "--format", "torchscript", "--output", output, "--size", 24)
    assert output.exists() and json.loads((root / "exported" / "g.ts.json").read_text())["example_size"] == 24
    bad = root / "exported" / "bad.onnx"
    proc = unpaired("export", "--checkpoint", run, "--format", "onnx", "--output", bad, "--tolerance", "-1", ok=False)
    assert proc.returncode == 1 and "FAILED" in proc.stderr
    assert not bad.exists() and (root / "exported" / "bad.onnx.failed").exists()
