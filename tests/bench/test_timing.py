"""The round-robin timer's protocol: which runs happen, in which order (no timed asserts)."""
from __future__ import annotations

import itertools

import pytest
import torch

from qgn.bench.timing import interleaved_median_ms

CPU = torch.device("cpu")


def recording(log: list[str], names: str) -> dict:
    return {name: (lambda name=name: log.append(name)) for name in names}


def test_fixed_order_by_default() -> None:
    log: list[str] = []
    times = interleaved_median_ms(recording(log, "abc"), warmup=1, repeats=2, device=CPU)
    assert log == list("abc") * 3
    assert set(times) == set("abc") and all(t >= 0 for t in times.values())


def test_shuffled_rounds_vary_who_runs_before_whom() -> None:
    log: list[str] = []
    interleaved_median_ms(recording(log, "abcd"), warmup=0, repeats=12, device=CPU, shuffle_seed=0)
    rounds = [log[i:i + 4] for i in range(0, len(log), 4)]
    assert len(rounds) == 12 and all(sorted(r) == list("abcd") for r in rounds)  # each once a round
    predecessors = {name: {r[r.index(name) - 1] for r in rounds if r.index(name) > 0} for name in "abcd"}
    assert all(len(p) >= 2 for p in predecessors.values())  # not always after the same step
    again: list[str] = []
    interleaved_median_ms(recording(again, "abcd"), warmup=0, repeats=12, device=CPU, shuffle_seed=0)
    assert again == log  # seeded: the same order every run


def test_warm_each_runs_a_step_right_before_its_timed_run() -> None:
    log: list[str] = []
    interleaved_median_ms(recording(log, "ab"), warmup=0, repeats=3, device=CPU, warm_each=True, shuffle_seed=1)
    assert all(log[i] == log[i + 1] for i in range(0, len(log), 2))
    assert sorted(log) == ["a"] * 6 + ["b"] * 6


def test_warm_ms_repeats_a_short_step_until_it_has_run_that_long() -> None:
    """A step that takes ~1 ms warms up with several untimed runs before each timed one; a step
    longer than warm_ms with exactly one."""
    import time

    log: list[str] = []

    def slow() -> None:
        log.append("slow")
        time.sleep(0.004)

    steps = {"fast": lambda: (log.append("fast"), time.sleep(0.001)), "slow": slow}
    interleaved_median_ms(steps, warmup=0, repeats=2, device=CPU, warm_each=True, warm_ms=3.0, shuffle_seed=0)
    assert log.count("slow") == 2 * 2  # one warm run + the timed run, per round
    blocks = [(name, len(list(group))) for name, group in itertools.groupby(log)]
    assert all(n >= 4 for name, n in blocks if name == "fast")  # >= 3 warm runs, then the timed run


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="repeats"):
        interleaved_median_ms({}, warmup=0, repeats=0, device=CPU)
    with pytest.raises(ValueError, match="clock"):
        interleaved_median_ms({}, warmup=0, repeats=1, device=CPU, clock="sundial")


def test_progress_counts_every_run_outside_the_time_measured():
    """A speed scheme's timed rounds (seconds at 480x384, minutes for an 8x scaling photo) said
    nothing; ``progress(done, total)`` follows each run, after its time was taken."""
    log: list[str] = []
    calls = []
    interleaved_median_ms(recording(log, "ab"), warmup=1, repeats=2, device=CPU, shuffle_seed=0,
                          progress=lambda done, total: calls.append((done, total, len(log))))
    assert [c[:2] for c in calls] == [(k, 6) for k in range(1, 7)]
    assert [c[2] for c in calls] == list(range(1, 7))  # each after its run
