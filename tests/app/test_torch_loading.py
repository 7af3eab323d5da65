"""qgn_studio.torch_loading: libtorch is mapped before `import torch`, which then works as usual.

Run in a fresh interpreter (this one imported torch long ago). The stall it removes is measured,
not asserted: `benchmarks/bench_app_latency.py` (the UI thread's worst gap while the model loads).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

PROBE = """
import json, sys
from qgn_studio.torch_loading import preload_torch_libraries
loaded = preload_torch_libraries()
maps = open("/proc/self/maps").read()
report = {"loaded": loaded, "mapped": "libtorch_cpu" in maps, "torch_before": "torch" in sys.modules}
import torch
report["sum"] = float(torch.nn.functional.conv2d(torch.ones(1, 2, 5, 5), torch.ones(3, 2, 3, 3), padding=1).sum())
report["again"] = preload_torch_libraries()
print(json.dumps(report))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_libtorch_is_loaded_before_the_import_and_torch_still_works() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["loaded"] == ["libc10", "libtorch_cpu"]
    assert report["mapped"] and not report["torch_before"]
    assert report["sum"] == 3 * 2 * 13 * 13  # out channels x in channels x (2+3+3+3+2)^2 in-bounds taps
    assert report["again"] == []  # torch imported: nothing to do


IMPORT_PROBE = """
import gc, json, sys
from qgn_studio.torch_loading import import_torch, start_import
if sys.argv[1] == "early":
    start_import()  # as make_application does: the import runs on its own thread
torch = import_torch()
print(json.dumps({"module": torch.__name__, "gc": gc.isenabled(), "ok": float(torch.ones(4).sum())}))
"""


@pytest.mark.parametrize("when", ["early", "on_demand"])
def test_import_torch_gives_torch_and_turns_the_collector_back_on(when: str) -> None:
    out = subprocess.run([sys.executable, "-c", IMPORT_PROBE, when], capture_output=True, text=True, timeout=120,
                         check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"module": "torch", "gc": True, "ok": 4.0}


def test_nothing_is_done_once_torch_is_imported() -> None:
    import torch  # noqa: F401  (this process has it)
    from qgn_studio.torch_loading import preload_torch_libraries

    assert preload_torch_libraries() == []


def test_quitting_while_torch_imports_prints_nothing() -> None:
    """A mistyped option makes the app quit while the background import runs; torch then fails to
    register its exit hooks. The user must see their one-line error, not that traceback."""
    code = textwrap.dedent("""
        import atexit, sys, time
        from qgn_studio.torch_loading import start_import
        atexit.register(time.sleep, 1.0)  # the app's teardown: the import runs on after shutdown began
        start_import()
        deadline = time.monotonic() + 60
        while "torch._C" not in sys.modules and time.monotonic() < deadline:  # well into the import
            time.sleep(0.001)
        raise SystemExit(1)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr, out.stderr


def test_the_collector_pause_nests_and_freezes_on_request() -> None:
    """``gc_pause.collections_paused`` (torch's import, a project's reading): off inside, on again
    after; inside another pause it leaves the collector to that one; ``freeze`` keeps what is alive
    out of later collections."""
    import gc

    from qgn_studio.gc_pause import collections_paused

    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    try:
        with collections_paused():
            assert not gc.isenabled()
            with collections_paused(freeze=True):
                kept = [[] for _ in range(10)]
                assert not gc.isenabled()
            assert not gc.isenabled() and gc.get_freeze_count() >= frozen + len(kept)
        assert gc.isenabled()
    finally:
        gc.unfreeze()
        gc.enable()


TOOLS_PROBE = """
import json, sys
import numpy as np
from qgn_studio.app import make_application
from qgn_studio import torch_loading
make_application()  # starts the background imports, as the app does
torch_loading.wait_for_background(120)
before = set(sys.modules)
# what the first A on an image runs on a job thread: the superpixels of a photo (resized first)
from qgn.annotation.superpixels import oversegment
from qgn.annotation.working import WorkingImage
image = np.zeros((900, 1200, 3), np.uint8)
image[:, 600:] = (200, 40, 40)
over = oversegment(WorkingImage(image, pixels=1 << 16))
over.full_index(0, [0])  # a superpixel click (scipy.ndimage.find_objects)
new = sorted(m for m in set(sys.modules) - before if m.split(".")[0] in ("cv2", "skimage", "scipy"))
print(json.dumps({"new": new[:10], "count": len(new)}))
"""


def test_the_first_superpixels_import_nothing_after_start_up() -> None:
    """The first A on an image computes its superpixels on a job thread; in a fresh app that
    imported cv2, scikit-image and scipy there (~0.3-1 s of imports whose extension modules' loads
    hold the interpreter lock 5-35 ms each), and the UI thread stalled meanwhile. They load at
    start-up now, on the background thread, after torch."""
    out = subprocess.run([sys.executable, "-c", TOOLS_PROBE], capture_output=True, text=True, timeout=240,
                         check=True, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"new": [], "count": 0}
