"""FID/KID through torch-fidelity with the stand-in extractor, attention/background scores, `unpaired evaluate`."""

import json

import numpy as np
import pytest
import torch

from unpaired.metrics.fidelity import MissingWeightsError, fidelity_scores, inception_weights
from unpaired.metrics.masks import mask_scores
from unpaired.metrics.standin import TinyFeatureExtractor


def smooth_images(n, seed, shift=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 3, 8, 8, generator=g)
    images = torch.nn.functional.interpolate(base, size=(32, 32), mode="bilinear", align_corners=False)
    return (images * 200 + shift).clamp(0, 255).to(torch.uint8)


def direct_fid(f1, f2):
    """Fréchet distance computed here, independently of torch-fidelity (float64, eigen-decomposition)."""
    f1, f2 = f1.double(), f2.double()
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = torch.cov(f1.T), torch.cov(f2.T)
    vals, vecs = torch.linalg.eigh(s1)
    root1 = vecs @ torch.diag(vals.clamp_min(0).sqrt()) @ vecs.T
    inner = torch.linalg.eigvalsh(root1 @ s2 @ root1).clamp_min(0).sqrt().sum()
    return float(((mu1 - mu2) ** 2).sum() + torch.trace(s1) + torch.trace(s2) - 2 * inner)


def features(images):
    extractor = TinyFeatureExtractor("unpaired-tiny", ["64"])
    with torch.no_grad():
        return extractor(images)[0]


def test_standin_fid_matches_direct_computation():
    a, b = smooth_images(80, 0), smooth_images(80, 1, shift=40)
    ours = fidelity_scores(a, b, feature_extractor="unpaired-tiny", kid=False)
    assert ours["fid"] == pytest.approx(direct_fid(features(a), features(b)), rel=1e-3, abs=1e-6)


def test_identical_sets_score_zero_and_shift_scores_more():
    a = smooth_images(60, 0)
    same = fidelity_scores(a, a.clone(), feature_extractor="unpaired-tiny")
    assert abs(same["fid"]) < 1e-6 and abs(same["kid_x100"]) < 0.05
    near = fidelity_scores(a, smooth_images(60, 1), feature_extractor="unpaired-tiny")
    far = fidelity_scores(a, smooth_images(60, 1, shift=60), feature_extractor="unpaired-tiny")
    assert far["fid"] > near["fid"] > 0 and far["kid_x100"] > near["kid_x100"]
    assert near["kid_subset_size"] == 30 and near["kid_std_x100"] > 0


def test_missing_inception_weights_say_where_to_get_them(tmp_path, monkeypatch):
    monkeypatch.delenv("UNPAIRED_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(MissingWeightsError, match="inception-weights.*UNPAIRED_INCEPTION_WEIGHTS"):
        inception_weights(None)
    with pytest.raises(MissingWeightsError, match="no such file"):
        inception_weights(str(tmp_path / "nope.pth"))
    pickled = tmp_path / "code.pth"
    torch.save({"f": np.float64}, pickled)  # needs unpickling of arbitrary objects: refused
    with pytest.raises(MissingWeightsError, match="not a plain PyTorch state dict"):
        inception_weights(str(pickled))


def test_mask_scores_perfect_and_broken():
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    mask = torch.zeros(2, 1, 16, 16)
    mask[:, :, 4:10, 4:10] = 1
    y = x.clone()
    y[:, :, 4:10, 4:10] = -x[:, :, 4:10, 4:10]
    perfect = mask_scores(x, y, mask, predicted=mask, targets=y)
    assert perfect["background_psnr"] >= 99 and perfect["background_ssim"] > 0.99
    assert perfect["attention_iou"] == 1.0 and perfect["target_psnr"] >= 99 and perfect["foreground_change"] > 0.1
    noisy = mask_scores(x, (y + 0.3 * torch.randn_like(y)).clamp(-1, 1), mask, predicted=1 - mask)
    assert noisy["background_psnr"] < 25 and noisy["attention_iou"] == 0.0


def test_evaluate_cli_smoke(tmp_path):
    from conftest import TINY_CYCLEGAN, sets, unpaired

    data, run = tmp_path / "data", tmp_path / "run"
    unpaired("data", "synth", data, "--size", 32, "--n-train", 4, "--n-test", 6)
    unpaired("train", "quick", "--data", data, "--out", run, "--no-progress", *sets(*TINY_CYCLEGAN, "train.steps=1"))
    from PIL import Image

    Image.fromarray(np.pad(np.full((8, 8), 255, np.uint8), 12)).save(tmp_path / "region.png")
    proc = unpaired("evaluate", "--checkpoint", run, "--data", data, "--metrics", "fid,kid,masks,region",
                    "--feature-extractor", "unpaired-tiny", "--json", tmp_path / "r.json", "--region",
                    tmp_path / "region.png")
    assert "background_psnr" in proc.stdout and "outside_psnr" in proc.stdout
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["direction"] for r in rows] == ["AtoB", "BtoA"]
    for r in rows:
        assert r["n_source"] == 6 and r["step"] == 1 and r["fid"] >= 0 and "kid_std_x100" in r
        assert 0 <= r["background_ssim"] <= 1 and "target_psnr" in r and 0 <= r["inside_share"] <= 1
    assert json.loads((tmp_path / "r.json").read_text())[0]["direction"] == "AtoB"
    extractor = tmp_path / "extractor.safetensors"
    unpaired("extractor", "train", "--data", data, "--out", extractor, "--size", 32, "--epochs", 1, "--batch-size", 4)
    unpaired("evaluate", "--checkpoint", run, "--data", data, "--metrics", "kid,accuracy", "--feature-extractor", extractor)
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert 0 <= row["accuracy"] <= 1 and "classifier_test_accuracy" in row and row["kid_x100"] == row["kid_x100"]
    proc = unpaired("evaluate", "--checkpoint", run, "--data", data, "--split", "val", ok=False)
    assert proc.returncode == 2 and "valA" in proc.stderr


def write_brightness_domains(root, n_train=24, n_test=8):
    """Domain A: dark smooth images, domain B: bright ones (a classifier separates them easily)."""
    from PIL import Image

    for split, n in (("train", n_train), ("test", n_test)):
        for domain, shift in (("A", -90), ("B", 90)):
            folder = root / f"{split}{domain}"
            folder.mkdir(parents=True)
            images = smooth_images(n, seed=hash((split, domain)) % 1000, shift=shift)
            for i, image in enumerate(images):
                Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / f"{i:03d}.png")
    return root


def test_trained_extractor_file_scores_and_classifies(tmp_path):
    from conftest import unpaired

    from unpaired.metrics.extractor import domain_accuracy, load_extractor

    data = write_brightness_domains(tmp_path / "data")
    out = tmp_path / "extractor.safetensors"
    unpaired("extractor", "train", "--data", data, "--out", out, "--size", 32, "--epochs", 6, "--batch-size", 8)
    _, info = load_extractor(out)
    assert info["classes"] == ["A", "B"] and info["n_train"] == 48 and info["n_test"] == 16
    assert info["test_accuracy"] >= 0.9, info
    dark, bright = smooth_images(20, 5, shift=-90), smooth_images(20, 6, shift=90)
    assert domain_accuracy(str(out), bright, "B")["accuracy"] >= 0.9
    assert domain_accuracy(str(out), dark, "B")["accuracy"] <= 0.1
    same = fidelity_scores(dark, dark.clone(), feature_extractor=str(out), kid=False)
    assert abs(same["fid"]) < 1e-3  # 512-d features of 20 images: sqrtm round-off
    near = fidelity_scores(dark, smooth_images(20, 7, shift=-90), feature_extractor=str(out))
    far = fidelity_scores(dark, bright, feature_extractor=str(out))
    # The claim: the features tell the domains apart, so two samples of one domain score lower than a sample of
    # each. That is an ordering, with no factor hoped for. (The old `far > 5 * near` had no derivation and failed
    # on a loaded 2-core machine: 480.7 vs 5 x 110.9, and 594.7 vs 5 x 130.6; the extractor's subprocess then ran
    # with torch's default thread count.) The training is seeded and now runs with conftest's fixed thread count,
    # so on one CPU this verdict is the same every run; the ordering held by 4.3x or more in every run reported.
    # KID is unbiased (about 0 for one domain): far must also exceed the near pair's absolute value.
    assert far["fid"] > near["fid"], (far, near)
    assert far["kid_x100"] > abs(near["kid_x100"]), (far, near)


def test_extractor_file_errors(tmp_path, synth_data):
    from safetensors.torch import save_file

    from unpaired.metrics.evaluate import evaluate

    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(1)}, str(plain))
    with pytest.raises(ValueError, match="plain.safetensors: not a feature extractor"):
        fidelity_scores(smooth_images(4, 0), smooth_images(4, 1), feature_extractor=str(plain))
    with pytest.raises(FileNotFoundError, match="missing.safetensors: no such file"):
        fidelity_scores(smooth_images(4, 0), smooth_images(4, 1), feature_extractor=str(tmp_path / "missing.safetensors"))
    with pytest.raises(ValueError, match="--metrics accuracy needs --feature-extractor"):
        evaluate(None, synth_data, metrics=["accuracy"], feature_extractor="unpaired-tiny")


def test_region_scores_see_change_outside_and_inside():
    from unpaired.metrics.masks import region_scores

    x = torch.rand(3, 3, 16, 16) * 2 - 1
    region = torch.zeros(1, 1, 16, 16)
    region[..., 10:14, 4:12] = 1  # a "mouth"
    inside_only = torch.where(region.bool(), -x, x)
    kept = region_scores(x, inside_only, region)
    assert kept["outside_psnr"] >= 99 and kept["outside_change"] == 0 and kept["inside_change"] > 0.1
    everywhere = region_scores(x, -x, region)
    assert everywhere["outside_psnr"] < 20 and everywhere["outside_change"] == pytest.approx(
        float(((x - (-x)).abs() / 2).mean(dim=1)[..., region[0, 0] == 0].mean()), rel=1e-5)
    # the share of all change inside: 1 when only the region changes; about its area (32 / 256) when all of it does
    assert kept["inside_share"] == pytest.approx(1.0) and 0.05 < everywhere["inside_share"] < 0.25
    assert "attention_inside" not in kept  # no masks given
    on_region = region_scores(x, inside_only, region, foreground=region.expand(3, -1, -1, -1))
    spread = region_scores(x, inside_only, region, foreground=torch.full((3, 1, 16, 16), 0.5))
    assert on_region["attention_inside"] == pytest.approx(1.0) and spread["attention_inside"] == pytest.approx(32 / 256)


def test_face_region_finds_dark_eyes_and_the_mouth_that_differs(tmp_path):
    """Synthetic aligned 'faces': dark eyes at fixed places; the mouth open (dark) in one domain only."""
    from unpaired.metrics.face_region import face_region, landmarks, region_mask
    from unpaired.metrics.masks import load_region

    g = torch.Generator().manual_seed(0)
    faces = 0.3 + 0.05 * torch.randn(8, 3, 32, 32, generator=g)
    faces[..., 11:13, 9:12] = -0.8   # left eye, centre row 12 / 32, col 10.5 / 32
    faces[..., 11:13, 21:24] = -0.8  # right eye
    smiling = faces.clone()
    smiling[..., 25:28, 12:20] = -0.9
    points = landmarks({"neutral": faces, "smile": smiling})
    assert points["left_eye"] == pytest.approx((12 / 32, 10.5 / 32), abs=1.5 / 32)
    assert points["right_eye"] == pytest.approx((12 / 32, 22.5 / 32), abs=1.5 / 32)
    assert points["mouth"] == pytest.approx((26.5 / 32, 16 / 32), abs=2 / 32)
    mask = region_mask(points, 32)
    assert mask[12, 10] == mask[12, 22] == mask[26, 16] == 1 and mask[2, 2] == mask[20, 2] == 0
    with pytest.raises(ValueError, match="at least two domains"):
        landmarks({"neutral": faces})

    from PIL import Image
    for name, images in (("trainA", faces), ("trainB", smiling)):
        (tmp_path / name).mkdir()
        for i, im in enumerate(images):
            arr = ((im.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
            Image.fromarray(arr).save(tmp_path / name / f"{i}.png")
    file_mask, file_points, _ = face_region(tmp_path, size=32)
    assert file_points["mouth"] == pytest.approx(points["mouth"], abs=1.5 / 32)
    Image.fromarray((file_mask.numpy() * 255).astype(np.uint8)).save(tmp_path / "region.png")
    assert torch.equal(load_region(tmp_path / "region.png")[0, 0], file_mask)
    Image.new("L", (8, 8), 255).save(tmp_path / "white.png")
    with pytest.raises(ValueError, match="white.png.*both"):
        load_region(tmp_path / "white.png")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="broken.png.*not a readable mask"):
        load_region(tmp_path / "broken.png")


def test_face_oval_holds_eyes_and_mouth_and_leaves_the_corners():
    """The whole-face region ("masks stay on the face"): forehead to chin around the landmarks, not the corners."""
    from unpaired.metrics.face_region import face_oval, face_region

    points = {"left_eye": (0.375, 0.33), "right_eye": (0.375, 0.67), "mouth": (0.8, 0.5)}
    oval = face_oval(points, 64)
    eyes_and_mouth = [(24, 21), (24, 43), (51, 32)]
    assert all(oval[r, c] == 1 for r, c in eyes_and_mouth)
    assert oval[0, 0] == oval[0, 63] == oval[63, 0] == oval[63, 63] == 0
    assert oval[32, 2] == oval[32, 61] == 0          # beyond the cheeks: 1.2 eye distances from the centre line
    assert oval[32, 8] == oval[32, 55] == 1
    assert 0.5 < float(oval.mean()) < 0.75            # a face crop: most of the image, not all of it
    wider = face_oval({**points, "left_eye": (0.375, 0.25), "right_eye": (0.375, 0.75)}, 64)
    assert wider.sum() > oval.sum()                   # scales with the face
    with pytest.raises(ValueError, match="part must be one of"):
        face_region("unused", part="cheeks")


def test_mask_offset_benchmark_finds_a_mask_one_pixel_up():
    """benchmarks/mask_offset.py: a mask drawn one pixel above its object is found by its best move and the
    bright band above; the translation's error next to the object is all in that band."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "mask_offset.py"
    spec = importlib.util.spec_from_file_location("mask_offset", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    truth = np.zeros((16, 16), bool)
    truth[5:10, 4:12] = True
    assert mod._moved(truth, -1, 0)[4:9, 4:12].all() and not mod._moved(truth, -1, 0)[9].any()
    assert not mod._moved(truth, 0, 20).any()                                # no wrap-around
    attention = mod._moved(truth, -1, 0).astype(np.float32)
    image = np.full((16, 16, 3), 100, np.uint8)
    translated = image.copy()
    translated[attention > 0.5] = 200                                        # content wherever the mask is
    moves = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    row = mod.summary("AtoB", mod.image_sums(image, translated, attention, truth, moves), moves)
    assert row["best_move"] == (-1, 0) and row["best_iou"] == 1.0 and row["iou"] == pytest.approx(32 / 48)
    assert row["attention_above"] == 1.0 and row["attention_below"] == 0.0
    assert row["band_error_share"] == pytest.approx(1.0)
