"""Import torch on a worker thread without freezing the UI thread for long: `import_torch`.

The UI thread needs the GIL to handle any event, and `import torch` holds it in long pieces:
sampled here (py-spy, GIL holder only) while the app loaded its first model, the pieces were the
`dlopen` of ``libtorch_cpu`` (its static initialisers: ~150 ms in one C call), the init of
``torch._C`` (~200 ms of pybind11 registrations, one C call too), and Python's cyclic garbage
collector (~340 ms of the samples, in collections over the heap the import grows, each one C call).

- the whole import starts as the app does (`start_import`, called by `make_application`), on a
  thread of its own, so most of it is done while the window is built and before it shows; the
  worker that needs torch waits for that thread. Not later, beside the workers: the dynamic
  linker has one lock, so a worker that loads any extension module then (the image reader's
  numpy.random, say) waits for libtorch's initialisers while holding the GIL - the same stall,
  moved (measured: 195 ms).
- ``preload_torch_libraries`` takes the first piece off the GIL. A foreign
  function called through ctypes runs without the GIL, so it calls the C library's own
  ``dlopen`` on ``libc10`` and ``libtorch_cpu`` (libraries of no Python, whose loading runs no
  Python code); the import that follows finds them loaded. The same flags as torch's own
  global-deps loader (``RTLD_NOW | RTLD_GLOBAL``). Linux and macOS, torch's standard layout
  (``torch/lib``); elsewhere it does nothing.
- the collector is paused for the import (nothing the import makes is garbage worth a full
  collection) and runs again after it.
- ``torch._C``'s init stays: it cannot give the GIL away.
- then, on the same thread, the annotation tools' libraries (`import_tool_libraries`: cv2, scikit-image's
  superpixels, scipy.ndimage), which nothing imported before the first A: its superpixels job
  imported them beside the annotation build (0.3-1 s of imports whose extension modules' loads
  hold the GIL 5-35 ms each), and the first A's UI thread stalled 45-140 ms. `import_torch` does
  not wait for them.

``QGN_STUDIO_PRELOAD=0`` turns all of it off (to compare, or should a platform object).
"""
from __future__ import annotations

import ctypes
import importlib.util
import os
import sys
import threading
from pathlib import Path

from qgn_studio.gc_pause import collections_paused

LIBRARIES = ("libc10", "libtorch_cpu")  # in dependency order


_importing: threading.Thread | None = None
_torch_done = threading.Event()  # set by `start_import`'s thread once torch is imported (or failed)


def wait_for_background(timeout_s: float | None = None) -> None:
    """(Tests, benchmarks) wait until `start_import`'s thread is done."""
    if _importing is not None:
        _importing.join(timeout_s)


def _enabled() -> bool:
    return os.environ.get("QGN_STUDIO_PRELOAD", "1") != "0"


def start_import() -> None:
    """Begin `import_torch` on a daemon thread of its own (once; not once torch is imported)."""
    global _importing
    if _importing is None and "torch" not in sys.modules and _enabled():
        _importing = threading.Thread(target=_import_in_background, name="qgn-import-torch", daemon=True)
        _importing.start()


def import_torch():
    """``import torch`` as `_import_gently` does it (or waiting, without the GIL, for `start_import`'s
    thread to finish it); returns the module. Cheap once torch is imported."""
    if _importing is not None:
        _torch_done.wait()
    elif "torch" not in sys.modules and _enabled():
        _import_gently()
    import torch

    return torch


def _import_in_background() -> None:
    """`_import_gently`, quietly: a failure here is not the user's news. The app may be quitting
    (a mistyped option exits while the import runs: torch then fails to register its exit hooks),
    and a real failure - a broken torch - repeats in the worker's own `import_torch`, which reports it."""
    try:
        _import_gently()
    except Exception:  # noqa: BLE001  (see above: the worker's import raises it again)
        pass
    finally:
        _torch_done.set()
    try:  # (the collector is not paused: the worker that waited for torch runs by now)
        import_tool_libraries()
    except Exception:  # noqa: BLE001  (the tool that needs one imports it again, and says so)
        pass


def import_tool_libraries() -> None:
    """Import what the annotation tools load on first use (``qgn.annotation.superpixels.import_libraries``)."""
    from qgn.annotation.superpixels import import_libraries

    import_libraries()


def _import_gently() -> None:
    """The libraries first, without the GIL; then the import with the collector paused."""
    preload_torch_libraries()
    with collections_paused():
        import torch  # noqa: F401


def torch_library_dir() -> Path | None:
    """torch's ``lib`` folder, found without importing torch (None where torch is not installed)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).parent / "lib"


def preload_torch_libraries() -> list[str]:
    """dlopen ``LIBRARIES`` with the GIL released; returns the names loaded ([] when nothing was:
    torch already imported, another platform or layout, or a library that would not load)."""
    suffix = {"linux": ".so", "darwin": ".dylib"}.get(sys.platform.split("-")[0].rstrip("0123456789"))
    if "torch" in sys.modules or suffix is None or not _enabled():
        return []
    folder = torch_library_dir()
    if folder is None:
        return []
    dlopen = ctypes.CDLL(None).dlopen  # a ctypes call releases the GIL for its duration
    dlopen.restype, dlopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_int]
    loaded = []
    for name in LIBRARIES:
        path = folder / f"{name}{suffix}"
        if not path.is_file() or not dlopen(os.fsencode(path), os.RTLD_NOW | os.RTLD_GLOBAL):
            break
        loaded.append(name)
    return loaded
