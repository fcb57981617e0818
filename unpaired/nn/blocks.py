"""Building blocks of the ResNet generators and PatchGAN discriminators (CycleGAN, AttentionGAN).

The activations after a norm are not in place: ``InstanceNorm2d`` returns a view of its result, and an in-place
ReLU on a view makes autograd copy the tensor back (CopySlices) and run the backward on strided gradients: a
norm + ReLU pair took 1.4-1.9x as long forward and backward (docs/benchmarks.md).
"""

from __future__ import annotations

from torch import Tensor, nn

from .outputs import DiscriminatorOutput


def make_norm(kind: str, channels: int) -> nn.Module:
    """``instance``: InstanceNorm2d without affine or running stats (CycleGAN's default);
    ``batch``: BatchNorm2d with affine and running stats; ``none``: identity."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; choose instance, batch or none")


class ConvNormReLU(nn.Sequential):
    """conv → norm → ReLU (submodules ``conv``, ``norm``, ``act``): the one such block of every model; each
    model passes the conv and norm its paper uses."""

    def __init__(self, conv: nn.Module, norm: nn.Module):
        super().__init__()
        self.conv, self.norm, self.act = conv, norm, nn.ReLU()


def conv(in_ch: int, out_ch: int, kernel: int, *, stride: int = 1, padding: int = 0, reflect: bool = False,
         transposed: bool = False, bias: bool = True) -> nn.Module:
    """A conv (optionally reflection-padded); ``transposed``: a ×``stride`` up-sampling (output_padding 1 for
    odd kernels, as CycleGAN's 3×3)."""
    if transposed:
        return nn.ConvTranspose2d(in_ch, out_ch, kernel, stride=stride, padding=padding,
                                  output_padding=kernel % 2 if stride > 1 else 0, bias=bias)
    return nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=padding,
                     padding_mode="reflect" if reflect else "zeros", bias=bias)


class ResnetBlock(nn.Module):
    """x + [reflect-pad, conv3×3, norm, ReLU, reflect-pad, conv3×3, norm](x)."""

    by_layers = True  # x + norm2(conv2(relu(norm1(conv1(x))))), 3×3: tiled inference streams it layer by layer

    def __init__(self, dim: int, norm: str = "instance", dropout: float = 0.0):
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, 3, padding=1, padding_mode="reflect")
        self.norm1 = make_norm(norm, dim)
        self.act = nn.ReLU()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = nn.Conv2d(dim, dim, 3, padding=1, padding_mode="reflect")
        self.norm2 = make_norm(norm, dim)

    def forward(self, x: Tensor) -> Tensor:
        residual = self.dropout(self.act(self.norm1(self.conv1(x))))
        return x + self.norm2(self.conv2(residual))


class ResnetEncoder(nn.Sequential):
    """c7s1-ngf, d2ngf, d4ngf, then ``n_blocks`` residual blocks: N×in×H×W -> N×4ngf×H/4×W/4."""

    def __init__(self, in_ch: int = 3, ngf: int = 64, n_blocks: int = 9, norm: str = "instance",
                 dropout: float = 0.0):
        super().__init__()
        self.stem = ConvNormReLU(conv(in_ch, ngf, 7, padding=3, reflect=True), make_norm(norm, ngf))
        self.down1 = ConvNormReLU(conv(ngf, 2 * ngf, 3, stride=2, padding=1), make_norm(norm, 2 * ngf))
        self.down2 = ConvNormReLU(conv(2 * ngf, 4 * ngf, 3, stride=2, padding=1), make_norm(norm, 4 * ngf))
        self.blocks = nn.Sequential(*[ResnetBlock(4 * ngf, norm, dropout) for _ in range(n_blocks)])


class ResnetDecoder(nn.Sequential):
    """u2ngf, ungf (transposed convs), then a conv to ``out_ch`` (no activation): N×4ngf×h×w -> N×out×4h×4w.

    ``head_kernel`` 7 is reflection-padded (CycleGAN's c7s1-3); 1 is a plain 1×1 conv (AttentionGAN's attention head).
    """

    def __init__(self, out_ch: int, ngf: int = 64, norm: str = "instance", head_kernel: int = 7):
        super().__init__()
        self.up1 = ConvNormReLU(conv(4 * ngf, 2 * ngf, 3, stride=2, padding=1, transposed=True), make_norm(norm, 2 * ngf))
        self.up2 = ConvNormReLU(conv(2 * ngf, ngf, 3, stride=2, padding=1, transposed=True), make_norm(norm, ngf))
        self.head = nn.Conv2d(ngf, out_ch, head_kernel, padding=head_kernel // 2,
                              padding_mode="reflect" if head_kernel > 1 else "zeros")


class PatchGANDiscriminator(nn.Module):
    """CycleGAN's ``NLayerDiscriminator`` (70×70 PatchGAN for n_layers=3): a map of real/fake logits."""

    def __init__(self, in_ch: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance"):
        super().__init__()
        layers = [nn.Conv2d(in_ch, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for i in range(1, n_layers + 1):
            prev, mult = mult, min(2 ** i, 8)
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1),
                       make_norm(norm, ndf * mult), nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> DiscriminatorOutput:
        return DiscriminatorOutput(logits=self.model(x))
