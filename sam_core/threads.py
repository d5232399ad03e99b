"""Thread-count guard for the labs' small batched problems.

Their tensors are tiny (a few hundred numbers per run), so intra-op parallelism only adds overhead,
and with busy cores OpenMP's spinning can make a run 50x slower. ``torch.set_num_threads`` acts on
the calling thread's OpenMP setting, so the guard is local to the thread that runs the experiment
and restores the previous value on exit.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch


@contextmanager
def limited_threads(n: int | None):
    """Run the body with ``torch.set_num_threads(n)`` (``None``: leave the setting alone)."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(old)
