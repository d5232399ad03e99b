"""The SAM and GD stability edges against hand computations."""

import math

import numpy as np
import pytest
import torch

from sam_core import gd_edge, sam_edge, sam_edge_ratio


@pytest.mark.parametrize("alpha,ratio", [(0.05, 0.200), (10.0, 0.916)])
def test_ratio_values_from_the_paper(alpha, ratio):
    assert sam_edge_ratio(alpha) == pytest.approx(ratio, abs=5e-4)


@pytest.mark.parametrize("g,lr,rho", [(1.0, 0.1, 0.05), (0.01, 0.01, 0.1), (5.0, 1.0, 2.0)])
def test_edge_is_the_root_of_the_stability_equation(g, lr, rho):
    lam = sam_edge(g, lr, rho)
    assert lr * lam * (1 + rho * lam / g) == pytest.approx(2.0, rel=1e-12)
    # the textbook form (g/2ρ)(√(1+8ρ/(ηg)) − 1)
    assert lam == pytest.approx(g / (2 * rho) * (math.sqrt(1 + 8 * rho / (lr * g)) - 1), rel=1e-10)
    alpha = lr * g / (2 * rho)
    assert lam / (2 / lr) == pytest.approx(sam_edge_ratio(alpha), rel=1e-10)


def test_hand_computed_point():
    # η = 0.1, ρ = 0.05, ‖g‖ = 1: √(1 + 8·0.05/0.1) = √5; λ = (1/0.1)(√5 − 1) = 12.3607
    assert sam_edge(1.0, 0.1, 0.05) == pytest.approx(10 * (math.sqrt(5) - 1), rel=1e-12)


def test_limits_and_array_inputs():
    assert sam_edge(1.0, 0.2, 0.0) == pytest.approx(10.0)
    assert gd_edge(0.2, momentum=0.9) == pytest.approx(19.0)
    assert sam_edge(0.0, 0.1, 0.05) == 0.0
    g = np.array([0.0, 1.0, 100.0])
    out = sam_edge(g, 0.1, 0.05)
    assert out[0] == 0 and out[2] < 20 and out[2] > out[1]
    t = sam_edge(torch.tensor([1.0, 1e6], dtype=torch.float64), 0.1, 0.05)
    assert float(t[1]) == pytest.approx(20.0, rel=1e-4)  # huge gradient: SAM edge -> GD edge
