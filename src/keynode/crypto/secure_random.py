"""The OS CSPRNG with a shuffle fast enough for a million records.

``random.SystemRandom.shuffle`` asks the OS for randomness once per element: two seconds
for the million records the key node shuffles in a session, twice, on the critical path.
:class:`SecureRandom` draws eight bytes per element in one call and runs Fisher-Yates on
them. Each index is a 64-bit value reduced mod ``i + 1``: the bias is below ``n / 2^64``
(under ``2^-43`` at a million), negligible for hiding which record matched.
"""

from __future__ import annotations

import os
import random
from collections.abc import MutableSequence
from typing import Any


class SecureRandom(random.SystemRandom):
    """``SystemRandom`` whose :meth:`shuffle` draws its randomness in one OS call."""

    def shuffle(self, x: MutableSequence[Any]) -> None:
        n = len(x)
        if n < 2:
            return
        draws = memoryview(os.urandom(8 * n)).cast("Q")
        for i in range(n - 1, 0, -1):
            j = draws[i] % (i + 1)
            x[i], x[j] = x[j], x[i]
