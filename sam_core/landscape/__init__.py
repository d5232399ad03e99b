"""The Landscape lab's maths: 2-D test functions, the formula parser, trajectory races and lr/ρ sweeps.

- :mod:`.functions`: the built-in 2-D functions (value, gradient, Hessian, minima) and `make_landscape`.
- :mod:`.expr`: the safe parser for a user's own formula (never `eval`), compiled to batched torch.
- :mod:`.race`: several variants from one start, each run through :func:`sam_core.simulate`.
- :mod:`.lr_sweep`: success rate against η (and ρ) over many random starts, and basin maps.
"""
