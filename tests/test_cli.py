"""The command line as a user runs it: real subprocesses, tiny settings."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, TINY_CYCLEGAN, sets, unpaired


def mixed_images(folder: Path) -> dict:
    """Inputs of odd sizes and modes -> their expected output size."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    sizes = {}
    specs = [("wide.jpg", (45, 30), "RGB"), ("square.png", (64, 64), "RGB"), ("odd.bmp", (33, 17), "L"),
             ("alpha.png", (21, 50), "RGBA"), ("tiny.webp", (5, 7), "RGB")]
    for name, (w, h), mode in specs:
        channels = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
        array = rng.integers(0, 255, size=(h, w, channels), dtype=np.uint8).squeeze()
        Image.fromarray(array, mode=mode).save(folder / name)
        sizes[Path(name).stem] = (w, h)
    return sizes


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data, run = root / "data", root / "run"
    unpaired("data", "synth", data, "--size", 32, "--n-train", 6, "--n-test", 3)
    unpaired("train", "quick", "--data", data, "--out", run, "--no-progress",
             *sets(*TINY_CYCLEGAN, "train.steps=2"))
    return root, data, run


def test_train_writes_a_run_folder(trained_run):
    _, _, run = trained_run
    for name in ("config.yaml", "log.txt", "stats.jsonl", "checkpoints/step_0000002.pt",
                 "generators/AtoB.safetensors", "generators/BtoA.json", "samples/step_0000002.png"):
        assert (run / name).exists(), name


def test_translate_any_size_one_direction(trained_run):
    root, _, run = trained_run
    sizes = mixed_images(root / "mixed")
    out = root / "out"
    proc = unpaired("translate", "--checkpoint", run, "--input", root / "mixed", "--output", out,
                    "--direction", "BtoA", "--batch-size", 2)
    assert "translated 5 image(s)" in proc.stdout
    for stem, size in sizes.items():
        assert Image.open(out / f"{stem}.png").size == size


def test_translate_globs_and_overview(trained_run):
    root, data, run = trained_run
    out = root / "out_glob"
    unpaired("translate", "--checkpoint", run, "--input", f"{data}/testA/*.png", "--output", out,
             "--overview", out / "overview.png")
    assert len(list(out.glob("*.png"))) == 3 + 1
    assert Image.open(out / "overview.png").size[0] > 3 * 96


def test_compare_models_side_by_side(trained_run):
    from unpaired.inference import Translation
    from unpaired.visualize import comparison

    root, data, run = trained_run
    out = root / "compare.png"
    proc = unpaired("compare", "--checkpoint", run, run, "--names", "first,second", "--input", data / "testA",
                    "--output", out, "--cell", 40)
    assert "compared 2 model(s) on 3 image(s)" in proc.stdout
    assert Image.open(out).size == (3 * 44 + 4, 16 + 3 * 44 + 4)  # input | first | second, 3 rows
    proc = unpaired("compare", "--checkpoint", run, run, "--names", "one", "--input", data / "testA",
                    "--output", out, ok=False)
    assert proc.returncode == 2 and "--names gives 1 names for 2 checkpoints" in proc.stderr
    # a model with attention gets an attention column after its translation
    paths = sorted((data / "testA").glob("*.png"))[:2]
    plain = [Translation(image=Image.new("RGB", (32, 32))) for _ in paths]
    masked = [Translation(image=Image.new("RGB", (32, 32)), attention=np.ones((32, 32), np.float32)) for _ in paths]
    sheet = comparison(paths, {"plain": plain, "masked": masked}, cell=40)
    assert sheet.size == (4 * 44 + 4, 16 + 2 * 44 + 4)
    assert sheet.getpixel((4 + 3 * 44 + 20, 16 + 4 + 20)) == (255, 255, 255)  # the all-ones mask, white


def test_translate_reports_unreadable_inputs(trained_run, tmp_path):
    root, _, run = trained_run
    (tmp_path / "good.png").write_bytes((root / "data" / "testA" / "0000.png").read_bytes())
    (tmp_path / "broken.png").write_bytes(b"not an image at all")
    proc = unpaired("translate", "--checkpoint", run, "--input", tmp_path, "--output", tmp_path / "o", ok=False)
    # issue 18 (item 7): one line names the bad file and why, the others are translated, the exit status is 1
    assert proc.returncode == 1 and "broken.png: not a readable image" in proc.stderr
    assert (tmp_path / "o" / "good.png").exists() and not (tmp_path / "o" / "broken.png").exists()


def test_dry_run_and_help():
    proc = unpaired("train", "quick", "--dry-run", "--set", "train.steps=9")
    assert "steps: 9" in proc.stdout
    proc = unpaired("train", "--help")
    assert "quick" in proc.stdout and "presets" in proc.stdout


def test_config_error_exit_code():
    proc = unpaired("train", "quick", "--dry-run", "--set", "train.stepz=3", ok=False)
    assert proc.returncode == 2 and "train.stepz" in proc.stderr and "train.steps" in proc.stderr


def test_existing_run_needs_resume(trained_run):
    _, data, run = trained_run
    proc = unpaired("train", "quick", "--data", data, "--out", run, *sets(*TINY_CYCLEGAN), ok=False)
    assert proc.returncode == 2 and "--resume" in proc.stderr


def test_data_check_lists_bad_files(tmp_path):
    folder = tmp_path / "trainA"
    folder.mkdir()
    Image.new("RGB", (8, 8)).save(folder / "ok.png")
    (folder / "notes.txt").write_text("hello")
    (folder / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 20)
    proc = unpaired("data", "check", tmp_path, ok=False)
    assert proc.returncode == 1
    assert "notes.txt" in proc.stdout and "cut.jpg" in proc.stdout and "ok.png" not in proc.stdout


def test_data_check_reads_a_plain_folder_of_photos(tmp_path):
    """Not a training root: every image in it and its sub-folders is read, and only those problems are listed."""
    photos = tmp_path / "photos"
    (photos / "2024").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(photos / "a.jpg")
    Image.new("RGB", (8, 8)).save(photos / "2024" / "b.png")
    proc = unpaired("data", "check", photos)
    assert "plain folder" in proc.stdout
    assert "every one of the 2 image(s) is usable" in proc.stdout and "missing folder" not in proc.stdout
    (photos / "2024" / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 20)
    proc = unpaired("data", "check", photos, tmp_path / "nowhere", ok=False)
    assert proc.returncode == 1 and "cut.jpg" in proc.stdout and "nowhere: not a folder" in proc.stdout
    assert "a.jpg" not in proc.stdout and "b.png" not in proc.stdout


def test_refused_train_leaves_no_run_folder(tmp_path):
    (tmp_path / "data" / "trainB").mkdir(parents=True)  # no trainA
    run = tmp_path / "run"
    proc = unpaired("train", "quick", "--data", tmp_path / "data", "--out", run, *sets(*TINY_CYCLEGAN), ok=False)
    assert proc.returncode == 2 and "trainA" in proc.stderr
    assert not run.exists()
    # the same through the API: the Trainer checks the data before it writes
    from unpaired.config import read_preset, resolve
    from unpaired.training.trainer import Trainer

    cfg = resolve(read_preset("quick"), [f"data.root={tmp_path / 'data'}", *TINY_CYCLEGAN])
    with pytest.raises((FileNotFoundError, ValueError), match="trainA"):
        Trainer(cfg, run, progress=False)
    assert not run.exists()


def test_training_refuses_bad_files_up_front(tmp_path):
    data = tmp_path / "data"
    unpaired("data", "synth", data, "--size", 32, "--n-train", 4, "--n-test", 2)
    (data / "trainB" / "zz_broken.png").write_bytes(b"garbage")
    proc = unpaired("train", "quick", "--data", data, "--out", tmp_path / "run", *sets(*TINY_CYCLEGAN, "train.steps=1"),
                    ok=False)
    assert proc.returncode == 1 and "zz_broken.png" in proc.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()
    proc = unpaired("train", "quick", "--data", data, "--out", tmp_path / "run", "--no-progress",
                    *sets(*TINY_CYCLEGAN, "train.steps=1", "data.skip_bad_files=true"))
    assert "zz_broken.png" in proc.stderr  # the warning names it


SHARED_FACES = REPO.parent / "shared" / "data" / "faces-neutral2smile" / "testA"


@pytest.mark.skipif(not SHARED_FACES.is_dir(), reason="../shared/data not beside the repository")
def test_translate_real_photos_of_mixed_sizes_with_masks(tmp_path):
    """AttentionGAN on face photos resized to several odd sizes: sizes kept, every mask and the union written."""
    data, run = tmp_path / "data", tmp_path / "run"
    unpaired("data", "synth", data, "--size", 32, "--n-train", 4, "--n-test", 2)
    unpaired("train", "quick", "--data", data, "--out", run, "--no-progress",
             *sets("model.ngf=8", "model.ndf=8", "model.n_blocks=1", "data.load_size=36", "data.crop_size=32",
                   "data.num_workers=0", "train.steps=1", "train.batch_size=2", "train.device=cpu"))
    photos = tmp_path / "photos"
    photos.mkdir()
    sizes = {}
    for path, size in zip(sorted(SHARED_FACES.glob("*.jpg"))[:3], [(128, 128), (97, 61), (50, 130)]):
        Image.open(path).convert("RGB").resize(size).save(photos / f"{path.stem}.png")
        sizes[path.stem] = size
    out = tmp_path / "out"
    unpaired("translate", "--checkpoint", run, "--input", photos, "--output", out, "--save-attention")
    for stem, size in sizes.items():
        assert Image.open(out / f"{stem}.png").size == size
        assert Image.open(out / f"{stem}_attention.png").size == size
        assert [Image.open(out / f"{stem}_attention_{k}.png").size for k in range(1, 11)] == [size] * 10
