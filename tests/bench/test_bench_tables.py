"""The memory, compute and speed sections on tiny networks and synthetic scenes: rows, relations, schema."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from qgn.bench.compute import compute_rows, format_compute_table
from qgn.bench.memory_table import NetworkSettings, format_memory_table, memory_ratios, memory_rows
from qgn.bench.rows import ROW_KEYS, BenchRow
from qgn.bench.speed import format_speed_table, speed_rows
from qgn.bench.standin import fit_sample
from qgn.bench.workload import load_workload
from qgn.classes import ClassSet
from qgn.data.base import Sample
from qgn.model.qgn import QGN, QGNConfig

SIZE = (96, 64)
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def workload():
    torch.manual_seed(0)
    pc_model = QGN(QGNConfig.from_preset("tiny", ClassSet(tuple("abcdefgh"))))
    return load_workload(SIZE, 2, data="synthetic", pc_model=pc_model)


@pytest.fixture(scope="module")
def settings():
    return NetworkSettings(CPU, ("tiny",), num_classes=5)


@pytest.fixture(scope="module")
def rows(workload, settings):
    return memory_rows([workload], settings)


def _by_column(rows, section="memory"):
    return {r.extra["column"]: r for r in rows if r.section == section}


def test_memory_rows_have_every_column_and_sane_relations(rows) -> None:
    by = _by_column(rows)
    assert set(by) == {"Dil", "All", "GTC", "PC", "tiny-Dil", "tiny-All", "tiny-GTC", "tiny-PC"}
    assert by["GTC"].bytes < by["All"].bytes and by["PC"].bytes < by["All"].bytes
    assert by["Dil"].bytes == 5 * SIZE[0] * SIZE[1] * 4  # the upsampled logits, nothing else
    # encoder+decoder = the same encoder + each decoder: the differences agree
    assert by["tiny-All"].bytes - by["All"].bytes == by["tiny-GTC"].bytes - by["GTC"].bytes
    for r in rows:
        e = r.extra
        assert e["saved_bytes"] <= r.bytes <= e["fwd_bwd_peak_bytes"]
        assert r.bytes >= e["ideal_bytes"] > 0 and r.macs > 0
        assert e["paper_bytes"] is None  # the paper's numbers are for 2048x1024 only
    assert by["GTC"].extra["images"] == 2 and by["GTC"].extra["active_sites"] < by["All"].extra["active_sites"]
    assert by["All"].extra["active_sites"] == sum((SIZE[0] >> l) * (SIZE[1] >> l) for l in range(6))


def test_ratios_are_the_rows_quotients(rows) -> None:
    by = _by_column(rows)
    ratios = {c["ratio"]: c for c in memory_ratios(rows)}
    check = ratios["decoder GTC / decoder All"]
    assert check["ours"] == pytest.approx(by["GTC"].bytes / by["All"].bytes)
    assert check["meets"] == (check["ours"] <= 1 / 20) and check["paper"] is None
    text = format_memory_table(rows)
    assert "decoder GTC / decoder All" in text and "96x64" in text


def test_rows_serialise_to_the_documented_json(rows) -> None:
    for r in rows:
        obj = json.loads(r.to_json_line())
        assert tuple(obj)[:5] == ROW_KEYS and obj["section"] == "memory"
    with pytest.raises(ValueError, match="clash"):
        BenchRow("x", "memory", "cpu", extra={"bytes": 1}).to_json()


def test_compute_rows_match_the_memory_rows_macs(workload, settings, rows) -> None:
    compute = compute_rows([workload], settings)
    by, mem = _by_column(compute, "compute"), _by_column(rows)
    for column in ("All", "GTC", "PC", "tiny-All", "tiny-Dil"):
        assert by[column].macs == pytest.approx(mem[column].macs, abs=1)
    assert by["All"].extra["share_of_all_decoder"] == 1.0 > by["GTC"].extra["share_of_all_decoder"]
    assert sum(by["All"].extra["per_level_macs"].values()) == pytest.approx(by["All"].macs, abs=6)
    assert by["tiny-GTC"].extra["encoder_macs"] == by["tiny-All"].extra["encoder_macs"]
    assert "per level" in format_compute_table(compute)


def test_speed_rows_time_every_implementation(workload, settings) -> None:
    speed = speed_rows(workload, settings, repeats=1, backends=["torch"])
    assert {(r.extra["scheme"], r.extra["implementation"]) for r in speed} == {
        (s, i) for s in ("All", "GTC", "PC") for i in ("torch", "dense-masked")}
    assert all(r.seconds > 0 and r.macs > 0 for r in speed)
    assert "dense-masked/torch" in format_speed_table(speed)


def test_fit_sample_pads_or_resizes() -> None:
    sample = Sample(np.full((3, 4, 3), 7, np.uint8), np.arange(12).reshape(3, 4) % 5, "s")
    padded = fit_sample(sample, (4, 6), ignore_index=9)
    assert padded.label.shape == (6, 4) and (padded.label[3:] == 9).all() and (padded.image[3:] == 0).all()
    assert (padded.label[:3] == sample.label).all()
    resized = fit_sample(sample, (8, 6), ignore_index=9)
    assert resized.label.shape == (6, 8) and set(np.unique(resized.label)) <= set(np.unique(sample.label))
    with pytest.raises(ValueError, match="ignore value"):
        fit_sample(sample, (4, 6), ignore_index=None)
