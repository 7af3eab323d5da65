"""`--threads N`: how many CPU threads torch may use (shared by the commands that run a network).

On a busy machine torch's default (one thread per core) oversubscribes the cores, and OpenMP's
spinning threads then slow a run down by an order of magnitude; `--threads 1` avoids it.
"""
from __future__ import annotations


def add_threads_argument(p) -> None:
    p.add_argument("--threads", type=int, default=0, metavar="N",
                   help="CPU threads for torch (default 0: torch's choice, one per core)")


def apply_threads(args) -> None:
    """Set torch's intra-op threads from ``args.threads`` (0 keeps torch's default)."""
    threads = getattr(args, "threads", 0) or 0
    if threads < 0:
        raise ValueError(f"--threads must be 0 or more; got {threads}")
    if threads:
        import torch

        torch.set_num_threads(threads)
