"""Loading the package's optional C extensions (``_fused``: fused_conv.py, ``_geometry``:
geometry_native.py).

Each is compiled by the install where a C compiler is found (setup.py) and exports an ``ABI``
constant, raised whenever the contract between the C file and its Python side changes. A module
that is missing (no compiler, another platform) or built from other sources (an editable install
not rebuilt after an update) is not used: its Python side runs its PyTorch ops instead.
"""
from __future__ import annotations

import importlib
import warnings
from types import ModuleType


def load_extension(name: str, abi: int, runs_without: str) -> ModuleType | None:
    """``qgn.sparse.<name>`` if it is built and its ``ABI`` is ``abi``; else None, with a warning
    naming ``runs_without`` (what goes on without it) when the module is stale."""
    try:
        module = importlib.import_module(f"qgn.sparse.{name}")
    except ImportError:  # built without a C compiler, or not for this platform
        return None
    if getattr(module, "ABI", None) != abi:
        warnings.warn(f"{module.__file__} was built from other sources than this qgn (ABI "
                      f"{getattr(module, 'ABI', None)}, want {abi}); {runs_without} runs without it - "
                      "run scripts/setup (or pip install again) to rebuild it", RuntimeWarning, stacklevel=2)
        return None
    return module
