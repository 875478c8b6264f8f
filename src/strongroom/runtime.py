"""Process-wide settings of the serving process.

The cyclic garbage collector. A bulk load keeps each batch's documents alive while they are
written, so the young generation filled every 700 tracked allocations: in process, a 40,000-resident
load ran ~1,500 young, ~140 middle and 12 full collections, 1.3-1.5 s of ~14 s, and each full one
walked every object loaded at start (modules, classes, the node's state). After start, the server
freezes what exists (`gc.freeze`: those objects leave every later collection) and lets the young
generation grow to `YOUNG_THRESHOLD` tracked allocations: 0.28-0.38 s in the same load
(docs/performance.md, "The write path"). Garbage cycles are still collected. A search
request frees what it allocates, so queries rarely reach the collector either way, and an ingest
worker measured none worth the name: neither is changed.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "settle_collector"]

YOUNG_THRESHOLD = 10_000  # tracked allocations between young collections (CPython's default: 700)


def settle_collector() -> None:
    """Call once a process has started, before it serves: collects, freezes the survivors, widens the
    young generation. Not for tests or libraries: frozen objects are never collected."""
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
