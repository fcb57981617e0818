"""Tiled inference (unpaired.tiling): exact tiling equals whole-image inference for every model family; the fast
mode's error; a real `translate` of an image that needs tiling stays within its memory budget; pixel bombs."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO, THREAD_ENV, perturbed_generator
from unpaired.models import get_model
from unpaired.models.base import InputSize
from unpaired.runfolder import ModelCard, save_generator
from unpaired.tiling import plan
from unpaired.tiling.plan import MIN_CORE, receptive_halo
from unpaired.nn.lean import lean_inference
from unpaired.tiling.stream import decoder_halo, feature_bytes
from unpaired.tiling.runner import ArraySource, Canvas, grid, run_exact, run_fast

FACE = REPO.parent / "shared" / "data" / "faces-neutral2smile" / "testA" / "al_gore_0001.jpg"
if not FACE.exists():  # the inputs are a real photo (statistics worth tiling); a clone without ../shared skips loudly
    pytest.skip(f"{FACE} not found (../shared/data)", allow_module_level=True)

# (registry name, model args, extra inputs): tiny networks, every global-statistics kind among them
FAMILIES = {
    "cyclegan": ("cyclegan", dict(ngf=4, n_blocks=1), ()),
    "attentiongan": ("attentiongan", dict(ngf=4, n_blocks=1, n_masks=4), ()),
    "attentiongan-s1": ("attentiongan-s1", dict(ngf=4, n_blocks=1, norm="instance"), ()),
    "ugatit-light": ("ugatit-light", dict(ngf=4, n_blocks=1), ()),
    "attentiongan-multi": ("attentiongan-multi", dict(ngf=4, n_blocks=1, c_dim=3), (torch.tensor([[0.0, 1.0, 0.0]]),)),
}


generator = perturbed_generator


def face(width, height) -> np.ndarray:
    return np.asarray(Image.open(FACE).convert("RGB").resize((width, height), Image.BICUBIC))


@pytest.mark.parametrize("family", list(FAMILIES))
@torch.no_grad()
def test_exact_tiling_equals_whole_image(family):
    name, kwargs, extra = FAMILIES[family]
    g = generator(name, **kwargs)
    source = ArraySource(face(104, 88), 4, "cpu")
    whole = g(source.read((0, 88, 0, 104)), *extra)
    halo = receptive_halo(g, extra)
    tiles = grid(88, 104, 36, halo)
    assert len(tiles) == 9 and sum(t.box != (0, 88, 0, 104) for t in tiles) >= 4  # tiles with halos, not the whole
    out = run_exact(g, source, tiles, extra, Canvas(88, 104, uint8=False)).output()
    assert (out.image - whole.image).abs().max() <= 1e-4
    if whole.attention is not None:
        assert (out.attention - whole.attention).abs().max() <= 1e-4
    if whole.heatmap is not None:
        assert (out.heatmap - whole.heatmap).abs().max() <= 1e-4


@pytest.mark.parametrize("family", ["cyclegan", "attentiongan", "attentiongan-s1", "ugatit-light",
                                    "attentiongan-multi"])
@torch.no_grad()
def test_streamed_exact_tiling_equals_whole_image(family, monkeypatch):
    """The exact mode with the encoder streamed through files (stream.py): two residual blocks (a file written
    and read per block), each stage over several tiles (decoders 3 × 3), a batch of 2 (the float path); equal
    within 1e-4, the encoder's own forward back afterwards, with the blocks (U-GAT-IT light: its decoder's AdaLIN
    blocks too) streamed layer by layer or by run_exact's passes. A stem, down-sampling, decoder, convolution or
    block halo short of its stage's reach breaks it (so the test can fail)."""
    from unpaired.tiling import Plan, run_tiled, stream

    name, kwargs, one = FAMILIES[family]
    g = generator(name, **dict(kwargs, n_blocks=2))
    x = torch.from_numpy(np.stack([face(104, 88), face(104, 88)[::-1].copy()])).permute(0, 3, 1, 2).float() / 127.5 - 1
    extra = tuple(e.expand(2, -1) for e in one)  # the multi-domain model's target label, for both images
    whole = g(x, *extra)
    chosen = Plan("exact", core=36, halo=decoder_halo(g, one), streamed=True)
    out = run_tiled(g, x, chosen, extra)
    assert (out.image - whole.image).abs().max() <= 1e-4
    if whole.attention is not None:
        assert (out.attention - whole.attention).abs().max() <= 1e-4
    if whole.heatmap is not None:
        assert (out.heatmap - whole.heatmap).abs().max() <= 1e-4
    assert "forward" not in vars(g.encoder)
    with lean_inference(g):  # inside lean_inference (Translator's), its own encoder forward comes back after
        lean_forward = vars(g.encoder).get("forward")
        assert (run_tiled(g, x, chosen, extra).image - whole.image).abs().max() <= 1e-4
        assert lean_forward is not None and vars(g.encoder).get("forward") is lean_forward
    short = Plan("exact", core=36 + 16, halo=chosen.halo - 8, streamed=True)  # under the reach; tiles as above
    assert (run_tiled(g, x, short, extra).image - whole.image).abs().max() > 1e-3
    smaller = Plan("exact", core=16, halo=chosen.halo, streamed=True)  # more than one tile a block
    for name in ("STEM_CONV_HALO", "DOWN_HALO"):  # the stem's two stages (through a 1/2-resolution file), each short
        kept = getattr(stream, name)
        monkeypatch.setattr(stream, name, 0)
        assert (run_tiled(g, x, smaller, extra).image - whole.image).abs().max() > 1e-3
        monkeypatch.setattr(stream, name, kept)
    monkeypatch.setattr(stream, "CONV_HALO", 0)  # each block's convolutions reach 1 px
    assert (run_tiled(g, x, smaller, extra).image - whole.image).abs().max() > 1e-3
    assert stream.streams_decoder(g) == (family == "ugatit-light")  # its AdaLIN blocks layer by layer too
    for block in [*g.encoder.blocks, *getattr(g, "decoder", ())]:  # by run_exact's passes instead: the same result
        block.by_layers = False
    assert not stream.streams_decoder(g)
    smaller = Plan("exact", core=16, halo=decoder_halo(g, one), streamed=True)  # U-GAT-IT: its decoder blocks' halo
    assert (run_tiled(g, x, smaller, extra).image - whole.image).abs().max() <= 1e-4
    monkeypatch.setattr(stream, "BLOCK_HALO", 1)  # the blocks reach 2 px
    assert (run_tiled(g, x, smaller, extra).image - whole.image).abs().max() > 1e-3


# The fast mode's mean error (in [-1, 1] units; ×127.5 for 0-255) with statistics from 1/4 of the pixels, measured
# here for each family (one thread, 2026-12-07): these perturbed random weights amplify the statistics' change far
# more than a trained model (docs/benchmarks.md). The bound is 1.5× it (the max is bounded by the output range, 2).
FAST_MEAN_ERROR = {"cyclegan": 0.158, "attentiongan": 0.098, "attentiongan-s1": 0.159, "ugatit-light": 0.188,
                   "attentiongan-multi": 0.234}


@pytest.mark.parametrize("family", list(FAMILIES))
@torch.no_grad()
def test_fast_mode_error_is_that_of_its_statistics(family):
    """With the receptive-field halo the tiles add no error (a full-size 'preview' gives the whole image's
    statistics, and then fast == whole); with a preview of 1/4 of the pixels the error is that of the shrunk
    statistics, bounded per family (FAST_MEAN_ERROR)."""
    name, kwargs, extra = FAMILIES[family]
    g = generator(name, **kwargs)
    source = ArraySource(face(104, 88), 4, "cpu")
    whole = g(source.read((0, 88, 0, 104)), *extra)
    tiles = grid(88, 104, 36, receptive_halo(g, extra))
    same = run_fast(g, source, tiles, extra, Canvas(88, 104, uint8=False), preview_pixels=88 * 104).output()
    assert (same.image - whole.image).abs().max() <= 1e-4
    fast = run_fast(g, source, tiles, extra, Canvas(88, 104, uint8=False), preview_pixels=88 * 104 // 4).output()
    error = (fast.image - whole.image).abs()
    assert 0 < error.mean() <= 1.5 * FAST_MEAN_ERROR[family]


def test_plan_tiles_only_over_the_budget():
    g = generator("cyclegan", ngf=4, n_blocks=1)
    assert plan(g, 64, 64, budget=64 * 1024 ** 3).mode == "whole"
    tight = plan(g, 4000, 4000, budget=1, mode="fast")  # nothing fits: the smallest sensible tiles, said
    assert tight.mode == "fast" and tight.halo % 4 == 0 and tight.core == max(MIN_CORE, 2 * tight.halo)
    assert tight.over > 0 and "over the budget by about" in tight.describe(4000, 4000)
    assert "tiling 4000x4000 into" in tight.describe(4000, 4000)
    auto = plan(g, 4000, 4000, budget=1)  # a streamable generator: exact by default, with the decoders' halo
    assert auto.mode == "exact" and auto.streamed and auto.halo == decoder_halo(g) < receptive_halo(g)
    assert "exact mode, the encoder streamed through files" in auto.describe(4000, 4000)
    u = generator("ugatit-light", ngf=4, n_blocks=1)
    assert plan(u, 4000, 4000, budget=1).streamed
    u.streamable = False  # a generator that cannot stream: the fast mode
    assert plan(u, 4000, 4000, budget=1).mode == "fast"


def test_plan_without_disk_room_does_not_stream(monkeypatch):
    """The two feature files of the streamed exact mode must fit in the temp directory, else auto takes the fast
    mode (and --tiling exact the slower passes), and the plan line says why."""
    import shutil

    g = generator("attentiongan", ngf=4, n_blocks=1, n_masks=4)
    monkeypatch.setattr(shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(10 ** 12, 10 ** 12, 2 * 1024 ** 3))
    needed = 3 * feature_bytes(g, 20000, 20000)  # 3 × 1.6 GB
    auto, exact = plan(g, 20000, 20000, budget=1), plan(g, 20000, 20000, budget=1, mode="exact")
    assert needed > 1024 ** 3 and auto.mode == "fast" and exact.mode == "exact" and not exact.streamed
    assert "no room to stream the exact mode" in auto.describe(20000, 20000)
    assert plan(g, 2000, 2000, budget=1).streamed  # 3 × 16 MB: room


def test_plan_counts_the_full_size_outputs():
    """The same image and budget: keeping 10 attention maps (uint8, 8000² = 640 MB) leaves less room for the
    tiles than keeping none; a budget that the buffers alone fill is reported as overshot, not met by
    ever-smaller tiles."""
    from unpaired.tiling.plan import kept_bytes, resident_bytes

    g = generator("attentiongan", ngf=4, n_blocks=1, n_masks=10)
    base = resident_bytes()
    budget = base + 24 * 4000 * 4000 + 400 * 1024 ** 2
    plain, masked = (plan(g, 4000, 4000, budget=budget, masks=k) for k in (0, 10))
    assert masked.kept - plain.kept == kept_bytes(masks=10) * 4000 ** 2 - kept_bytes() * 4000 ** 2 > 0
    assert masked.core < plain.core and masked.tiles > plain.tiles and not plain.over
    full = plan(g, 8000, 8000, budget=budget, masks=10)  # the 8000² buffers alone are over the budget
    assert full.over > 0 and full.core == max(MIN_CORE, 2 * full.halo)
    floats = plan(g, 1000, 1000, budget=base + 200 * 1024 ** 2, uint8=False, batch=4, masks=10)  # run_any_size's
    assert floats.kept == kept_bytes(uint8=False, batch=4, masks=10) * 1000 ** 2 == 4 * 4 * 13 * 1000 ** 2


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiling_run")
    spec = get_model("attentiongan")
    torch.manual_seed(0)
    args = spec.args(ngf=8, n_blocks=2, n_masks=4)
    card = ModelCard(model="attentiongan", args=vars(args), direction="AtoB",
                     input_size=InputSize(train=64, multiple=4))
    save_generator(folder / "generators", card, spec.build_generator(args).eval())
    return folder


def translate_measured(*args, cwd) -> tuple:
    """`unpaired translate ARGS` in a fresh process -> (exit status, stdout, stderr, its peak RSS in MB).

    The peak is the process's own VmHWM, not ``ru_maxrss``: Linux folds the memory the process had before
    ``exec`` into ``ru_maxrss``, and a child that subprocess starts with vfork had pytest's (over 1.5 GB late in
    the suite): the test then failed in the whole suite and passed alone."""
    code = ("import sys; from unpaired.cli import main; rc = main(sys.argv[1:]); "
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]; "
            "print('PEAK', int(hwm) // 1024, file=sys.stderr); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, "translate", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=600, env={**os.environ, **THREAD_ENV, "PYTHONPATH": str(REPO)})
    peak = int(proc.stderr.split("PEAK ")[-1].split()[0])
    return proc.returncode, proc.stdout, proc.stderr, peak


def test_translate_tiles_a_large_image_within_its_budget_and_refuses_a_bomb(tiny_run, tmp_path):
    """2000×2000 with a tiny AttentionGAN: the command's own peak (torch, a small image) is ~0.75 GB, whole-image
    inference of this image needs ~0.8 GB more; under --max-memory 1200M it is tiled (exact, streamed), the peak
    stays under the budget (+10 %: glibc keeps freed blocks), well below the whole-image run's, and the output
    is the whole-image run's. The same folder holds a
    'bomb' over --max-pixels: one line names it, the other image is translated, exit status 1."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.fromarray(face(2000, 2000)).save(inputs / "big.png")
    Image.new("RGB", (3000, 2000)).save(inputs / "bomb.png")
    rc, out, err, peak = translate_measured("--checkpoint", tiny_run, "--input", inputs, "--output", tmp_path / "out",
                                            "--max-memory", "1200M", "--max-pixels", 5_000_000, "--save-attention",
                                            cwd=tmp_path)
    assert rc == 1
    assert "tiling 2000x2000 into" in out and "exact mode, the encoder streamed through files" in out
    refusals = [line for line in err.splitlines() if "bomb.png" in line]
    assert len(refusals) == 1 and "over the limit of 5000000 pixels" in refusals[0] and "Traceback" not in err
    assert Image.open(tmp_path / "out" / "big.png").size == (2000, 2000)
    assert Image.open(tmp_path / "out" / "big_attention_4.png").size == (2000, 2000)
    assert not (tmp_path / "out" / "bomb.png").exists()
    assert peak <= 1200 * 1.1, f"peak RSS {peak} MB over the 1200 MB budget"
    rc, out, err, whole_peak = translate_measured("--checkpoint", tiny_run, "--input", inputs / "big.png",
                                                  "--output", tmp_path / "whole", "--tiling", "whole", cwd=tmp_path)
    assert rc == 0 and whole_peak > peak + 100, (whole_peak, peak)
    tiled, whole = (np.asarray(Image.open(tmp_path / d / "big.png"), np.int16) for d in ("out", "whole"))
    assert np.abs(tiled - whole).max() <= 1  # exact: at most one rounding step of the uint8 output


def test_a_full_disk_fails_one_image_with_a_line_and_keeps_the_others(tiny_run, tmp_path, monkeypatch, capsys):
    """The streamed exact mode's feature files cannot be written (ENOSPC, simulated): that image gets one line
    naming it, the temp directory and the ways out; the small image after it is translated whole (the memory the
    big one left in the process is handed back before its plan); exit status 1."""
    import errno
    import tempfile

    from unpaired.cli import main
    from unpaired.tiling.plan import resident_bytes

    class FullDisk:  # a temporary file on a disk that fills up at the first write
        def __init__(self, *args, **kwargs):
            self.file = real(*args, **kwargs)

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.file, name)

    real = tempfile.TemporaryFile
    monkeypatch.setattr(tempfile, "TemporaryFile", FullDisk)
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.fromarray(face(2400, 2400)).save(inputs / "big.png")  # tiles: ~1 GB whole
    Image.fromarray(face(64, 64)).save(inputs / "small.png")  # whole: no file
    budget = resident_bytes() + 500 * 1024 ** 2  # the command's own growth (the model, the probe) is ~0.15 GB
    rc = main(["translate", "--checkpoint", str(tiny_run), "--input", str(inputs), "--output", str(tmp_path / "out"),
               "--max-memory", str(budget), "--batch-size", "2"])  # one batch: the failure does not sink small.png
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if "big.png" in line]
    assert rc == 1 and len(lines) == 1 and "No space left on device" in lines[0] and "TMPDIR" in lines[0], err
    assert sum("big.png: tiling" in line for line in out.splitlines()) == 1, out  # tried once, not again alone
    assert "Traceback" not in err and (tmp_path / "out" / "small.png").exists()
    assert not (tmp_path / "out" / "big.png").exists()


def test_a_batch_that_fails_is_tried_image_by_image(monkeypatch):
    """``translate_batch(on_error=...)``: a batch of one size that fails (out of memory at batch 2, simulated) is
    tried again one image at a time; an image that fails alone is reported to on_error and the rest is kept.
    Without on_error the error goes up."""
    import unpaired.inference as inference

    name, kwargs, _ = FAMILIES["cyclegan"]
    card = {"model": name, "args": kwargs, "direction": "AtoB", "input_size": InputSize(train=32, multiple=4)}
    t = inference.Translator({"AtoB": generator(name, **kwargs)}, {"AtoB": card}, max_memory=2 ** 40)
    real = inference.run_any_size

    def two_at_a_time_fails(g, batch, *args, **kwargs):
        if batch.shape[0] > 1 or batch.shape[-1] == 4:  # a batch, or the 4-px image: "cannot"
            raise MemoryError("simulated")
        return real(g, batch, *args, **kwargs)

    monkeypatch.setattr(inference, "run_any_size", two_at_a_time_fails)
    images = [Image.fromarray(face(48, 40)), Image.fromarray(face(48, 40)[::-1].copy()), Image.fromarray(face(4, 4))]
    errors = []
    results = t.translate_batch(images, on_error=lambda i, e: errors.append((i, str(e))))
    assert [r is not None for r in results] == [True, True, False] and errors == [(2, "simulated")]
    assert results[0].image.size == (48, 40) and results[0].image != results[1].image
    with pytest.raises(MemoryError):
        t.translate_batch(images[:2])


def test_full_ugatit_is_resized_not_tiled():
    from unpaired.inference import Translator

    g = generator("ugatit", ngf=4, n_blocks=1, img_size=32)
    card = {"model": "ugatit", "args": {"img_size": 32}, "direction": "AtoB",
            "input_size": InputSize(train=32, multiple=4, fixed=32)}
    lines = []
    t = Translator({"AtoB": g}, {"AtoB": card}, max_memory=1, progress=lines.append)
    result = t.translate(Image.fromarray(face(300, 200)))
    assert result.image.size == (300, 200) and result.attention.shape == (200, 300) and result.tiled
    assert lines and "resized" in lines[0]


def test_demo_says_when_it_tiled():
    """The demo page's status line names tiling when the image went over the translator's budget."""
    pytest.importorskip("gradio")
    from unpaired.demo import build_demo
    from unpaired.inference import Translator

    name, kwargs, _ = FAMILIES["attentiongan"]
    card = {"model": name, "args": kwargs, "direction": "AtoB", "input_size": InputSize(train=32, multiple=4)}
    statuses = []
    for budget in (1, 2**40):  # 1 byte: every image tiles; 1 TiB: none does
        demo = build_demo(Translator({"AtoB": generator(name, **kwargs)}, {"AtoB": card}, max_memory=budget))
        translate = next(f.fn for f in demo.fns.values() if getattr(f, "name", "") == "translate")
        statuses.append(translate(Image.fromarray(face(96, 80)), "AtoB")[-1])
    assert "in tiles" in statuses[0] and "in tiles" not in statuses[1], statuses
