"""saved_activation_bytes counts exactly what autograd keeps, excluding parameters."""
import torch

from qgn.bench.memory import saved_activation_bytes


def test_counts_saved_activations_once_and_skips_parameters():
    lin = torch.nn.Linear(8, 16, bias=False)
    x = torch.randn(100, 8, requires_grad=True)
    # linear saves its input x (100×8 floats) and weight (excluded); relu saves its output (100×16)
    n, y = saved_activation_bytes(lambda: torch.relu(lin(x)), exclude=list(lin.parameters()))
    assert n == 100 * 8 * 4 + 100 * 16 * 4
    assert y.shape == (100, 16)


def test_scales_with_rows():
    lin = torch.nn.Linear(4, 4)
    sizes = [saved_activation_bytes(lambda: torch.relu(lin(torch.randn(r, 4))), list(lin.parameters()))[0]
             for r in (10, 20)]
    assert sizes[1] == 2 * sizes[0]
