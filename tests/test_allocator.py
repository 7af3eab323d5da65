"""The C allocator's policy (qgn/allocator.py): when it applies, and that glibc then keeps a
decoder-sized block in the heap instead of mapping fresh pages for it."""
from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import textwrap

import pytest

from qgn.allocator import tune_allocator


def glibc() -> bool:
    try:
        ctypes.CDLL(None).gnu_get_libc_version
    except (OSError, AttributeError):
        return False
    return sys.platform.startswith("linux")


def test_the_user_can_keep_glibcs_defaults() -> None:
    assert tune_allocator({"QGN_MALLOC": "default"}) is False
    assert tune_allocator({"QGN_MALLOC": " Default "}) is False
    assert tune_allocator({"MALLOC_ARENA_MAX": "2"}) is False  # the user's own glibc tuning wins


# A fresh interpreter: 20 MiB from malloc, counting glibc's mmapped blocks (mallinfo2.hblks) around it.
PROBE = textwrap.dedent("""
    import ctypes, sys
    from qgn.allocator import tune_allocator
    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                     "fordblks", "keepcost")]
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = MallInfo2
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
    libc.free.argtypes = (ctypes.c_void_p,)
    applied = tune_allocator() if sys.argv[1] == "tuned" else False
    before = libc.mallinfo2().hblks
    block = libc.malloc(20 << 20)
    print(applied, libc.mallinfo2().hblks - before)
    libc.free(block)
""")


@pytest.mark.skipif(not glibc(), reason="glibc only (mallopt, mallinfo2)")
@pytest.mark.parametrize("policy, applied, mapped", [("default", "False", "1"), ("tuned", "True", "0")])
def test_a_decoder_sized_block_stays_in_the_heap_once_tuned(policy, applied, mapped) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "QGN_MALLOC"}
    out = subprocess.run([sys.executable, "-c", PROBE, policy], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [applied, mapped]


def test_the_command_line_and_the_app_apply_it(monkeypatch) -> None:
    calls = []
    monkeypatch.setattr("qgn.allocator.tune_allocator", lambda *a, **k: calls.append("tuned") or True)
    from qgn.cli.main import main

    assert main(["models"]) == 0
    assert calls == ["tuned"]
    pytest.importorskip("PySide6")
    from qgn_studio.app import make_application

    make_application()
    assert calls == ["tuned", "tuned"]
