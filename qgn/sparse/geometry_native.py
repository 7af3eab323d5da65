"""The level geometry's two per-level steps in C (``_geometry.c``), where the extension is built.

`ActiveSites.upsample2x` (split the selected sites into their children, in canonical order) and
`child_rulebook` (the children's neighbour table from the parents') are a dozen whole-tensor
PyTorch ops each, over (K, 36) int64 tensors and an argsort: on the street model's PC levels at
240x180 they took about a third of the decoder's time, more than its convolutions. The C loops
produce the same tensors (tested against the PyTorch ops, which stay the fallback: no C compiler,
another platform, a CUDA tensor, or a stale build).

Both functions take CPU tensors of the dtypes their docstrings name and return None when the
extension cannot run them; they check every index they read (a bad one raises ValueError).
"""
from __future__ import annotations

import torch

from qgn.sparse.extensions import load_extension

KERNEL_ABI = 1  # _geometry.c's ABI
_geometry = load_extension("_geometry", KERNEL_ABI, "the level geometry")


def available() -> bool:
    """True if the C kernels are built and current."""
    return _geometry is not None


def _usable(*tensors: torch.Tensor) -> bool:
    return _geometry is not None and all(t.device.type == "cpu" and t.is_contiguous() for t in tensors)


def upsample_sorted(coords: torch.Tensor, parent_ids: torch.Tensor, spatial_shape: tuple[int, int]
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """The children of the sites ``parent_ids`` (K,) int64, increasing, of canonical ``coords``
    (Np, 3) int64 on a grid of ``spatial_shape``: (children (4K, 3) int64 canonical on the grid of
    twice the size, child_parent (4K,) int64, made_at (4K,) int64 = 4 i + 2 a + b for child (a, b)
    of parent_ids[i]). None where the C kernel does not run."""
    if not _usable(coords, parent_ids) or coords.dtype != torch.int64 or parent_ids.dtype != torch.int64:
        return None
    if coords.dim() != 2 or coords.shape[1] != 3 or parent_ids.dim() != 1:
        raise ValueError(f"upsample_sorted: coords (Np, 3) and parent_ids (K,), got {tuple(coords.shape)} "
                         f"and {tuple(parent_ids.shape)}")
    k = parent_ids.numel()
    children = torch.empty((4 * k, 3), dtype=torch.int64)
    child_parent = torch.empty(4 * k, dtype=torch.int64)
    made_at = torch.empty(4 * k, dtype=torch.int64)
    height, width = spatial_shape
    status = _geometry.upsample(coords.data_ptr(), coords.shape[0], parent_ids.data_ptr(), k, height, width,
                                children.data_ptr(), child_parent.data_ptr(), made_at.data_ptr())
    if status != 0:
        raise ValueError("upsample_sorted: parent_ids must be increasing site ids of canonical coords in the grid")
    return children, child_parent, made_at


def child_table(parent_table: torch.Tensor, parent_ids: torch.Tensor, made_at: torch.Tensor,
                kernel_size: int) -> tuple[torch.Tensor, int] | None:
    """The k x k neighbour table (4K, k*k) int32 of the children `upsample_sorted` made, and its
    number of pairs, from the parents' 3 x 3 table ``parent_table`` (Np, 9) int32 (Np = missing).
    None where the C kernel does not run."""
    if not _usable(parent_table, parent_ids, made_at) or parent_table.dtype != torch.int32 \
            or parent_ids.dtype != torch.int64 or made_at.dtype != torch.int64:
        return None
    k = parent_ids.numel()
    if parent_table.dim() != 2 or parent_table.shape[1] != 9 or made_at.shape != (4 * k,):
        raise ValueError(f"child_table: parent_table (Np, 9), made_at ({4 * k},); got {tuple(parent_table.shape)} "
                         f"and {tuple(made_at.shape)}")
    table = torch.empty((4 * k, kernel_size * kernel_size), dtype=torch.int32)
    pairs = _geometry.child_table(parent_table.data_ptr(), parent_table.shape[0], parent_ids.data_ptr(), k,
                                  made_at.data_ptr(), kernel_size, table.data_ptr())
    if pairs < 0:
        raise ValueError("child_table: an index out of range in parent_table, parent_ids or made_at")
    return table, int(pairs)
