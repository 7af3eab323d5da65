"""`qgn bench --only scaling` and `--only sparse_conv`: the CLI contract, smooth labels, exponents."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from qgn.bench.scaling import fit_exponent, smooth_upscale_label


def bench(*args: str) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "qgn", "bench", "--threads", "1", "--json", *args],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def test_scaling_rows_follow_the_contract() -> None:
    rows = bench("--only", "scaling", "--model", "demo", "--data", "synthetic", "--images", "1",
                 "--factors", "1,2", "--repeats", "1")
    measured = [r for r in rows if "factor" in r]
    assert {(r["scheme"], r["factor"]) for r in measured} == {(s, f) for s in ("all", "gtc", "pc", "dense")
                                                             for f in (1.0, 2.0)}
    for r in measured:
        assert r["section"] == "scaling" and r["model"] == "demo"
        for key in ("sites", "decoder_macs", "decoder_seconds", "peak_bytes"):
            assert r[key] > 0, key
    all1, all2 = (next(r for r in measured if r["scheme"] == "all" and r["factor"] == f) for f in (1.0, 2.0))
    assert all2["sites"] == 4 * all1["sites"]  # every cell of a grid twice the side
    pc = next(r for r in measured if r["scheme"] == "pc" and r["factor"] == 1.0)
    assert set(pc["precision"]) and all(0 <= v <= 1 for v in pc["precision"].values())
    exponents = {r["scheme"]: r for r in rows if "exponent_sites" in r}
    assert exponents["all"]["exponent_sites"] == pytest.approx(2.0, abs=0.01)


def test_sparse_conv_rows_measure_against_dense_in_the_same_run() -> None:
    rows = bench("--only", "sparse_conv", "--channels", "16", "--densities", "0.1", "--repeats", "1")
    candidates = {r["candidate"] for r in rows}
    assert {"auto", "gather", "taps", "dense"} <= candidates
    dense = next(r for r in rows if r["candidate"] == "dense" and r["mode"] == "fwd")
    auto = next(r for r in rows if r["candidate"] == "auto" and r["mode"] == "fwd")
    assert dense["of_dense"] == 1.0
    assert auto["of_dense"] == pytest.approx(auto["gmacs_per_s"] / dense["gmacs_per_s"], rel=0.02)
    assert 0.05 < auto["density"] < 0.2
    from qgn.sparse.fused_conv import fused_isa

    if fused_isa():  # the C kernel is built: it runs, forced and automatically, and the rows say which
        assert "fused" in candidates and auto["auto_algorithm"] == "fused" and auto["fused_isa"] == fused_isa()
    else:
        assert auto["auto_algorithm"] == "gather"


def test_smooth_upscaling_keeps_the_classes_and_draws_one_line() -> None:
    label = np.zeros((8, 8), np.uint8)
    label[np.triu_indices(8)] = 1  # a diagonal boundary, a staircase of 1-pixel steps
    up = smooth_upscale_label(label, (64, 64))
    assert set(np.unique(up)) == {0, 1}
    nearest = np.kron(label, np.ones((8, 8), np.uint8))

    def starts(a):  # where each row's class-1 run starts: a staircase jumps 8 pixels every 8 rows, a line ~1
        return np.argmax(a[16:48] == 1, axis=1)

    assert np.abs(np.diff(starts(nearest))).max() == 8
    assert np.abs(np.diff(starts(up))).max() <= 2
    assert (up == nearest).mean() > 0.95


def test_fit_exponent() -> None:
    assert fit_exponent([1, 2, 4, 8], [3, 12, 48, 192]) == pytest.approx(2.0)
    assert fit_exponent([1, 2, 4], [5, 10, 20]) == pytest.approx(1.0)
    assert fit_exponent([1], [5]) is None


def test_a_factor_past_the_pixel_limit_is_refused_before_the_resize() -> None:
    """``--factors 1000000`` asked torch for 2 EB: an unexpected RuntimeError, not a refusal."""
    import types

    import numpy as np

    from qgn.bench.scaling import scaled_sample

    sample = types.SimpleNamespace(image=np.zeros((48, 64, 3), np.float32), label=np.zeros((48, 64), np.uint8))
    with pytest.raises(ValueError, match="factor 1e\\+06 makes a 64×48 image .* choose smaller --factors"):
        scaled_sample(sample, 1e6)
