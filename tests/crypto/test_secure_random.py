"""The fast CSPRNG shuffle: a permutation, and every permutation about equally likely."""

from __future__ import annotations

import itertools
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from keynode.crypto.secure_random import SecureRandom


@given(st.lists(st.integers(), max_size=200))
def test_shuffle_is_a_permutation(items: list[int]) -> None:
    shuffled = list(items)
    SecureRandom().shuffle(shuffled)
    assert sorted(shuffled) == sorted(items)


def test_every_permutation_of_four_is_about_equally_likely() -> None:
    rng, trials = SecureRandom(), 48_000
    seen: Counter[tuple[int, ...]] = Counter()
    for _ in range(trials):
        items = [0, 1, 2, 3]
        rng.shuffle(items)
        seen[tuple(items)] += 1
    assert set(seen) == set(itertools.permutations(range(4)))
    expected = trials / 24
    chi2 = sum((count - expected) ** 2 / expected for count in seen.values())
    assert chi2 < 60  # 23 degrees of freedom: p < 1e-4 for a fair shuffle to fail


def test_a_shuffle_of_many_moves_almost_everything() -> None:
    items = list(range(10_000))
    SecureRandom().shuffle(items)
    assert sum(1 for i, v in enumerate(items) if i == v) < 20
