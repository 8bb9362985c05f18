"""Pausing the cyclic garbage collector while a large batch of acyclic objects is built.

A shared leaf (standard library only): the engine pauses it while it merges a whole
input, the queue's submit while it builds and writes a batch. Both keep thousands of
new objects alive until the end, and each collector pass rescans them for cycles
they do not have (benchmarks/README.md measures both).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the collector for the block; its previous state is restored even on error.

    The code inside must create no reference cycles, so the pause frees nothing late.
    Nested or concurrent pauses leave it enabled at the end: the first to pause
    restores it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
