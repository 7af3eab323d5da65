"""Sparse (submanifold) convolutions on the active sites of a quadtree decoder level.

Importing this package never imports spconv; the spconv backend imports it on first use.

    from qgn.sparse import SparseLevel, SubMConv2d
    level = SparseLevel.from_dense_mask(dense, mask)   # dense (B, C, H, W), mask (B, H, W) bool
    out = SubMConv2d(C, 64)(level)                     # out.feats (N, 64) at the same sites
"""

from qgn.sparse.backend import (
    BACKEND_ENV_VAR,
    SparseBackendWarning,
    available_backends,
    backend_names,
    get_backend,
    register_backend,
    set_default_backend,
)
from qgn.sparse.backend_base import SubmConvBackend
from qgn.sparse.functional import sparse_linear, subm_conv2d
from qgn.sparse.level import SparseLevel, gather_at_sites
from qgn.sparse.nn import SparseBatchNorm, SparseLinear, SparseReLU, SubMConv2d
from qgn.sparse.rulebook import NeighbourRulebook, build_neighbour_rulebook, count_neighbour_pairs, neighbour_rulebook
from qgn.sparse.sites import ActiveSites

__all__ = [
    "BACKEND_ENV_VAR",
    "ActiveSites",
    "NeighbourRulebook",
    "SparseBackendWarning",
    "SparseBatchNorm",
    "SparseLevel",
    "SparseLinear",
    "SparseReLU",
    "SubMConv2d",
    "SubmConvBackend",
    "available_backends",
    "backend_names",
    "build_neighbour_rulebook",
    "count_neighbour_pairs",
    "gather_at_sites",
    "get_backend",
    "neighbour_rulebook",
    "register_backend",
    "set_default_backend",
    "sparse_linear",
    "subm_conv2d",
]
