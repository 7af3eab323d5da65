"""Time measurement that is fair on a shared machine: candidates timed round-robin.

``clock="wall"`` (default) measures elapsed time; ``clock="cpu"`` the CPU time of the calling
thread (``time.thread_time``), which on a machine whose cores other jobs share leaves out the time
the thread waited for a core. With one intra-op thread (``--threads 1``) every op runs on the
calling thread, so its CPU time is the work done; CUDA runs always use wall time.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def interleaved_median_ms(
    steps: dict[str, Callable[[], None]], warmup: int, repeats: int, device: torch.device, clock: str = "wall"
) -> dict[str, float]:
    """Median time in ms of every step, running the steps round-robin (one run of each per
    round, CUDA synchronised), so that load from other processes hits all of them alike."""
    if clock not in ("wall", "cpu"):
        raise ValueError(f"clock must be 'wall' or 'cpu', got {clock!r}")
    now = time.thread_time if clock == "cpu" and device.type != "cuda" else time.perf_counter
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    times: dict[str, list[float]] = {name: [] for name in steps}
    for round_index in range(warmup + repeats):
        for name, step in steps.items():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = now()
            step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if round_index >= warmup:
                times[name].append(1e3 * (now() - start))
    return {name: statistics.median(values) for name, values in times.items()}
