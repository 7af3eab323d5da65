"""Python's cyclic garbage collector paused while a block makes many long-lived objects
(``collections_paused``): importing torch (``torch_loading``), reading a big project
(``project_open``).

A full collection holds the interpreter lock — and so the window — for as long as it walks every
object: 110-160 ms once the model, Qt and a project's 20,000 documents are loaded, ~340 ms of
the samples of torch's import (measured on the development machine). What such a block makes is
no garbage worth a collection; reference counting still frees everything else.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager


@contextmanager
def collections_paused(freeze: bool = False):
    """No cycle collection while the block runs (a pause already on — another thread's — is left
    as it is: the collector runs again when that one ends). ``freeze``: what is alive after the
    block is left out of later collections too (``gc.freeze``): for objects that live long, which
    then cost nothing in collections; what it gives up is collecting the cyclic garbage that
    exists at that moment."""
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if paused:
            gc.enable()
