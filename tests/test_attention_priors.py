"""AttentionGAN's attention switches (background warm start, mask sparsity and smoothness priors), the
plain <-> striped synthetic set and the ``success`` score: each switch, in a tiny run, changes what it should."""

import math

import pytest
import torch

from conftest import unpaired
from unpaired import losses
from unpaired.config import read_preset, resolve
from unpaired.data import make_synthetic_stripes, stripes_pair
from unpaired.metrics.masks import mask_scores
from unpaired.models.attentiongan import AttentionGANArgs, AttentionGANGenerator, background_logit_offset
from unpaired.nn.init import init_weights
from unpaired.training.trainer import Trainer

TINY = ["model.name=attentiongan", "model.background_prior=0", "model.ngf=8", "model.ndf=8", "model.n_blocks=2",
        "model.n_masks=4",
        "data.load_size=32", "data.crop_size=32", "data.num_workers=0", "train.batch_size=2", "train.device=cpu",
        "train.log_every=1", "train.sample_every=1000", "train.checkpoint_every=1000", "train.seed=3",
        "train.lr=0.01"]  # a large step, so that 6 steps show each switch's pull


pytestmark = pytest.mark.usefixtures("one_thread")


def test_background_prior_sets_the_initial_background_mask():
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    for prior in (0.5, 0.9, 0.99):
        assert math.isclose(torch.softmax(torch.tensor([0.0, 0.0, 0.0, background_logit_offset(prior, 4)]), 0)[-1],
                            prior, rel_tol=1e-6)
        torch.manual_seed(0)
        g = init_weights(AttentionGANGenerator(ngf=8, n_blocks=2, n_masks=4, background_prior=prior))
        background = g(x).attention[:, -1]
        # N(0, 0.02) weights leave the logits within ~0.2 of a tie (0.5 allowed); the softmax moves by at most
        # p(1 − p) per unit of logit
        assert (background - prior).abs().max() < prior * (1 - prior) * 0.5
    torch.manual_seed(0)
    official = init_weights(AttentionGANGenerator(ngf=8, n_blocks=2, n_masks=4))
    assert (official(x).attention[:, -1] - 0.25).abs().max() < 0.25 * 0.75 * 0.5  # 1/n without the switch
    with pytest.raises(ValueError, match="background_prior"):
        AttentionGANArgs(background_prior=1.0).validate()


def test_mask_losses_are_pure_and_scaled_per_pixel():
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 2:6, 2:6] = 1
    assert losses.mask_sparsity(mask) == pytest.approx(16 / 64)
    # 4 edges of length 4 each, one step each: 8 horizontal and 8 vertical unit jumps per 4 columns/rows
    assert losses.mask_smoothness(mask) == pytest.approx(8 / (8 * 7) + 8 / (7 * 8))
    big = torch.nn.functional.interpolate(mask, scale_factor=4)  # same shape, 4x the pixels: same sparsity
    assert losses.mask_sparsity(big) == pytest.approx(losses.mask_sparsity(mask))


def foreground_after(data, steps, *extra):
    cfg = resolve(read_preset("quick"), [f"data.root={data}", *TINY, f"train.steps={steps}", *extra])
    trainer = Trainer(cfg, data.parent / f"run-{abs(hash(extra))}", progress=False)
    values = [trainer.train_step(trainer.to_device(b)) for b, _ in zip(trainer.make_loader(), range(steps))]
    x = torch.stack([trainer.make_loader().dataset[i]["A"] for i in range(4)])
    with torch.no_grad():
        fg = trainer.method.generators["AtoB"](x).foreground()
    return fg, values[-1]


def test_each_switch_changes_what_it_should(synth_data, tmp_path):
    data = tmp_path / "data"
    data.symlink_to(synth_data)
    base_fg, base = foreground_after(data, 6)
    assert not any("mask_" in k for k in base)
    warm_fg, _ = foreground_after(data, 6, "model.background_prior=0.9")
    assert base_fg.mean() > 0.6 and warm_fg.mean() < 0.25  # 1 − 1/4 at the start against 1 − 0.9
    sparse_fg, sparse = foreground_after(data, 6, "loss.attention_sparsity=100")
    assert {"Loss/G/mask_sparsity_A", "Loss/G/mask_sparsity_B"} <= set(sparse)
    assert sparse_fg.mean() < base_fg.mean() - 0.02  # measured: 0.657 against 0.700 (1 and 2 threads)
    smooth_fg, smooth = foreground_after(data, 6, "loss.attention_smoothness=100")
    assert {"Loss/G/mask_smoothness_A", "Loss/G/mask_smoothness_B"} <= set(smooth)
    assert losses.mask_smoothness(smooth_fg) < 0.8 * losses.mask_smoothness(base_fg)


def test_stripes_set_is_deterministic_paired_and_textured(tmp_path):
    a, mask, b, mask_b = stripes_pair(64, [0, 11, 5])
    a2, _, b2, _ = stripes_pair(64, [0, 11, 5])
    assert (a == a2).all() and (b == b2).all() and (mask == mask_b).all()
    inside = mask > 0
    assert 0.03 < inside.mean() < 0.5
    assert (a[~inside] == b[~inside]).all()  # the background is the same scene
    luma_a, luma_b = a.mean(-1)[inside], b.mean(-1)[inside]
    assert luma_b.std() > 3 * luma_a.std()  # stripes: the object's texture differs, not only its colour
    root = make_synthetic_stripes(tmp_path / "s", size=32, n_train=3, n_test=2, seed=1)
    for split in ("trainA", "trainB", "testA", "testB", "trainA_masks", "testB_masks"):
        assert len(list((root / split).glob("*.png"))) == (3 if split.startswith("train") else 2)


def test_success_counts_objects_that_took_the_targets_look():
    a, mask, b, _ = stripes_pair(64, [0, 11, 2])
    to = lambda im: torch.from_numpy(im).permute(2, 0, 1)[None].float() / 127.5 - 1  # noqa: E731
    m = torch.from_numpy(mask)[None, None].float() / 255
    x, y = to(a), to(b)
    assert mask_scores(x, y, m, targets=y)["success"] == 1.0  # the perfect translation
    assert mask_scores(x, x, m, targets=y)["success"] == 0.0  # nothing changed
    recoloured = x.clone()  # the object's mean colour made the target's, its texture left plain
    recoloured += ((y - x) * m).sum(dim=(2, 3), keepdim=True) / m.sum() * m
    assert mask_scores(x, recoloured, m, targets=y)["success"] == 0.0


def test_cli_writes_the_stripes_set(tmp_path):
    unpaired("data", "synth", tmp_path / "d", "--kind", "stripes", "--size", 32, "--n-train", 2, "--n-test", 1)
    assert (tmp_path / "d" / "testB_masks" / "0000.png").exists()
    assert "striped" in (tmp_path / "d" / "README.md").read_text()


def test_fading_warm_start_decays_to_the_official_generator(synth_data, tmp_path):
    """``model.background_prior_steps=N``: the offset shrinks linearly to 0 over N steps; after them the generator
    is the official one (same weights, no offset), and the share left is saved with the weights."""
    data = tmp_path / "data"
    data.symlink_to(synth_data)
    cfg = resolve(read_preset("quick"), [f"data.root={data}", *TINY, "train.steps=3", "model.background_prior=0.9",
                                         "model.background_prior_steps=4"])
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    G = trainer.method.generators["AtoB"]
    scales = []
    for batch, _ in zip(trainer.make_loader(), range(3)):
        trainer.train_step(trainer.to_device(batch))
        scales.append(float(G.prior_scale))
    assert scales == [1.0, 0.75, 0.5]  # set before steps 0, 1, 2
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    official = AttentionGANGenerator(ngf=8, n_blocks=2, n_masks=4)
    official.load_state_dict({k: v for k, v in G.state_dict().items() if k != "prior_scale"})
    with torch.no_grad():
        half = G(x).attention[:, -1]
        assert (half - official(x).attention[:, -1]).abs().max() > 0.1  # half the offset still there
        G.fade_prior(4)
        assert torch.equal(G(x).image, official(x).image)  # faded out: exactly the official generator
    restored = AttentionGANGenerator(ngf=8, n_blocks=2, n_masks=4, background_prior=0.9, background_prior_steps=4)
    restored.load_state_dict(G.state_dict())
    assert float(restored.prior_scale) == 0.0
    with pytest.raises(ValueError, match="background_prior_steps"):
        AttentionGANArgs(background_prior=0.9, background_prior_steps=-1).validate()


def test_fading_warm_start_can_end_at_a_kept_offset(synth_data, tmp_path):
    """``model.background_prior_final=F``: the fade ends at the offset that gives the background mask F where the
    other logits tie (not at 0), reached after N steps and kept; F must lie between 1/n and the prior."""
    data = tmp_path / "data"
    data.symlink_to(synth_data)
    cfg = resolve(read_preset("quick"), [f"data.root={data}", *TINY, "train.steps=3", "model.background_prior=0.9",
                                         "model.background_prior_steps=2", "model.background_prior_final=0.5"])
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    G = trainer.method.generators["AtoB"]
    start, end = (background_logit_offset(p, 4) for p in (0.9, 0.5))
    offsets = []
    for batch, _ in zip(trainer.make_loader(), range(3)):
        trainer.train_step(trainer.to_device(batch))
        offsets.append(float(G._logit_offset[-1] * G.prior_scale))
    assert offsets == pytest.approx([start, (start + end) / 2, end], rel=1e-6)  # before steps 0, 1, 2: then kept
    G.fade_prior(1000)
    assert float(G._logit_offset[-1] * G.prior_scale) == pytest.approx(end, rel=1e-6)
    with torch.no_grad():  # where the other logits tie (a zeroed head), the background is F
        G.attention_decoder.head.weight.zero_()
        G.attention_decoder.head.bias.zero_()
        assert torch.allclose(G(torch.rand(1, 3, 32, 32)).attention[:, -1], torch.tensor(0.5))
    for bad in (dict(background_prior_final=0.5),  # no fade to end
                dict(background_prior_final=0.95, background_prior_steps=10),  # above the prior
                dict(background_prior_final=0.05, background_prior_steps=10)):  # below 1/n: a background penalty
        with pytest.raises(ValueError, match="background_prior_final"):
            AttentionGANArgs(background_prior=0.9, **bad).validate()
