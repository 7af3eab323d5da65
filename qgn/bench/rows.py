"""One measured row of ``qgn bench``, as printed by ``--json`` (one JSON object per line).

Every row has the five keys ``name``, ``bytes``, ``macs``, ``seconds``, ``device`` (null where a
section does not measure that quantity), plus ``section`` and section-specific fields, so rows can
be compared across commits by name; ``qgn bench --json`` adds ``provenance`` last
(``qgn.bench.provenance``: the commit, torch, threads, machine and command it was measured with).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

ROW_KEYS = ("name", "bytes", "macs", "seconds", "device")


@dataclass
class BenchRow:
    """name: unique within a run, e.g. "memory/decoder GTC @2048x1024".
    bytes: activation bytes (memory rows: the Table-6 quantity, bytes alive after a training forward).
    macs: multiply-accumulates of one forward pass. seconds: wall time of one pass (median).
    extra: further fields (JSON-serialisable)."""

    name: str
    section: str
    device: str
    bytes: int | None = None
    macs: int | None = None
    seconds: float | None = None
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        clash = set(self.extra) & {*ROW_KEYS, "section", "provenance"}
        if clash:
            raise ValueError(f"row {self.name!r}: extra fields {sorted(clash)} clash with the row's own keys")
        return {"name": self.name, "bytes": self.bytes, "macs": self.macs, "seconds": self.seconds,
                "device": self.device, "section": self.section, **self.extra}

    def to_json_line(self, provenance: dict | None = None) -> str:
        """One JSON line; with ``provenance`` (``qgn.bench.provenance.provenance()``) as its last key."""
        row = self.to_json()
        if provenance is not None:
            row["provenance"] = provenance
        return json.dumps(row, sort_keys=False)
