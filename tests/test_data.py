"""Tests for unpaired.data: image reading, folder checks, transforms, datasets (the synthetic set: test_synthetic_data.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from unpaired.data.images import _to_rgb
from torch.utils.data import DataLoader

from unpaired.data import (
    BadImageError,
    EndlessSampler,
    ImageFiles,
    TestTransform,
    TrainTransform,
    UnpairedFolders,
    check_dataset,
    check_folder,
    list_images,
    load_rgb,
    test_split,
    to_pil,
    to_tensor,
)


def _pixels(img: Image.Image) -> np.ndarray:
    assert img.mode == "RGB"
    return np.asarray(img).astype(int)


def _mode(path) -> str:
    with Image.open(path) as img:
        return img.mode


def _save_rgb(path, size=(48, 40), seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


# --------------------------------------------------------------------------- load_rgb


def test_16bit_grey_png_scaled_by_257(tmp_path):
    data = np.array([[0, 65535], [257, 32896]], dtype=np.uint16)
    Image.fromarray(data).save(tmp_path / "g16.png")
    assert _mode(tmp_path / "g16.png") == "I;16"
    out = _pixels(load_rgb(tmp_path / "g16.png"))
    assert out[..., 0].tolist() == [[0, 255], [1, 128]]
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


def test_16bit_big_endian_int32_and_float_modes(tmp_path):
    Image.fromarray(np.array([[0, 65535]], dtype=">u2")).save(tmp_path / "b.tif")
    assert _mode(tmp_path / "b.tif") == "I;16B"
    assert _pixels(load_rgb(tmp_path / "b.tif"))[0, :, 0].tolist() == [0, 255]
    Image.fromarray(np.array([[0, 65535, 70000]], dtype=np.int32)).save(tmp_path / "i.tif")
    assert _pixels(load_rgb(tmp_path / "i.tif"))[0, :, 0].tolist() == [0, 255, 255]
    Image.fromarray(np.array([[-5.0, 300.0, 100.4]], dtype=np.float32)).save(tmp_path / "f.tif")
    assert _pixels(load_rgb(tmp_path / "f.tif"))[0, :, 0].tolist() == [0, 255, 100]


def test_alpha_composited_on_white(tmp_path):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = (255, 0, 0, 0)  # fully transparent red -> white
    rgba[0, 1] = (255, 0, 0, 255)  # opaque red
    rgba[1, 0] = (0, 0, 0, 128)  # half-transparent black -> mid grey
    Image.fromarray(rgba).save(tmp_path / "a.png")
    out = _pixels(load_rgb(tmp_path / "a.png"))
    assert out[0, 0].tolist() == [255, 255, 255]
    assert out[0, 1].tolist() == [255, 0, 0]
    assert abs(out[1, 0] - 127).max() <= 1
    la = Image.fromarray(np.array([[[10, 0], [10, 255]]], dtype=np.uint8))
    la.save(tmp_path / "la.png")
    assert _pixels(load_rgb(tmp_path / "la.png"))[0].tolist() == [[255] * 3, [10] * 3]


def test_palette_with_and_without_transparency(tmp_path):
    img = Image.new("P", (2, 1))
    img.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    img.putpixel((1, 0), 1)
    img.save(tmp_path / "p.png")
    assert _pixels(load_rgb(tmp_path / "p.png"))[0].tolist() == [[255, 0, 0], [0, 255, 0]]
    img.save(tmp_path / "pt.png", transparency=1)
    assert _mode(tmp_path / "pt.png") == "P"
    assert _pixels(load_rgb(tmp_path / "pt.png"))[0].tolist() == [[255, 0, 0], [255, 255, 255]]


def test_grey_bilevel_cmyk_ycbcr(tmp_path):
    Image.new("L", (3, 2), 77).save(tmp_path / "l.png")
    assert (_pixels(load_rgb(tmp_path / "l.png")) == 77).all()
    Image.new("1", (3, 2), 1).save(tmp_path / "one.bmp")
    assert (_pixels(load_rgb(tmp_path / "one.bmp")) == 255).all()
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg", quality=100)
    assert _mode(tmp_path / "cmyk.jpg") == "CMYK"
    assert abs(_pixels(load_rgb(tmp_path / "cmyk.jpg")) - [255, 0, 0]).max() <= 8
    # YCbCr in memory: Pillow 12.3 writes YCbCr TIFFs that it cannot read back, so no file round trip here
    ycc = Image.new("RGB", (8, 8), (200, 30, 40)).convert("YCbCr")
    assert ycc.mode == "YCbCr" and abs(_pixels(_to_rgb(ycc)) - [200, 30, 40]).max() <= 3


def test_exif_orientation_applied(tmp_path):
    img = Image.new("RGB", (10, 20), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 10, 5))  # red band at the top
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    img.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    out = load_rgb(tmp_path / "rot.jpg")
    assert out.size == (20, 10)
    right_column = _pixels(out)[:, -1]
    assert (right_column[:, 0] > 200).all() and (right_column[:, 2] < 60).all()  # top went right


def test_webp_and_bmp(tmp_path):
    src = _save_rgb(tmp_path / "src.png", size=(9, 7))
    Image.open(src).save(tmp_path / "x.webp", lossless=True)
    Image.open(src).save(tmp_path / "x.BMP")
    expected = _pixels(Image.open(src).convert("RGB"))
    assert (_pixels(load_rgb(tmp_path / "x.webp")) == expected).all()
    assert (_pixels(load_rgb(tmp_path / "x.BMP")) == expected).all()


def test_load_rgb_rejects_bad_files(tmp_path):
    _save_rgb(tmp_path / "full.jpg", size=(64, 64))
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.png").write_text("hello, I am not a picture")
    (tmp_path / "empty.png").write_bytes(b"")
    for name in ("cut.jpg", "text.png", "empty.png", "missing.png"):
        with pytest.raises(BadImageError, match=name):
            load_rgb(tmp_path / name)


# --------------------------------------------------------------------------- folder checks


def _folder_with_bad_files(folder):
    folder.mkdir(parents=True)
    _save_rgb(folder / "good1.png", seed=1)
    _save_rgb(folder / "good2.JPG", seed=2)
    _save_rgb(folder / "full.jpg", size=(64, 64), seed=3)
    data = (folder / "full.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (folder / "full.jpg").unlink()
    (folder / "notes.png").write_text("a text file renamed to .png")
    (folder / "readme.txt").write_text("stray text file")
    (folder / ".hidden.png").write_text("hidden files are ignored")
    (folder / "sub").mkdir()
    return folder


def test_list_images_and_check_folder(tmp_path):
    folder = _folder_with_bad_files(tmp_path / "imgs")
    assert [p.name for p in list_images(folder)] == ["good1.png", "good2.JPG", "notes.png", "truncated.jpg"]
    problems = dict((p.name, reason) for p, reason in check_folder(folder))
    assert set(problems) == {"truncated.jpg", "notes.png", "readme.txt"}
    assert "not an image file extension (.txt)" in problems["readme.txt"]
    assert ".png" in problems["readme.txt"]
    assert "truncated" in problems["truncated.jpg"] or "decode" in problems["truncated.jpg"]
    assert check_folder(folder, workers=1) == check_folder(folder)


def test_check_dataset_reports_missing_folder(tmp_path):
    (tmp_path / "trainA").mkdir()
    _save_rgb(tmp_path / "trainA" / "a.png")
    report = check_dataset(tmp_path)
    assert report["trainA"] == []
    assert report["testB"] == [(tmp_path / "testB", "missing folder")]


def _make_dataset(root, n_A=3, n_B=5, split="train", size=(40, 36)):
    for domain, n in (("A", n_A), ("B", n_B)):
        (root / f"{split}{domain}").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            _save_rgb(root / f"{split}{domain}" / f"{domain.lower()}{i}.png", size=size, seed=10 * i + ord(domain))
    return root


def test_unpaired_folders_lists_every_bad_file(tmp_path):
    root = _make_dataset(tmp_path)
    _folder_with_bad_files(tmp_path / "other")
    for name in ("truncated.jpg", "notes.png"):
        (tmp_path / "other" / name).rename(tmp_path / "trainA" / name)
    (tmp_path / "trainB" / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(BadImageError) as info:
        UnpairedFolders(root, "train")
    message = str(info.value)
    for name in ("truncated.jpg", "notes.png", "junk.png"):
        assert name in message
    assert len(message.strip().splitlines()) >= 5  # header + one line per file + hint
    assert "data.skip_bad_files=true" in message

    with pytest.warns(UserWarning) as record:
        ds = UnpairedFolders(root, "train", skip_bad_files=True)
    warned = " ".join(str(w.message) for w in record)
    assert all(name in warned for name in ("truncated.jpg", "notes.png", "junk.png"))
    assert [p.name for p in ds.paths_A] == ["a0.png", "a1.png", "a2.png"]
    assert len(ds.paths_B) == 5 and len(ds) == 5
    seen = {ds[i]["A_path"] for i in range(len(ds))} | {ds[i]["B_path"] for i in range(20)}
    assert not any(name in path for path in seen for name in ("truncated", "notes", "junk"))


def test_missing_or_empty_folder_is_named(tmp_path):
    _make_dataset(tmp_path)
    with pytest.raises(FileNotFoundError, match="testA"):
        UnpairedFolders(tmp_path, "test")
    (tmp_path / "testA").mkdir()
    (tmp_path / "testB").mkdir()
    with pytest.raises(FileNotFoundError, match="testA"):
        UnpairedFolders(tmp_path, "test")


# --------------------------------------------------------------------------- transforms


def test_train_transform_shape_range_and_determinism():
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8))
    tf = TrainTransform(load_size=40, crop_size=32)
    out = tf(img, torch.Generator().manual_seed(3))
    assert out.shape == (3, 32, 32) and out.dtype == torch.float32
    assert out.min() >= -1 and out.max() <= 1 and out.min() < -0.9 and out.max() > 0.9
    assert torch.equal(out, tf(img, torch.Generator().manual_seed(3)))
    outs = [tf(img, torch.Generator().manual_seed(s)) for s in range(6)]
    assert any(not torch.equal(outs[0], o) for o in outs[1:])
    # flip=False draws no coin: only the two crop offsets are taken from the generator
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    TrainTransform(40, 32, flip=False)(img, g1)
    torch.randint(0, 9, (1,), generator=g2), torch.randint(0, 9, (1,), generator=g2)
    assert torch.equal(g1.get_state(), g2.get_state())
    with pytest.raises(ValueError):
        TrainTransform(load_size=30, crop_size=32)
    assert TestTransform(24, "bilinear")(img).shape == (3, 24, 24)


def test_vertical_flip_switch_flips_half_the_crops_and_draws_nothing_when_off():
    """data.vflip: the same crop as without it, upside down on some draws (never mirrored otherwise)."""
    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 40, 3), dtype=np.uint8))
    plain, upside = TrainTransform(40, 32, flip=False), TrainTransform(40, 32, flip=False, vflip=True)
    flipped = 0
    for seed in range(12):
        base = plain(img, torch.Generator().manual_seed(seed))
        out = upside(img, torch.Generator().manual_seed(seed))
        assert torch.equal(out, base) or torch.equal(out, base.flip(1))
        flipped += int(not torch.equal(out, base))
    assert 2 <= flipped <= 10                     # p = 0.5 over 12 draws (seeded: the same count every run)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    TrainTransform(40, 32, vflip=False)(img, g1)
    TrainTransform(40, 32)(img, g2)
    assert torch.equal(g1.get_state(), g2.get_state())



def test_vflip_setting_reaches_the_training_images(tmp_path):
    """--set data.vflip=true: the training dataset's samples are the same crops, some of them upside down."""
    from unpaired.config import read_preset, resolve
    from unpaired.data.sources import train_dataset

    root = _make_dataset(tmp_path, n_A=2, n_B=2, size=(32, 32))
    sets = ["data.load_size=32", "data.crop_size=32", "data.flip=false", f"data.root={root}"]
    plain = train_dataset(resolve(read_preset("quick"), sets))
    upside = train_dataset(resolve(read_preset("quick"), sets + ["data.vflip=true"]))
    flipped = 0
    for i in range(8):
        a, b = plain[i]["A"], upside[i]["A"]
        assert torch.equal(a, b) or torch.equal(b, a.flip(1))
        flipped += int(not torch.equal(a, b))
    assert flipped > 0


def test_to_tensor_and_to_pil():
    img = Image.new("RGB", (3, 2), (255, 0, 128))
    t = to_tensor(img)
    assert t.shape == (3, 2, 3)
    assert torch.allclose(t[:, 0, 0], torch.tensor([1.0, -1.0, 128 / 255 * 2 - 1]), atol=1e-6)
    # truncating cast like the official tensor2im: 254.6 -> 254, out of range clamps
    t = torch.tensor([254.6 / 255 * 2 - 1, -3.0, 3.0]).view(3, 1, 1)
    assert np.asarray(to_pil(t))[0, 0].tolist() == [254, 0, 255]
    assert to_pil(torch.zeros(1, 4, 5)).size == (5, 4)


# --------------------------------------------------------------------------- datasets & sampler


def test_samples_are_deterministic_per_index(tmp_path):
    root = _make_dataset(tmp_path, n_A=1, n_B=3)
    tf = TrainTransform(load_size=40, crop_size=24)
    ds1, ds2 = UnpairedFolders(root, transform=tf, seed=5), UnpairedFolders(root, transform=tf, seed=5)
    assert len(ds1) == 3
    for i in (0, 4, 1000):
        a, b = ds1[i], ds2[i]
        assert torch.equal(a["A"], b["A"]) and torch.equal(a["B"], b["B"])
        assert (a["A_path"], a["B_path"], a["index"]) == (b["A_path"], b["B_path"], i)
    # one A image: different i must still give different crops/flips
    crops = [ds1[i]["A"] for i in range(6)]
    assert any(not torch.equal(crops[0], c) for c in crops[1:])
    assert not torch.equal(ds1[0]["A"], UnpairedFolders(root, transform=tf, seed=6)[0]["A"])
    with pytest.raises(IndexError):
        ds1[-1]


def test_each_epoch_is_a_new_permutation_of_A(tmp_path):
    root = _make_dataset(tmp_path, n_A=6, n_B=2)
    ds = UnpairedFolders(root, seed=0, check=False)
    n = len(ds)
    epochs = [[ds.indices(e * n + p)[0] for p in range(n)] for e in range(4)]
    assert all(sorted(order) == list(range(6)) for order in epochs)
    assert len({tuple(order) for order in epochs}) > 1
    picks_B = {ds.indices(i)[1] for i in range(40)}
    assert picks_B == {0, 1}


def _batches(loader, count):
    iterator = iter(loader)
    return [next(iterator) for _ in range(count)]


def test_endless_sampler_resume_matches_uninterrupted_run(tmp_path):
    root = _make_dataset(tmp_path, n_A=3, n_B=4)
    ds = UnpairedFolders(root, transform=TrainTransform(40, 32), seed=1)
    batch = 2
    full = _batches(DataLoader(ds, batch_size=batch, sampler=EndlessSampler()), 7)
    resumed = _batches(DataLoader(ds, batch_size=batch, sampler=EndlessSampler(start=4 * batch)), 3)
    for a, b in zip(full[4:], resumed):
        assert a["index"].tolist() == b["index"].tolist()
        assert torch.equal(a["A"], b["A"]) and torch.equal(a["B"], b["B"])
        assert a["A_path"] == b["A_path"] and a["B_path"] == b["B_path"]
    assert full[6]["index"].tolist() == [12, 13]  # crosses several epochs of length 4
    workers = _batches(DataLoader(ds, batch_size=batch, sampler=EndlessSampler(start=4 * batch), num_workers=2), 3)
    assert all(torch.equal(a["A"], b["A"]) and torch.equal(a["B"], b["B"]) for a, b in zip(resumed, workers))


def test_endless_sampler_ranks_partition_counters():
    def take(sampler, n):
        it = iter(sampler)
        return [next(it) for _ in range(n)]

    assert take(EndlessSampler(start=3), 3) == [3, 4, 5]
    ranks = [take(EndlessSampler(start=2, rank=r, world_size=3), 4) for r in range(3)]
    assert ranks[1] == [7, 10, 13, 16]
    assert sorted(sum(ranks, [])) == list(range(6, 18))
    with pytest.raises(ValueError):
        EndlessSampler(rank=2, world_size=2)


def test_image_files_and_test_split(tmp_path):
    root = _make_dataset(tmp_path, n_A=3, n_B=2, split="test", size=(30, 20))
    ds = test_split(root, "A", 16)
    assert [Path(item["path"]).name for item in ds] == ["a0.png", "a1.png", "a2.png"]
    assert ds[0]["image"].shape == (3, 16, 16)
    plain = ImageFiles([root / "testB" / "b1.png"])
    assert plain[0]["image"].shape == (3, 20, 30)
    assert len(ImageFiles(root / "testB", TestTransform(8))) == 2
    with pytest.raises(FileNotFoundError, match="testC"):
        test_split(root, "C", 16)
