"""The Dynamics lab's experiments: the SAM rules of :mod:`sam_core.rules` run on :mod:`sam_core.dynamics.problems`.

Each experiment is a generator yielding ``(progress, partial result)`` so that a page can stream it
from a background thread and a script can simply run it to the end (:func:`run_to_end`).
"""

from sam_core.dynamics.saddle import SaddleConfig, SaddleResult, escape_epochs, run_saddle


def run_to_end(gen):
    """Exhaust an experiment generator and return its last result."""
    result = None
    for _, item in gen:
        result = item
    return result


__all__ = ["SaddleConfig", "SaddleResult", "escape_epochs", "run_saddle", "run_to_end"]
