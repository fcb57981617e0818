"""U-GAT-IT's AdaLIN: the folded implementation equals the paper's formula."""

import torch

from unpaired.nn.norms import AdaLIN, adalin_reference, layer_instance_norm


def test_folded_adalin_equals_the_formula():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 6, 7, generator=g, dtype=torch.float64)
    rho = torch.rand(1, 5, 1, 1, generator=g, dtype=torch.float64)
    gamma, beta = torch.randn(2, 5, generator=g, dtype=torch.float64), torch.randn(2, 5, generator=g, dtype=torch.float64)
    want = adalin_reference(x, rho, gamma[:, :, None, None], beta[:, :, None, None])
    torch.testing.assert_close(layer_instance_norm(x, rho, gamma[:, :, None, None], beta[:, :, None, None]), want)
    norm = AdaLIN(5).double()
    norm.rho.data.copy_(rho)
    torch.testing.assert_close(norm(x, gamma, beta), want)
