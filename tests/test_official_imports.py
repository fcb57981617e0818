"""The formats that hold the released weights: official CycleGAN files (incl. the 2017 released generators) and
official U-GAT-IT TensorFlow checkpoints, imported and checked against the outputs of the official code
(shared/fixtures/official/{cyclegan,ugatit-tf,ugatit-light-tf}, tolerances from their READMEs)."""

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import method_from_run
from unpaired.compat import ImportMismatch, import_checkpoint
from unpaired.compat.tf_bundle import TFCheckpoint
from unpaired.inference import Translator, run_any_size

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "official"
needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"{FIXTURES} not found: official fixtures "
                                                                     f"not checked")
TOL = dict(rtol=1e-4, atol=1e-5)  # every fixture README: outputs other than U-GAT-IT TF images
TF_IMAGE_TOL = dict(rtol=1e-4, atol=5e-5)  # ugatit-tf READMEs: generator images


pytestmark = pytest.mark.usefixtures("one_thread")




def translate(translator: Translator, direction: str, x: torch.Tensor):
    with torch.no_grad():
        return run_any_size(translator.generator(direction), x, size=translator.input_size(direction))


# ----------------------------------------------------------------------------------------------------------
# CycleGAN


@needs_fixtures
def test_cyclegan_fixture(tmp_path):
    folder = FIXTURES / "cyclegan"
    inputs = torch.load(folder / "inputs.pt", weights_only=True)
    expected = torch.load(folder / "expected.pt", weights_only=True)
    run = tmp_path / "run"
    import_checkpoint("cyclegan", sorted(folder.glob("latest_net_*.pth")), run)
    translator = Translator.load(run)
    torch.testing.assert_close(translate(translator, "AtoB", inputs["real_A"]).image, expected["G_A.image"], **TOL)
    torch.testing.assert_close(translate(translator, "BtoA", inputs["real_B"]).image, expected["G_B.image"], **TOL)
    method, cfg = method_from_run(run)
    assert (cfg.model.ngf, cfg.model.ndf, cfg.model.n_blocks, cfg.model.n_layers_d) == (10, 12, 9, 3)
    with torch.no_grad():  # D_A judges domain B
        torch.testing.assert_close(method.discriminators["B"](inputs["real_B"]).logits, expected["D_A.logit"], **TOL)
        torch.testing.assert_close(method.discriminators["A"](inputs["real_A"]).logits, expected["D_B.logit"], **TOL)


@needs_fixtures
def test_cyclegan_2017_released_generator(tmp_path):
    folder = FIXTURES / "cyclegan"
    released = tmp_path / "horse2zebra.pth"
    shutil.copy(folder / "pretrained_2017style.pth", released)
    assert "model.2.running_mean" in torch.load(released, weights_only=True)  # legacy format, pre-0.4 buffers
    run = import_checkpoint("cyclegan", [released], tmp_path / "run").parents[1]
    assert sorted(p.name for p in (run / "generators").iterdir()) == ["AtoB.json", "AtoB.safetensors"]
    translator = Translator.load(run)
    assert list(translator.generators) == ["AtoB"]
    inputs = torch.load(folder / "inputs.pt", weights_only=True)
    expected = torch.load(folder / "expected.pt", weights_only=True)
    torch.testing.assert_close(translate(translator, "AtoB", inputs["real_A"]).image, expected["old_G.image"], **TOL)
    assert "generators.BtoA" in (run / "import.json").read_text()


@needs_fixtures
def test_cyclegan_buffers_skipped_by_rule_only_at_instance_norms(tmp_path):
    state = torch.load(FIXTURES / "cyclegan" / "pretrained_2017style.pth", weights_only=True)
    state["model.2.num_batches_tracked"] = torch.tensor(7)  # torch 0.4.1 files
    torch.save(state, tmp_path / "with_counts.pth")
    import_checkpoint("cyclegan", [tmp_path / "with_counts.pth"], tmp_path / "a")
    state["model.4.running_mean"] = torch.zeros(20)  # model.4 is a conv: not a skippable buffer
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ImportMismatch, match="model.4.running_mean"):
        import_checkpoint("cyclegan", [tmp_path / "bad.pth"], tmp_path / "b")


@needs_fixtures
def test_cyclegan_one_direction_and_errors(tmp_path):
    folder = FIXTURES / "cyclegan"
    run = import_checkpoint("cyclegan", [folder / "latest_net_G_B.pth", folder / "latest_net_D_B.pth"],
                            tmp_path / "run").parents[1]
    assert list(Translator.load(run).generators) == ["BtoA"]
    with pytest.raises(ImportMismatch, match="no generator"):
        import_checkpoint("cyclegan", [folder / "latest_net_D_A.pth", folder / "latest_net_D_B.pth"], tmp_path / "x")
    shutil.copy(folder / "latest_net_D_A.pth", tmp_path / "weights.pth")  # one file of no role: a generator?
    with pytest.raises(ImportMismatch, match="not a CycleGAN ResnetGenerator"):
        import_checkpoint("cyclegan", [tmp_path / "weights.pth"], tmp_path / "y")


# ----------------------------------------------------------------------------------------------------------
# U-GAT-IT TensorFlow


def tf_prefix(name: str) -> Path:
    model_dir = next((FIXTURES / name / "checkpoint").iterdir())
    return next(model_dir.glob("*.index")).with_suffix("")


@needs_fixtures
@pytest.mark.parametrize("name,model,by_index", [("ugatit-tf", "ugatit", False), ("ugatit-light-tf", "ugatit-light", True)])
def test_ugatit_tf_fixture(tmp_path, name, model, by_index):
    folder = FIXTURES / name
    prefix = tf_prefix(name)
    source = prefix.with_name(prefix.name + ".index") if by_index else prefix.parent
    run = tmp_path / "run"
    import_checkpoint("ugatit-tf", [source], run)
    inputs = {k: torch.from_numpy(v).permute(0, 3, 1, 2) for k, v in np.load(folder / "inputs.npz").items()}
    expected = dict(np.load(folder / "expected.npz"))

    def official(key):  # NHWC -> NCHW; heatmaps [N,h,w] -> [N,1,h,w]
        x = torch.from_numpy(expected[key])
        return x.permute(0, 3, 1, 2) if x.ndim == 4 else (x[:, None] if x.ndim == 3 else x)

    translator = Translator.load(run)
    assert translator.cards["AtoB"].model == model and translator.cards["AtoB"].args["variant"] == "tf"
    for scope, direction, x in (("generator_B", "AtoB", "real_A"), ("generator_A", "BtoA", "real_B")):
        out = translate(translator, direction, inputs[x])
        torch.testing.assert_close(out.image, official(f"{scope}.image"), **TF_IMAGE_TOL)
        torch.testing.assert_close(out.cam_logit, official(f"{scope}.cam_logit"), **TOL)
        torch.testing.assert_close(out.heatmap, official(f"{scope}.heatmap"), **TOL)
    method, _ = method_from_run(run)
    with torch.no_grad():
        for domain in ("A", "B"):
            for scale in ("global", "local"):
                out = method.discriminators[domain][scale](inputs[f"real_{domain}"])
                key = f"discriminator_{domain}.{scale}"
                torch.testing.assert_close(out.logits, official(f"{key}.logit"), **TOL)
                torch.testing.assert_close(out.cam_logit, official(f"{key}.cam_logit"), **TOL)
                torch.testing.assert_close(out.heatmap, official(f"{key}.heatmap"), **TOL)


def write_bundle(prefix: Path, tensors: dict) -> None:
    """A minimal TF V2 checkpoint writer (float32 only; one uncompressed table block): tests the reader and
    makes tampered checkpoints."""
    def varint(n):
        out = bytearray()
        while True:
            out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
            n >>= 7
            if not n:
                return bytes(out)

    def field(number, wire, payload):
        return varint(number << 3 | wire) + (varint(len(payload)) + payload if wire == 2 else varint(payload))

    def block(entries):
        body = b"".join(varint(0) + varint(len(k)) + varint(len(v)) + k + v for k, v in entries)
        return body + struct.pack("<II", 0, 1)

    data, entries = bytearray(), [(b"", field(1, 0, 1))]
    for name in sorted(tensors):
        array = np.asarray(tensors[name], dtype="<f4", order="C")
        shape = b"".join(field(2, 2, field(1, 0, d)) for d in array.shape)
        entry = field(1, 0, 1) + field(2, 2, shape) + field(4, 0, len(data)) + field(5, 0, array.nbytes)
        entries.append((name.encode(), entry))
        data += array.tobytes()
    table = block(entries)
    index = block([(entries[-1][0], varint(0) + varint(len(table)))])
    out = table + b"\0" * 5
    index_offset = len(out)
    out += index + b"\0" * 5
    handles = varint(0) + varint(0) + varint(index_offset) + varint(len(index))
    out += handles + b"\0" * (40 - len(handles)) + struct.pack("<Q", 0xDB4775248B80FB57)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    prefix.with_name(prefix.name + ".index").write_bytes(out)
    prefix.with_name(prefix.name + ".data-00000-of-00001").write_bytes(bytes(data))
    (prefix.parent / "checkpoint").write_text(f'model_checkpoint_path: "{prefix.name}"\n')


@needs_fixtures
def test_ugatit_tf_refuses_unknown_and_missing_variables(tmp_path):
    ckpt = TFCheckpoint(tf_prefix("ugatit-light-tf"))
    variables = {n: ckpt.read(n) for n in ckpt.names()}
    model_dir = tmp_path / "UGATIT_light_x_lsgan_4resblock_6dis_1_1_10_10_1000_sn_smoothing"
    write_bundle(model_dir / "UGATIT_light.model-5", variables)  # the reader reads back what was written
    again = TFCheckpoint(model_dir)
    assert again.names() == sorted(variables) and np.array_equal(again.read("beta1_power"), variables["beta1_power"])
    import_checkpoint("ugatit-tf", [model_dir], tmp_path / "ok")
    write_bundle(model_dir / "UGATIT_light.model-6", {**variables, "generator_B/extra/kernel": np.zeros(3)})
    with pytest.raises(ImportMismatch, match="generator_B/extra/kernel"):
        import_checkpoint("ugatit-tf", [model_dir], tmp_path / "a")
    del variables["generator_A/MLP/beta/dense/bias"]
    write_bundle(model_dir / "UGATIT_light.model-7", variables)
    with pytest.raises(ImportMismatch, match="missing official key 'generator_A/MLP/beta/dense/bias'"):
        import_checkpoint("ugatit-tf", [model_dir], tmp_path / "b")


@needs_fixtures
def test_ugatit_tf_rho_smoothing(tmp_path):
    prefix = tf_prefix("ugatit-light-tf")
    rho = torch.from_numpy(TFCheckpoint(prefix).read("generator_B/adaptive_resblock0/res1/instance_layer_norm/rho"))
    key = "generators.AtoB.decoder.0.norm1.rho"
    import_checkpoint("ugatit-tf", [prefix.parent], tmp_path / "auto")
    import_checkpoint("ugatit-tf", [prefix.parent], tmp_path / "off", tf_smoothing="off")
    smoothed = method_from_run(tmp_path / "auto")[0].state_dict()[key].flatten()
    stored = method_from_run(tmp_path / "off")[0].state_dict()[key].flatten()
    torch.testing.assert_close(smoothed, (rho - 0.1).clamp(0, 1))
    torch.testing.assert_close(stored, rho)
    assert method_from_run(tmp_path / "auto")[1].train.steps >= 1000
    assert json.loads((tmp_path / "off" / "import.json").read_text())["smoothing"] is False
