"""Settings of the Python process that every kpibot process applies when it starts (the CLI,
``kpibot run`` in every mode, the report workers): one home, so that a benchmark measures
what a user's process does.

The cyclic garbage collector. A metric card of a large team builds tens of thousands of short
records (rows, PR facts, timelines) that reference counting frees on its own; with CPython's
default thresholds (700, 10, 10) their allocation triggers a collection every 700 objects and
a full one every 70,000, each full collection walking every live object, SQLAlchemy's and
pydantic's included. That was 20 to 35 % of a card's time at 800,000 PRs (``bench/``). A first
generation of 50,000 allocations keeps the collector for real cycles, and ``gc.freeze()``
moves what is alive after start-up (modules, mapped classes, the configuration) out of the
collections for good. Cyclic garbage waits a little longer to be freed; the memory figures
of the benchmarks include it.
"""

from __future__ import annotations

import gc

#: (first generation, second, third): see the module's text
GC_THRESHOLDS = (50_000, 20, 20)

_frozen = False


def tune_gc(refreeze: bool = False) -> None:
    """Set the collector's thresholds and, the first time (or with ``refreeze``, once a
    long-running process has imported and built what it serves with), freeze the objects
    alive now. A process that runs many commands (the tests call the CLI's ``main`` hundreds
    of times) freezes only once: what it freezes is never collected."""
    global _frozen
    gc.set_threshold(*GC_THRESHOLDS)
    if refreeze or not _frozen:
        _frozen = True
        gc.freeze()
