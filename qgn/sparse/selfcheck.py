"""Self-check of a sparse-convolution backend against the pure-PyTorch backend.

A tiny 3x3 convolution (batch of 2, sites on the image borders) is run forward and backward by
both backends; the backend passes if outputs and gradients agree. (1x1 kernels are a matmul
shared by all backends, see backend.py, so they need no check.)

On CPU the check runs in this process. On CUDA it runs in a child process
(`python -m qgn.sparse.selfcheck NAME cuda`), because a broken build can kill the process
outright: spconv-cu120 2.3.6 with torch >= 2.3 dies with SIGFPE in 3x3 submanifold convs
(spconv issue #725), which no try/except can catch.
"""

from __future__ import annotations

import subprocess
import sys

import torch

from qgn.sparse.backend import get_backend
from qgn.sparse.backend_base import SubmConvBackend
from qgn.sparse.sites import ActiveSites

CHILD_TIMEOUT_S = 300.0


def run_self_check(name: str) -> str | None:
    """Check backend `name` on CPU and, if available, on CUDA. None if it passes, else why not."""
    reason = check_backend_on_device(name, torch.device("cpu"))
    if reason is None and torch.cuda.is_available():
        reason = check_backend_in_child_process(name, "cuda")
    return reason


def check_backend_on_device(name: str, device: torch.device) -> str | None:
    """Compare backend `name` with the torch backend on `device`, in this process.

    The check usually runs lazily inside the caller's first convolution, so it sets its own
    autograd state: gradients on, inference mode and autocast off.
    """
    try:
        with torch.inference_mode(False), torch.enable_grad(), torch.autocast(device.type, enabled=False):
            mismatch = _compare_with_reference(get_backend(name), get_backend("torch"), device)
        if mismatch is not None:
            return f"its self-check on {device} failed: {mismatch}"
    except Exception as error:  # any failure means the backend is unusable
        return f"its self-check on {device} raised {type(error).__name__}: {error}"
    return None


def check_backend_in_child_process(name: str, device: str) -> str | None:
    """Run `check_backend_on_device` in a fresh Python process, surviving hard crashes."""
    command = [sys.executable, "-m", "qgn.sparse.selfcheck", name, device]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"its self-check on {device} did not finish within {CHILD_TIMEOUT_S:.0f} s"
    if result.returncode == 0:
        return None
    last_lines = " | ".join((result.stdout + result.stderr).strip().splitlines()[-3:])
    return f"its self-check on {device} exited with code {result.returncode} ({last_lines})"


def _compare_with_reference(candidate: SubmConvBackend, reference: SubmConvBackend, device: torch.device) -> str | None:
    """One 3x3 forward+backward comparison; returns a description of the first mismatch or None."""
    generator = torch.Generator().manual_seed(0)
    mask = torch.rand((2, 5, 6), generator=generator) < 0.6
    mask[0, 0, 0] = mask[0, -1, -1] = mask[1, 0, -1] = mask[1, -1, 0] = True  # corners
    sites = ActiveSites.from_mask(mask.to(device))
    feats = torch.randn((sites.num_sites, 4), generator=generator).to(device)
    weight = torch.randn((3, 3, 3, 4), generator=generator).to(device)
    grad_out = torch.randn((sites.num_sites, 3), generator=generator).to(device)
    results = []
    for backend in (candidate, reference):
        feats_leaf = feats.clone().requires_grad_(True)
        weight_leaf = weight.clone().requires_grad_(True)
        out = backend.subm_conv(feats_leaf, weight_leaf, sites)
        out.backward(grad_out)
        results.append((out.detach(), feats_leaf.grad, weight_leaf.grad))
    tolerance = 1e-4 if device.type == "cpu" else 2e-2  # CUDA matmuls may use TF32
    for label, got, want in zip(("output", "feature gradient", "weight gradient"), results[0], results[1], strict=True):
        if got is None or want is None or got.shape != want.shape:
            return f"{label} missing or of the wrong shape"
        error = float((got - want).abs().max()) / max(1.0, float(want.abs().max()))
        if error > tolerance:
            return f"3x3 {label} differs by {error:.2e} (relative)"
    return None


def main(argv: list[str]) -> int:
    """Entry point of the child process: `python -m qgn.sparse.selfcheck NAME DEVICE`."""
    name, device = argv[1], argv[2]
    reason = check_backend_on_device(name, torch.device(device))
    if reason is not None:
        print(reason, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
