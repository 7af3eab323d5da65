"""`--threads N`: how many CPU threads torch may use (shared by the commands that run a network).

On a busy machine torch's default (one thread per core) oversubscribes the cores, and OpenMP's
spinning threads then slow a run down by an order of magnitude; `--threads 1` avoids it.
"""
from __future__ import annotations


def add_threads_argument(p) -> None:
    p.add_argument("--threads", type=int, default=0, metavar="N",
                   help="CPU threads for torch (default 0: torch's choice, one per core)")


def max_threads() -> int:
    """The most threads ``--threads`` takes: 4 per core this process may use, at least 256 (torch
    starts every thread it is given: a million crashed the process, SIGSEGV, after seconds)."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(256, 4 * cores)


def apply_threads(args) -> None:
    """Set torch's intra-op threads from ``args.threads`` (0 keeps torch's default)."""
    threads = getattr(args, "threads", 0) or 0
    if threads < 0:
        raise ValueError(f"--threads must be 0 or more; got {threads}")
    if threads > max_threads():
        raise ValueError(f"--threads {threads}: at most {max_threads()} (more threads than cores only slow "
                         "a run down; 0 is one per core)")
    if threads:
        import torch

        torch.set_num_threads(threads)
