"""Fewer garbage collections while pytest starts.

Importing pytest and collecting a suite allocate a few hundred thousand objects that live
until the end, and CPython's default thresholds run a collection every 700 allocations,
rescanning them over and over (about 8% of the time to collection). The worker raises
the first threshold from its start until the collection is reported, then restores the
interpreter's own setting before any test runs, so tests see the usual garbage collector.
"""

import gc

STARTUP_THRESHOLD = (100_000, 50, 100)


def relax():
    """Raises the thresholds for pytest's start; returns the old ones for restore()."""
    saved = gc.get_threshold()
    gc.set_threshold(*STARTUP_THRESHOLD)
    return saved


def restore(saved):
    """Puts back the thresholds relax() replaced, unless a conftest or plugin set its own."""
    if saved is None or gc.get_threshold() != STARTUP_THRESHOLD:
        return
    # Without this, the first allocation after the thresholds drop would scan everything
    # pytest built, at once, before the first test (~20 ms for 500 tests). Freezing and
    # unfreezing moves it all to the oldest generation unscanned: still collectable,
    # just by a later full collection. Skipped if a conftest froze objects itself.
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()
    gc.set_threshold(*saved)
