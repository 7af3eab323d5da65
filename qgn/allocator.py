"""How the C allocator treats the big buffers a network run frees (glibc on Linux only).

torch's CPU tensors come from ``malloc``. glibc serves blocks above its mmap threshold (128 KiB at
start) with fresh ``mmap`` pages and returns the top of the heap to the kernel whenever more than
its trim threshold lies free there, so a decoder level's buffers, freed and allocated again at the
next level or image, are page-faulted in anew each time: measured on the street model's decoder at
240×180 (one thread), about 30 % of All's and the dense decoder's CPU time went to those faults
(``benchmarks/bench_allocator.py``: 0.69× and 0.71× the time with this policy).

``tune_allocator`` keeps blocks up to 32 MiB in the heap and up to 64 MiB of freed memory at its
top for reuse (plus 16 MiB of padding per growth) - a bounded amount; bigger blocks (a full-resolution
encoder's) still come from and go back to the kernel. The entry points call it at start (``qgn``'s
``main``, the app's ``make_application``); the library never changes process-wide state on import.

Left alone when ``QGN_MALLOC=default``, when any ``MALLOC_*`` variable is set (the user's own glibc
tuning wins), and off glibc (no ``mallopt``).
"""
from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # glibc's malloc.h
SETTINGS = ((M_MMAP_THRESHOLD, 32 << 20), (M_TRIM_THRESHOLD, 64 << 20), (M_TOP_PAD, 16 << 20))
ENV = "QGN_MALLOC"


def tune_allocator(environ: dict | None = None) -> bool:
    """Apply ``SETTINGS`` with glibc's ``mallopt``; True when they took effect."""
    environ = os.environ if environ is None else environ
    if environ.get(ENV, "").strip().lower() == "default":
        return False
    if any(key.startswith("MALLOC_") for key in environ):
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        gnu_libc_version = libc.gnu_get_libc_version  # glibc only: musl's mallopt is a stub
    except (OSError, AttributeError):
        return False
    del gnu_libc_version
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in SETTINGS)
