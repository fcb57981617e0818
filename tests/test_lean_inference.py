"""lean_inference (unpaired.nn.lean): in-place norms and ReLUs, channels-last convolutions. Every family gives the
plain forward's outputs within float rounding, the generator is left exactly as it was, gradients switch it
off, and tiled inference (whose statistics sites patch the same norms) stays exact inside it."""

import pytest
import torch
from torch import nn

from conftest import perturbed_generator
from unpaired.nn.lean import lean_inference
from unpaired.tiling.plan import receptive_halo
from unpaired.tiling.runner import Canvas, TensorSource, grid, run_exact

FAMILIES = {
    "cyclegan": ("cyclegan", dict(ngf=4, n_blocks=1), ()),
    "attentiongan": ("attentiongan", dict(ngf=4, n_blocks=1, n_masks=4), ()),
    "attentiongan-s1": ("attentiongan-s1", dict(ngf=4, n_blocks=1, norm="instance"), ()),
    "ugatit-light": ("ugatit-light", dict(ngf=4, n_blocks=1), ()),
    "ugatit": ("ugatit", dict(ngf=4, n_blocks=1, img_size=32), ()),
    "attentiongan-multi": ("attentiongan-multi", dict(ngf=4, n_blocks=1, c_dim=3), (torch.tensor([[0.0, 1.0, 0.0]]),)),
}


generator = perturbed_generator


def state(g):
    """What lean_inference may touch: each parameter's values and layout, the ReLUs' flags, patched forwards."""
    return ({k: (v.clone(), v.stride()) for k, v in g.state_dict().items()},
            [m.inplace for m in g.modules() if isinstance(m, nn.ReLU)],
            [n for n, m in g.named_modules() if "forward" in m.__dict__])


def same_state(a, b):
    assert a[0].keys() == b[0].keys()
    for k in a[0]:
        assert torch.equal(a[0][k][0], b[0][k][0]) and a[0][k][1] == b[0][k][1], k
    assert a[1:] == b[1:]


def outputs(out):
    return {k: getattr(out, k) for k in ("image", "attention", "content", "heatmap", "cam_logit")
            if getattr(out, k, None) is not None}


@pytest.mark.parametrize("family", list(FAMILIES))
@torch.no_grad()
def test_lean_forward_equals_plain_and_restores_the_generator(family):
    name, kwargs, extra = FAMILIES[family]
    g = generator(name, **kwargs)
    side = 32 if name == "ugatit" else 40
    x = torch.rand(2, 3, side, side, generator=torch.Generator().manual_seed(1)) * 2 - 1
    extra = tuple(e.expand(2, -1) for e in extra)
    before = state(g)
    plain = outputs(g(x, *extra))
    with lean_inference(g):
        norms = [m for m in g.modules() if isinstance(m, nn.InstanceNorm2d)]
        assert all("forward" in m.__dict__ for m in norms)  # it changes what it says it changes
        assert all(m.inplace for m in g.modules() if isinstance(m, nn.ReLU))
        convs = [m.weight for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
        assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
        with lean_inference(g):  # nested: the inner block leaves it on
            lean = outputs(g(x, *extra))
        assert all("forward" in m.__dict__ for m in norms)
    assert lean.keys() == plain.keys()
    for k in plain:
        assert (lean[k] - plain[k]).abs().max() <= 1e-4, k
    same_state(state(g), before)


def test_lean_does_nothing_with_gradients_on():
    g = generator("attentiongan", ngf=4, n_blocks=1, n_masks=4)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    before = state(g)
    with lean_inference(g):
        same_state(state(g), before)
        out = g(x)
    out.image.mean().backward()  # in-place layers would have broken the graph
    assert all(p.grad is not None for p in g.parameters() if p.requires_grad)


@pytest.mark.parametrize("family", ["attentiongan", "ugatit-light"])
@torch.no_grad()
def test_exact_tiling_inside_lean_equals_plain_whole_image(family):
    """The statistics sites patch the same norms as lean_inference: they run on top of its in-place forward,
    freeze in place, and give it back when they are done."""
    name, kwargs, extra = FAMILIES[family]
    g = generator(name, **kwargs)
    x = torch.rand(1, 3, 88, 104, generator=torch.Generator().manual_seed(2)) * 2 - 1
    whole = g(x, *extra)
    with lean_inference(g):
        lean_forwards = {id(m): m.__dict__.get("forward") for m in g.modules()}
        tiles = grid(88, 104, 36, receptive_halo(g, extra))
        assert len(tiles) == 9
        out = run_exact(g, TensorSource(x), tiles, extra, Canvas(88, 104, uint8=False)).output()
        assert {id(m): m.__dict__.get("forward") for m in g.modules()} == lean_forwards
    assert (out.image - whole.image).abs().max() <= 1e-4
    if whole.attention is not None:
        assert (out.attention - whole.attention).abs().max() <= 1e-4


def test_live_tensor_bytes_counts_the_peak_of_storages_alive_at_once():
    from unpaired.tiling.plan import LiveTensorBytes

    with LiveTensorBytes() as live:
        a = torch.ones(1000)  # 4000 B
        b = a * 2  # 8000 alive
        del a
        c = b[:500] + 1  # 4000 + 2000 alive; the view of b is no new storage
        b.add_(1)  # in place: nothing new
        del b, c
        d = torch.ones(1500)  # 6000
    assert live.peak == 8000 and live.live == 6000 and d.numel() == 1500


@pytest.mark.parametrize("family, maps", [("cyclegan", 0), ("attentiongan", 4), ("attentiongan-s1", 1),
                                          ("ugatit-light", 0), ("attentiongan-multi", 1)])
def test_the_plan_counts_the_attention_maps_a_generator_returns(family, maps):
    """Seen in the generator's output, not read from an attribute: the multi-domain model's default (Scheme I) has
    one mask though its arguments carry n_masks = 10."""
    from unpaired.tiling import attention_maps

    name, kwargs, extra = FAMILIES[family]
    g = generator(name, **kwargs)
    assert attention_maps(g, extra) == maps
