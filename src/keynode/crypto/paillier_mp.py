"""Typed access to the gmpy2 functions the Paillier modules use.

gmpy2 2.3 ships no type stubs, so mypy would see every big-integer result as ``Any``.
This module declares the few functions used, with ``int`` standing for ``gmpy2.mpz``
(an ``int``-compatible type), and imports the real ones at run time: no wrapper cost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:

    def mpz(x: int, /) -> int:
        """A GMP integer."""

    def powmod(base: int, exp: int, mod: int, /) -> int:
        """``base^exp mod mod``."""

    def gcd(a: int, b: int, /) -> int:
        """Greatest common divisor."""

    def invert(a: int, mod: int, /) -> int:
        """``a^-1 mod mod``."""

    def is_prime(x: int, n: int = 25, /) -> bool:
        """Miller-Rabin with ``n`` rounds (after trial division)."""

    def is_square(x: int, /) -> bool:
        """Whether ``x`` is a perfect square."""

    def primorial(n: int, /) -> int:
        """The product of the primes up to ``n``."""

else:
    from gmpy2 import gcd, invert, is_prime, is_square, mpz, powmod, primorial

__all__ = ["gcd", "invert", "is_prime", "is_square", "mpz", "powmod", "primorial"]
