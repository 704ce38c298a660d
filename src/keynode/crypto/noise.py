"""Discrete Laplace noise from an exact sampler, for noise added under encryption.

A released vector of column sums gets independent discrete Laplace noise
(two-sided geometric: ``P[Z = z]`` proportional to ``exp(-|z| / scale)``) of scale
``Delta_1 / epsilon`` per column, where ``Delta_1`` is the sum over columns of what one
customer can change (``2^B - 1`` for a ``B``-bit column, 1 for the count). This is
``epsilon``-differential privacy for the whole vector (Ghosh, Roughgarden, Sundararajan
2009; the discrete analogue of the Laplace mechanism), so budgets compose by adding
``epsilon`` (:mod:`keynode.crypto.budget`).

The sampler is Algorithm 2 of Canonne, Kamath and Steinke, *The Discrete Gaussian for
Differential Privacy* (NeurIPS 2020): integer and rational arithmetic only, no floating
point, so the output distribution is exactly the stated one (no floating-point attacks,
cf. Mironov 2012). Randomness is injectable (``rng``) so tests are reproducible; the
default is the operating system's CSPRNG. OpenDP would provide the same mechanism, but
its samplers cannot take an injected random source and it is a large native dependency
for one function.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from fractions import Fraction

from keynode.crypto.paillier_keys import default_rng
from keynode.errors import InputError


def _bernoulli(p: Fraction, rng: random.Random) -> bool:
    """True with probability ``p`` (``0 <= p <= 1``), exactly."""
    return rng.randrange(p.denominator) < p.numerator


def _bernoulli_exp_at_most_one(gamma: Fraction, rng: random.Random) -> bool:
    """True with probability ``exp(-gamma)`` for ``0 <= gamma <= 1``."""
    k = 1
    while _bernoulli(gamma / k, rng):
        k += 1
    return k % 2 == 1


def bernoulli_exp(gamma: Fraction, rng: random.Random) -> bool:
    """True with probability ``exp(-gamma)`` for rational ``gamma >= 0`` (CKS Algorithm 1)."""
    whole = gamma.numerator // gamma.denominator
    for _ in range(whole):
        if not _bernoulli_exp_at_most_one(Fraction(1), rng):
            return False
    return _bernoulli_exp_at_most_one(gamma - whole, rng)


def discrete_laplace(scale: Fraction, rng: random.Random | None = None) -> int:
    """One sample of the discrete Laplace distribution with ``scale > 0`` (CKS Algorithm 2)."""
    if scale <= 0:
        raise InputError("the noise scale must be positive")
    rng = rng or default_rng()
    t, s = scale.numerator, scale.denominator  # scale = t / s
    while True:
        u = rng.randrange(t)
        if not bernoulli_exp(Fraction(u, t), rng):
            continue
        v = 0
        while bernoulli_exp(Fraction(1), rng):
            v += 1
        y = (u + t * v) // s
        negative = rng.randrange(2) == 1
        if negative and y == 0:
            continue
        return -y if negative else y


def laplace_noise(
    epsilon: Fraction, sensitivities: Sequence[int], rng: random.Random | None = None
) -> list[int]:
    """Noise for a vector of column sums: each column gets scale ``sum(sensitivities)/epsilon``."""
    if epsilon <= 0:
        raise InputError("epsilon must be positive")
    if not sensitivities or any(d < 1 for d in sensitivities):
        raise InputError("sensitivities must be positive integers")
    scale = Fraction(sum(sensitivities)) / Fraction(epsilon)
    rng = rng or default_rng()
    return [discrete_laplace(scale, rng) for _ in sensitivities]
