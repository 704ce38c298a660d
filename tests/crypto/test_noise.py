"""The exact discrete Laplace sampler against its pmf, and the epsilon budget."""

from __future__ import annotations

import math
import random
from collections import Counter
from fractions import Fraction

import pytest

from keynode.crypto.budget import EpsilonBudget
from keynode.crypto.noise import bernoulli_exp, discrete_laplace, laplace_noise
from keynode.errors import InputError, LimitExceeded

SAMPLES = 20_000
K = 6  # bins -K..K individually, plus the two tails
# Upper 0.1% point of chi-square with 2K + 2 = 14 degrees of freedom.
CHI2_CRITICAL_14_DF = 36.12


def discrete_laplace_pmf(z: int, scale: float) -> float:
    a = math.exp(-1 / scale)
    return (1 - a) / (1 + a) * a ** abs(z)


def chi_square(samples: list[int], scale: float) -> float:
    """Chi-square statistic of ``samples`` against discrete Laplace(``scale``)."""
    a = math.exp(-1 / scale)
    tail = a ** (K + 1) / (1 + a)  # P[Z > K] = P[Z < -K]
    probs: dict[int | str, float] = {z: discrete_laplace_pmf(z, scale) for z in range(-K, K + 1)}
    probs["low"], probs["high"] = tail, tail
    counts = Counter("low" if z < -K else "high" if z > K else z for z in samples)
    n = len(samples)
    return sum((counts.get(b, 0) - n * p) ** 2 / (n * p) for b, p in probs.items())


@pytest.fixture(scope="module")
def samples() -> list[int]:
    rng = random.Random(20201)
    return [discrete_laplace(Fraction(3, 2), rng) for _ in range(SAMPLES)]


def test_discrete_laplace_matches_its_pmf(samples: list[int]) -> None:
    assert sum(discrete_laplace_pmf(z, 1.5) for z in range(-200, 201)) == pytest.approx(1)
    assert chi_square(samples, 1.5) < CHI2_CRITICAL_14_DF


def test_the_distribution_test_rejects_a_wrong_scale(samples: list[int]) -> None:
    # The same samples against scales 20% off: the test has the power to fail.
    assert chi_square(samples, 1.8) > CHI2_CRITICAL_14_DF
    assert chi_square(samples, 1.2) > CHI2_CRITICAL_14_DF


def test_discrete_laplace_is_symmetric(samples: list[int]) -> None:
    mean, sd = sum(samples) / SAMPLES, math.sqrt(2 * math.exp(-2 / 3)) / (1 - math.exp(-2 / 3))
    assert abs(mean) < 4.5 * sd / math.sqrt(SAMPLES)


@pytest.mark.parametrize("gamma", [Fraction(0), Fraction(1, 3), Fraction(1), Fraction(5, 3)])
def test_bernoulli_exp_has_probability_exp_minus_gamma(gamma: Fraction) -> None:
    rng = random.Random(7)
    hits = sum(bernoulli_exp(gamma, rng) for _ in range(SAMPLES))
    p = math.exp(-gamma)
    assert abs(hits / SAMPLES - p) <= 4.5 * math.sqrt(p * (1 - p) / SAMPLES) + 1e-12


def test_laplace_noise_uses_the_l1_sensitivity_over_epsilon() -> None:
    got = laplace_noise(Fraction(2), [1, 3], rng=random.Random(5))
    rng = random.Random(5)
    assert got == [discrete_laplace(Fraction(2), rng) for _ in range(2)]  # scale (1+3)/2


def test_large_scales_sample_quickly() -> None:
    rng = random.Random(8)
    draws = [discrete_laplace(Fraction(2**32 - 1, 1) / Fraction(1, 10), rng) for _ in range(200)]
    assert max(abs(d) for d in draws) > 2**32  # scale 4e10: draws are that large


@pytest.mark.parametrize(
    ("epsilon", "sensitivities"),
    [(Fraction(0), [1]), (Fraction(-1), [1]), (Fraction(1), []), (Fraction(1), [0])],
)
def test_bad_noise_parameters_are_refused(epsilon: Fraction, sensitivities: list[int]) -> None:
    with pytest.raises(InputError):
        laplace_noise(epsilon, sensitivities)


def test_zero_scale_is_refused() -> None:
    with pytest.raises(InputError):
        discrete_laplace(Fraction(0))


# -- budget ---------------------------------------------------------------------------


def test_budget_charges_exactly_and_refuses_once_spent() -> None:
    budget = EpsilonBudget("bank", limit=Fraction(1))
    for _ in range(10):
        budget = budget.charge(Fraction(1, 10))  # ten tenths are exactly one
    assert budget.remaining == 0
    with pytest.raises(LimitExceeded):
        budget.charge(Fraction(1, 10**9))


def test_budget_refuses_a_query_larger_than_what_is_left() -> None:
    budget = EpsilonBudget("insurer", limit=Fraction(1)).charge(Fraction(3, 4))
    with pytest.raises(LimitExceeded):
        budget.charge(Fraction(1, 2))
    assert budget.spent == Fraction(3, 4)  # a refused charge spends nothing


@pytest.mark.parametrize(
    ("limit", "spent", "charge"),
    [
        (Fraction(-1), Fraction(0), None),
        (Fraction(1), Fraction(2), None),
        (Fraction(1), Fraction(0), Fraction(0)),
    ],
)
def test_budget_misuse_is_an_input_error(
    limit: Fraction, spent: Fraction, charge: Fraction
) -> None:
    with pytest.raises(InputError):
        EpsilonBudget("p", limit, spent).charge(charge)
