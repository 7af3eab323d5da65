"""The entry script of the PyInstaller bundle: ``qgn-studio [ARGS…]`` runs the app.

A frozen program has no Python interpreter to start, so ``sys.executable`` is the bundle itself.
The library starts one child process, ``sys.executable -m qgn.sparse.selfcheck NAME DEVICE`` (the
spconv self-check on CUDA); this script runs that module when it is called that way, and the app
otherwise.
"""
from __future__ import annotations

import runpy
import sys

CHILD_MODULES = ("qgn.sparse.selfcheck",)


def main() -> int:
    if len(sys.argv) >= 3 and sys.argv[1] == "-m" and sys.argv[2] in CHILD_MODULES:
        module = sys.argv[2]
        sys.argv = [module, *sys.argv[3:]]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return 0
    from qgn_studio.app import main as app_main

    return app_main()


if __name__ == "__main__":
    sys.exit(main())
