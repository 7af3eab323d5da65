"""Time measurement that is fair on a shared machine: candidates timed round-robin.

``clock="wall"`` (default) measures elapsed time; ``clock="cpu"`` the CPU time of the calling
thread (``time.thread_time``), which on a machine whose cores other jobs share leaves out the time
the thread waited for a core. With one intra-op thread (``--threads 1``) every op runs on the
calling thread, so its CPU time is the work done; CUDA runs always use wall time.
"""
from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable

import torch


def interleaved_median_ms(
    steps: dict[str, Callable[[], None]], warmup: int, repeats: int, device: torch.device, clock: str = "wall",
    warm_each: bool = False, shuffle_seed: int | None = None, warm_ms: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, float]:
    """Median time in ms of every step, running the steps round-robin (one run of each per
    round, CUDA synchronised), so that load from other processes hits all of them alike.

    ``warm_each``: each timed run directly follows an untimed run of the same step, so no step is
    timed on caches the step before it (another candidate) just evicted; every step gets the same
    treatment. For small kernels that run inside a pipeline whose previous op touched the same data
    (a decoder's convolutions), that is the state they run in.

    ``warm_ms`` (with ``warm_each``): the untimed runs go on until they have taken this long (at
    least one). One run is not always enough: after 15 ms of any other work — a dense conv, or a
    pure-Python busy loop — a 0.3-0.8 ms sparse conv's next run measured ~30 % slower than in a
    loop of its own, and ~3 ms of its own runs brought it back (qgn/bench/sparse_conv.py). A run
    longer than ``warm_ms`` gets the one warm run, as before.

    ``shuffle_seed``: every round runs the steps in a new random order (seeded: reproducible), so no
    step always runs right after the same other. What ran just before matters for small kernels:
    with a fixed order one gather kernel measured 20-35 % slower as the candidate that always ran
    right after a rulebook build than as the one that always ran right after the first; rotating
    the order does not help, as it keeps every step's predecessor.

    ``progress(done, total)``: after each of the ``(warmup + repeats) × len(steps)`` runs, outside
    the time measured (a round of decoders at 480x384 takes seconds)."""
    if clock not in ("wall", "cpu"):
        raise ValueError(f"clock must be 'wall' or 'cpu', got {clock!r}")
    now = time.thread_time if clock == "cpu" and device.type != "cuda" else time.perf_counter
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    times: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    shuffler = random.Random(shuffle_seed) if shuffle_seed is not None else None
    for round_index in range(warmup + repeats):
        order = shuffler.sample(names, len(names)) if shuffler is not None else names
        for name in order:
            step = steps[name]
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if warm_each:
                warm_start = time.perf_counter()
                step()
                while (time.perf_counter() - warm_start) * 1e3 < warm_ms:
                    step()
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
            start = now()
            step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if round_index >= warmup:
                times[name].append(1e3 * (now() - start))
            if progress is not None:
                progress(round_index * len(names) + order.index(name) + 1, (warmup + repeats) * len(names))
    return {name: statistics.median(values) for name, values in times.items()}
