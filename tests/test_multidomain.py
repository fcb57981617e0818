"""Multi-domain AttentionGAN and StarGAN: network contracts, labelled data, exact resume, the official
checkpoint layout, and the command line from synthetic data to an exported file."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from conftest import sets, unpaired
from unpaired.cli import main
from unpaired.compat import ImportMismatch, import_checkpoint
from unpaired.config import ConfigError, resolve
from unpaired.data import AttributeTable, BadImageError, MultiDomainFolders, make_synthetic_domains
from unpaired.inference import Translator
from unpaired.models.multidomain import MultiDomainDiscriminator, MultiDomainGenerator
from unpaired.training.trainer import Trainer

TINY = ["model.name=attentiongan-multi", "model.ngf=8", "model.ndf=8", "model.n_blocks=1", "model.n_layers_d=3",
        "model.image_size=32", "model.n_critic=2", "data.load_size=36", "data.crop_size=32", "data.num_workers=0",
        "train.batch_size=3", "train.device=cpu", "train.log_every=1", "train.sample_every=100",
        "train.checkpoint_every=100"]


@pytest.fixture(scope="module")
def domains_data(tmp_path_factory):
    return make_synthetic_domains(tmp_path_factory.mktemp("multi") / "data", 3, size=32, n_train=4, n_test=2)


# ----------------------------------------------------------------------------------------------------------
# networks


@pytest.mark.parametrize("attention", ["scheme1", "scheme2", "none"])
def test_generator_and_discriminator_contract(attention):
    torch.manual_seed(0)
    G = MultiDomainGenerator(c_dim=3, ngf=8, n_blocks=1, attention=attention, n_masks=3).eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    to_first, to_second = torch.tensor([[1.0, 0, 0]] * 2), torch.tensor([[0, 1.0, 0]] * 2)
    out = G(x, to_first)
    assert out.image.shape == x.shape
    assert not torch.allclose(out.image, G(x, to_second).image)  # the label conditions the output
    if attention == "none":
        assert out.attention is None and out.image.abs().max() <= 1
    else:
        k = 1 if attention == "scheme1" else 3
        assert out.attention.shape == (2, k, 32, 32)
        assert out.attention.min() >= 0 and out.attention.max() <= 1
        fg = out.foreground()
        assert fg.shape == (2, 1, 32, 32) and fg.min() >= 0 and fg.max() <= 1
        if k > 1:
            assert torch.allclose(out.attention.sum(1), torch.ones(2, 32, 32), atol=1e-5)
    D = MultiDomainDiscriminator(c_dim=3, ndf=8, n_layers=3, image_size=32)
    d = D(x)
    assert d.logits.shape == (2, 1, 4, 4) and d.class_logits.shape == (2, 3)
    with pytest.raises(ValueError, match="image_size"):
        D(torch.zeros(1, 3, 64, 64))


# ----------------------------------------------------------------------------------------------------------
# data


def test_domain_folders_labels_and_deterministic_sampling(domains_data):
    ds = MultiDomainFolders(domains_data, "train", seed=3)
    assert ds.names == ["hue000", "hue120", "hue240"] and len(ds) == 12
    item = ds[7]
    assert item["label"].sum() == 1 and item["label"].shape == (3,)
    assert ds.names[int(item["label"].argmax())] in item["path"]
    again = MultiDomainFolders(domains_data, "train", seed=3)[7]  # a pure function of (seed, index)
    assert again["path"] == item["path"] and torch.equal(again["image"], item["image"])
    subset = MultiDomainFolders(domains_data, "train", domains=["hue240", "hue000"])
    assert subset.names == ["hue240", "hue000"] and len(subset) == 8
    with pytest.raises(ValueError, match="unknown domain 'happiness'"):
        MultiDomainFolders(domains_data, "train", domains=["happiness"])


def test_attribute_table(tmp_path, domains_data):
    for i, name in enumerate(("a.png", "b.png")):
        (tmp_path / name).write_bytes((domains_data / "train" / "hue000" / f"000{i}.png").read_bytes())
    (tmp_path / "attrs.csv").write_text("filename,Smiling,Young,Male\na.png,1,-1,1\nb.png,0,1,0\n")
    table = AttributeTable(tmp_path / "attrs.csv", attributes=["Young", "Smiling"])
    assert table.names == ["Young", "Smiling"]
    assert torch.equal(table.labels, torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    (tmp_path / "bad.csv").write_text("filename,Smiling\na.png,1\nmissing.png,1\nb.png,yes\n")
    with pytest.raises(ValueError, match=r"bad.csv:4: attribute value 'yes'"):
        AttributeTable(tmp_path / "bad.csv")
    (tmp_path / "bad.csv").write_text("filename,Smiling\na.png,1\nmissing.png,1\n")
    with pytest.raises(BadImageError, match="missing.png"):
        AttributeTable(tmp_path / "bad.csv")
    cfg = resolve({}, [*TINY, f"data.root={tmp_path / 'attrs.csv'}", "model.domains=Male,Smiling"])
    trainer = Trainer(cfg, tmp_path / "run", progress=False)  # the CSV makes labels multi-hot, loss BCE
    assert cfg.model.multi_label and cfg.model.c_dim == 2
    trainer.train_step({"image": torch.zeros(2, 3, 32, 32), "label": torch.tensor([[1.0, 1.0], [0.0, 1.0]])})
    with pytest.raises(ConfigError, match="train.eval_every.*attribute table"):
        Trainer(resolve({}, [*TINY, f"data.root={tmp_path / 'attrs.csv'}", "train.eval_every=5"]), tmp_path / "r2")


def test_bad_data_is_named(tmp_path, domains_data):
    with pytest.raises(ConfigError, match="unknown domain 'happiness'.*hue000, hue120, hue240"):
        Trainer(resolve({}, [*TINY, f"data.root={domains_data}", "model.domains=hue000,happiness"]),
                tmp_path / "run", progress=False)
    root = tmp_path / "data"
    (root / "train" / "cats").mkdir(parents=True)
    (root / "train" / "dogs").mkdir()
    (root / "train" / "cats" / "x.png").write_bytes((domains_data / "train" / "hue000" / "0000.png").read_bytes())
    with pytest.raises(FileNotFoundError, match="dogs"):
        MultiDomainFolders(root, "train")
    (root / "train" / "dogs" / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(BadImageError, match="broken.jpg"):
        MultiDomainFolders(root, "train")


# ----------------------------------------------------------------------------------------------------------
# engine


def test_resume_equals_uninterrupted(domains_data, tmp_path):
    """n_critic 2: D at every step, G at step 2; the target labels and GP mixing are drawn from (seed, step)."""
    cfg = resolve({}, [*TINY, f"data.root={domains_data}", "train.steps=3", "train.checkpoint_every=2"])
    straight = Trainer(cfg, tmp_path / "straight", progress=False)
    straight.fit()
    Trainer(cfg, tmp_path / "split", progress=False).fit(until=2)
    torch.manual_seed(999)  # the global stream must not matter
    resumed = Trainer(cfg, tmp_path / "split", resume=True, progress=False)
    resumed.fit()
    a, b = straight.method.state_dict(), resumed.method.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    stats = [json.loads(line) for line in (tmp_path / "straight" / "stats.jsonl").read_text().splitlines()]
    assert ["Loss/G/total" in s for s in stats] == [False, True, False]
    assert (tmp_path / "straight" / "samples" / "step_0000003.png").exists()


# ----------------------------------------------------------------------------------------------------------
# official checkpoints: a reference written from shared/spec/models.md §4.1/§4.2, with official key names


class RefResidual(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.main = nn.Sequential(nn.Conv2d(dim, dim, 3, 1, 1, bias=False),
                                  nn.InstanceNorm2d(dim, affine=True, track_running_stats=True), nn.ReLU(True),
                                  nn.Conv2d(dim, dim, 3, 1, 1, bias=False),
                                  nn.InstanceNorm2d(dim, affine=True, track_running_stats=True))

    def forward(self, x):
        return x + self.main(x)


class RefGenerator(nn.Module):
    """main.0-21 as the spec's table; head 4 channels (attention) or 3 (StarGAN, then tanh)."""

    def __init__(self, conv_dim, c_dim, repeat_num, out_ch):
        super().__init__()

        def norm(ch):
            return nn.InstanceNorm2d(ch, affine=True, track_running_stats=True)

        d = conv_dim
        layers = [nn.Conv2d(3 + c_dim, d, 7, 1, 3, bias=False), norm(d), nn.ReLU(True),
                  nn.Conv2d(d, 2 * d, 4, 2, 1, bias=False), norm(2 * d), nn.ReLU(True),
                  nn.Conv2d(2 * d, 4 * d, 4, 2, 1, bias=False), norm(4 * d), nn.ReLU(True)]
        layers += [RefResidual(4 * d) for _ in range(repeat_num)]
        layers += [nn.ConvTranspose2d(4 * d, 2 * d, 4, 2, 1, bias=False), norm(2 * d), nn.ReLU(True),
                   nn.ConvTranspose2d(2 * d, d, 4, 2, 1, bias=False), norm(d), nn.ReLU(True),
                   nn.Conv2d(d, out_ch, 7, 1, 3, bias=False)]
        self.main, self.out_ch = nn.Sequential(*layers), out_ch

    def forward(self, x, c):
        c = c.view(c.size(0), c.size(1), 1, 1).repeat(1, 1, x.size(2), x.size(3))
        out = self.main(torch.cat([x, c], dim=1))
        if self.out_ch == 3:
            return torch.tanh(out), None
        mask = torch.sigmoid(out[:, :1])
        return out[:, 1:4] * mask + x * (1 - mask), mask


class RefDiscriminator(nn.Module):
    def __init__(self, image_size, conv_dim, c_dim, repeat_num):
        super().__init__()
        layers, d = [nn.Conv2d(3, conv_dim, 4, 2, 1), nn.LeakyReLU(0.01)], conv_dim
        for _ in range(1, repeat_num):
            layers += [nn.Conv2d(d, 2 * d, 4, 2, 1), nn.LeakyReLU(0.01)]
            d *= 2
        self.main = nn.Sequential(*layers)
        self.conv1 = nn.Conv2d(d, 1, 3, 1, 1, bias=False)
        self.conv2 = nn.Conv2d(d, c_dim, image_size // 2 ** repeat_num, bias=False)

    def forward(self, x):
        h = self.main(x)
        return self.conv1(h), self.conv2(h).view(x.size(0), -1)


def official_files(folder, out_ch):
    torch.manual_seed(0)
    G, D = RefGenerator(8, 3, 2, out_ch), RefDiscriminator(32, 8, 3, 3)
    with torch.no_grad():
        for name, buffer in G.named_buffers():  # running statistics the official test never uses
            if "running" in name:
                buffer.uniform_(0.5, 2.0)
        for p in G.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    folder.mkdir()
    torch.save(G.state_dict(), folder / "200000-G.ckpt")
    torch.save(D.state_dict(), folder / "200000-D.ckpt")
    return G, D


@pytest.mark.parametrize("fmt, out_ch", [("attentiongan-multi", 4), ("stargan", 3)])
def test_import_official_checkpoint(tmp_path, fmt, out_ch):
    G, D = official_files(tmp_path / "official", out_ch)
    files = [tmp_path / "official" / "200000-G.ckpt", tmp_path / "official" / "200000-D.ckpt"]
    run = tmp_path / "run"
    import_checkpoint(fmt, files, run, domains="angry,happy,sad")
    translator = Translator.load(run)
    assert translator.domains == ["angry", "happy", "sad"]
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    c = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    with torch.no_grad():
        expected, mask = G.train()(x, c)  # official test: never .eval() -> per-instance statistics
        got = translator.generator()(x, c)
    np.testing.assert_allclose(got.image.numpy(), expected.numpy(), rtol=1e-4, atol=1e-5)
    if mask is not None:
        np.testing.assert_allclose(got.attention.numpy(), mask.numpy(), rtol=1e-4, atol=1e-5)
    state = torch.load(next((run / "checkpoints").iterdir()), weights_only=True)
    ours = MultiDomainDiscriminator(c_dim=3, ndf=8, n_layers=3, image_size=32)
    ours.load_state_dict({k[len("discriminators.multi."):]: v for k, v in state["method"].items()
                          if k.startswith("discriminators.multi.")})
    with torch.no_grad():
        src, cls = D(x)
        out = ours(x)
    np.testing.assert_allclose(out.logits.numpy(), src.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out.class_logits.numpy(), cls.numpy(), rtol=1e-4, atol=1e-5)
    other = "stargan" if fmt != "stargan" else "attentiongan-multi"
    with pytest.raises(ImportMismatch, match=f"use --format {fmt}"):
        import_checkpoint(other, files[:1], tmp_path / "run2")


def test_import_rejects_unknown_keys_and_wrong_domains(tmp_path):
    G, _ = official_files(tmp_path / "official", 4)
    state = G.state_dict()
    state["main.99.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "1-G.ckpt")
    with pytest.raises(ImportMismatch, match="main.99.weight"):
        import_checkpoint("attentiongan-multi", [tmp_path / "1-G.ckpt"], tmp_path / "run")
    with pytest.raises(ImportMismatch, match="c_dim = 3"):
        import_checkpoint("attentiongan-multi", [tmp_path / "official" / "200000-G.ckpt"], tmp_path / "run2",
                          domains="a,b")


# ----------------------------------------------------------------------------------------------------------
# the command line


def test_cli_train_translate_export(tmp_path, capsys):
    data, run, out = tmp_path / "data", tmp_path / "run", tmp_path / "out"
    # the real command for training; the others in this process (the same code, without a torch start-up each)
    assert main(["data", "synth", str(data), "--domains", "3", "--size", "32", "--n-train", "3", "--n-test", "2"]) == 0
    assert sorted(p.name for p in (data / "train").iterdir()) == ["hue000", "hue120", "hue240"]
    unpaired("train", "faces-expressions-attentiongan-multi", "--data", data, "--out", run, "--no-progress",
             *sets(*TINY, "train.steps=2", "train.eval_every=2"))
    assert (run / "generators" / "multi.safetensors").exists()
    from unpaired.training.stats import read_stats

    scored = [r for r in read_stats(run) if "Eval/to_hue120/fid" in r]  # evaluation during training, per target
    assert scored and scored[-1]["step"] == 2 and "Eval/to_hue240/kid_x100" in scored[-1]
    test = data / "test" / "hue000"
    assert main(["translate", "--checkpoint", str(run), "--input", str(test), "--output", str(out),
                 "--target-domain", "hue120,hue240", "--save-attention"]) == 0
    for domain in ("hue120", "hue240"):
        assert sorted(p.name for p in (out / domain).iterdir()) == [
            "0000.png", "0000_attention.png", "0001.png", "0001_attention.png"]
    capsys.readouterr()
    assert main(["translate", "--checkpoint", str(run), "--input", str(test), "--output", str(out),
                 "--target-domain", "happiness"]) == 2
    err = capsys.readouterr().err
    assert "unknown domain 'happiness'" in err and "hue000, hue120, hue240" in err
    assert main(["translate", "--checkpoint", str(run), "--input", str(test), "--output", str(out)]) == 2
    assert "--target-domain" in capsys.readouterr().err

    assert main(["export", "--checkpoint", str(run), "--format", "onnx", "--output", str(tmp_path / "g.onnx")]) == 0
    info = json.loads((tmp_path / "g.onnx.json").read_text())
    assert [i["name"] for i in info["inputs"]] == ["input", "label"] and info["domains"] == ["hue000", "hue120", "hue240"]
    assert main(["export", "--checkpoint", str(run), "--format", "onnx", "--output", str(tmp_path / "fixed.onnx"),
                 "--target-domain", "hue240"]) == 0
    assert json.loads((tmp_path / "fixed.onnx.json").read_text())["target_domain"] == "hue240"
    image = test / "0000.png"
    eager = np.asarray(Translator.load(run).translate(image, target="hue240").image, np.int16)
    for exported in ("g.onnx", "fixed.onnx"):
        got = np.asarray(Translator.load(tmp_path / exported).translate(image, target="hue240").image, np.int16)
        assert np.abs(got - eager).max() <= 1
    pytest.importorskip("gradio")
    from unpaired.demo import build_demo

    for exported, choices in (("g.onnx", ["hue000", "hue120", "hue240"]), ("fixed.onnx", ["hue240"])):
        demo = build_demo(Translator.load(tmp_path / exported))  # the demo offers the targets the file can do
        radio = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "direction")
        assert [value for _, value in radio.choices] == choices

    # compare: one column per target domain (and its attention)
    assert main(["compare", "--checkpoint", str(run), "--names", "ag", "--input", str(test), "--output",
                 str(tmp_path / "cmp.png"), "--target-domain", "hue120,hue240", "--cell", "32"]) == 0
    assert Image.open(tmp_path / "cmp.png").size == (5 * (32 + 4) + 4, 16 + 2 * (32 + 4) + 4)
    assert main(["compare", "--checkpoint", str(run), "--input", str(test), "--output", str(tmp_path / "x.png")]) == 2
    assert "multi-domain model: name --target-domain" in capsys.readouterr().err

    # evaluate: one row per target domain, sources = the test images of the other domains
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(run), "--data", str(data), "--metrics", "fid,kid",
                 "--feature-extractor", "unpaired-tiny", "--json", str(tmp_path / "scores.json")]) == 0
    rows = json.loads((tmp_path / "scores.json").read_text())
    assert [r["target"] for r in rows] == ["hue000", "hue120", "hue240"]
    assert all(r["n_source"] == 4 and r["n_real"] == 2 and r["fid"] >= 0 for r in rows)
    assert "to hue120" in capsys.readouterr().out
    assert main(["evaluate", "--checkpoint", str(run), "--data", str(data), "--metrics", "masks"]) == 1
    assert "multi-domain data has no ground-truth masks" in capsys.readouterr().err

    # the change outside a fixed region (aligned faces: eyes and mouth), from a region file
    assert main(["evaluate", "--checkpoint", str(run), "--data", str(data), "--metrics", "region"]) == 1
    assert "--region FILE.png" in capsys.readouterr().err
    region = np.zeros((16, 16), np.uint8)
    region[10:14, 4:12] = 255
    Image.fromarray(region).save(tmp_path / "region.png")
    assert main(["evaluate", "--checkpoint", str(run), "--data", str(data), "--metrics", "region",
                 "--region", str(tmp_path / "region.png"), "--json", str(tmp_path / "region.json")]) == 0
    rows = json.loads((tmp_path / "region.json").read_text())
    assert [r["target"] for r in rows] == ["hue000", "hue120", "hue240"]
    assert all(r["outside_psnr"] > 0 and 0 <= r["outside_change"] <= 1 and r["region"].endswith("region.png")
               for r in rows)
