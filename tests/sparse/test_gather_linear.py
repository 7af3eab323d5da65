"""gather_linear equals gather + linear, forward and gradients, and saves no gathered copy."""
import torch

from qgn.bench.memory import saved_activation_bytes
from qgn.sparse.gather_linear import gather_linear
from qgn.sparse.sites import ActiveSites


def test_equals_gather_then_linear_with_gradients():
    torch.manual_seed(0)
    dense = torch.randn(2, 5, 6, 7, requires_grad=True)
    sites = ActiveSites.from_mask(torch.rand(2, 6, 7) > 0.6)
    lin = torch.nn.Linear(5, 3)
    got = gather_linear(dense, sites, lin.weight, lin.bias)
    c = sites.coords
    want = lin(dense[c[:, 0], :, c[:, 1], c[:, 2]])
    assert torch.allclose(got, want, atol=1e-6)
    g = torch.randn_like(got)
    grads = torch.autograd.grad(got, (dense, lin.weight, lin.bias), g)
    wants = torch.autograd.grad(want, (dense, lin.weight, lin.bias), g)
    for a, b in zip(grads, wants):
        assert torch.allclose(a, b, atol=1e-5)


def test_saves_only_its_input_not_a_gathered_copy():
    dense = torch.randn(1, 64, 32, 32, requires_grad=True)
    sites = ActiveSites.full(1, (32, 32))
    lin = torch.nn.Linear(64, 8)
    n, _ = saved_activation_bytes(lambda: gather_linear(dense, sites, lin.weight, lin.bias),
                                  exclude=[dense, *lin.parameters()])
    # only index data: the sites' (N, 3) int64 coords (the batch column is a view) and the pixel ids
    assert n == 1024 * 3 * 8 + 1024 * 8
    assert n < 1024 * 64 * 4  # far below one gathered float copy


def test_inference_equals_gather_then_linear_for_every_layout():
    """No grad: one image (index_select + addmm), a batch, no bias, a channels-last or sliced map."""
    torch.manual_seed(1)
    lin = torch.nn.Linear(5, 3)
    for batch in (1, 2):
        base = torch.randn(batch, 5, 9, 8)
        maps = (base, base.contiguous(memory_format=torch.channels_last), torch.randn(batch, 5, 9, 16)[..., ::2])
        sites = ActiveSites.from_mask(torch.rand(batch, 9, 8) > 0.5)
        c = sites.coords
        for dense in maps:
            for bias in (lin.bias, None):
                with torch.no_grad():
                    got = gather_linear(dense, sites, lin.weight, bias)
                    want = torch.nn.functional.linear(dense[c[:, 0], :, c[:, 1], c[:, 2]], lin.weight, bias)
                torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
