"""The ``--device`` option: checked before any work, so a typo or a missing GPU is one clear line."""
from __future__ import annotations

from qgn.cli.main import CLIError


def resolve_device(text: str | None) -> str:
    """``text`` (cpu, cuda, cuda:1, mps, …) checked against this machine, or the default: cuda when
    available, else cpu. CLIError naming the option and the fix otherwise."""
    import torch

    if text is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError) as exc:
        raise CLIError(f"--device {text}: not a device name ({exc}); use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise CLIError(f"--device {text}: this PyTorch build sees no CUDA GPU; use --device cpu "
                           "(or install a CUDA build of PyTorch)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise CLIError(f"--device {text}: only {torch.cuda.device_count()} CUDA device(s) here; "
                           f"use cuda:0 … cuda:{torch.cuda.device_count() - 1}")
    elif device.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise CLIError(f"--device {text}: MPS is not available on this machine; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise CLIError(f"--device {text}: qgn runs on cpu, cuda or mps")
    return text
