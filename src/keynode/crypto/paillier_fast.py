"""Fast Paillier encryption: Damgård-Jurik-Nielsen randomness from a fixed-base table. Low-level.

Stock Paillier (and ``phe``) computes ``c = (1 + m*n) * r^n mod n^2`` with a fresh
``r``: one full exponentiation with a variable base per ciphertext. Here, following
Damgård, Jurik and Nielsen (DJN, *A generalization of Paillier's public-key system…*,
IJIS 2010), the encryptor picks once ``x`` in ``Z_n*``, sets ``h = -x^2 mod n`` and
``h_s = h^n mod n^2``, and uses ``h_s^a`` with a fresh random exponent ``a`` in place of
``r^n``. ``h_s^a = (h^a)^n`` is an n-th residue, so the ciphertext has the usual form and
any Paillier decryptor (``phe`` included) decrypts it. Because the base is fixed,
``h_s^a`` comes from a precomputed radix-256 table (:class:`FixedBaseTable`) with one
multiplication per exponent byte and no squarings.

**Exponent length** (:class:`ExponentLength`). The default, ``FULL``, draws ``a``
uniformly from ``[0, 2^(2k + 128))`` for a ``k``-bit ``n``: statistically (2^-128)
uniform modulo ``n * ord(h)``, which keeps DJN's reduction to DCR (see
``docs/paillier.md``). ``SHORT_DJN`` (``ceil(k/2)`` bits, DJN's fast variant) needs an
extra assumption and is only a named option.

**Owner encryption** (:class:`OwnerEncryptor`). The value holder encrypts under its own
key, so it knows ``p`` and ``q``: ``h_s`` has order dividing ``p - 1`` modulo ``p^2`` (and
``q - 1`` modulo ``q^2``), so ``h_s^a`` is computed as ``h_s^(a mod (p-1)) mod p^2`` and the
same for ``q``, joined by CRT — the *same* ciphertext as the public-key path, for a
fraction of the cost. :class:`PublicEncryptor` serves anyone holding only ``n``.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Sequence
from typing import Protocol

from keynode.crypto import paillier_mp as mp
from keynode.crypto.paillier_keys import PaillierPrivateKey, PaillierPublicKey, default_rng
from keynode.errors import InputError

#: Statistical distance target of the FULL exponent from uniform: 2^-128.
STATISTICAL_BITS = 128


class ExponentLength(enum.Enum):
    """How long the random exponent ``a`` in ``h_s^a`` is, for a ``k``-bit modulus."""

    #: ``2k + 128`` bits: uniform modulo ``n * ord(h)`` up to 2^-128; semantic security
    #: reduces to DCR (the default).
    FULL = "full"
    #: ``ceil(k/2)`` bits, DJN's short variant: also needs the assumption that ``h^a``
    #: with a short ``a`` is indistinguishable from a random element of ``<h>``.
    SHORT_DJN = "short-djn"

    def bits(self, key_bits: int) -> int:
        """Exponent length in bits for a ``key_bits``-bit modulus."""
        if self is ExponentLength.FULL:
            return 2 * key_bits + STATISTICAL_BITS
        return -(-key_bits // 2)


class FixedBaseTable:
    """``base^e mod modulus`` for one fixed base and any ``e < 2^(8 * rows)``.

    Row ``i`` holds ``base^(d * 256^i)`` for every byte value ``d``, so a power is the
    product of one entry per non-zero byte of ``e`` (BGMW fixed-base windowing, w = 8).
    The table takes ``rows * 256`` residues of memory (about 8 MB per prime for a
    2048-bit key). Wider windows (10 or 11 bits) showed no clear gain here, for 4-8x the
    memory, and bytes make the digits free.
    """

    __slots__ = ("_modulus", "_nbytes", "_rows")

    def __init__(self, base: int, modulus: int, exponent_bits: int) -> None:
        self._modulus = mp.mpz(modulus)
        self._nbytes = -(-exponent_bits // 8)
        rows = []
        step = mp.mpz(base) % self._modulus
        for _ in range(self._nbytes):
            row = [mp.mpz(1)]
            acc = mp.mpz(1)
            for _d in range(255):
                acc = acc * step % self._modulus
                row.append(acc)
            rows.append(row)
            step = acc * step % self._modulus  # base^(256^(i+1))
        self._rows = rows

    def pow(self, exponent: int) -> int:
        """``base^exponent mod modulus``; ``exponent`` must be non-negative and in range."""
        modulus = self._modulus
        acc = mp.mpz(1)
        for row, digit in zip(
            self._rows, int(exponent).to_bytes(self._nbytes, "little"), strict=True
        ):
            if digit:
                acc = acc * row[digit] % modulus
        return acc


class Encryptor(Protocol):
    """What the protocols need from an encryptor: exponent draws and ciphertexts."""

    @property
    def public_key(self) -> PaillierPublicKey: ...

    def draw_exponent(self) -> int: ...

    def randomizer(self, exponent: int) -> int: ...

    def encrypt(self, value: int) -> int: ...

    def encrypt_with(self, value: int, exponent: int) -> int: ...


def _djn_base(public_key: PaillierPublicKey, rng: random.Random) -> int:
    """``h = -x^2 mod n`` for a random unit ``x``."""
    n = public_key.n
    while True:
        x = mp.mpz(rng.randrange(2, int(n)))
        if mp.gcd(x, n) == 1:
            return (-x * x) % n


class PublicEncryptor:
    """DJN encryption under any public key, with a table modulo ``n^2``.

    The encryptor draws its own ``h`` (``h`` is not part of the key), so a peer cannot
    choose a weak base for it. Memory: ``bits(k)/8 * 256`` residues of ``2k`` bits
    (about 75 MB and 0.6 s to build for a 2048-bit key with the FULL exponent).
    """

    def __init__(
        self,
        public_key: PaillierPublicKey,
        *,
        exponent_length: ExponentLength = ExponentLength.FULL,
        rng: random.Random | None = None,
    ) -> None:
        self._public_key = public_key
        self._rng = rng or default_rng()
        self.exponent_bits = exponent_length.bits(public_key.key_bits)
        h = _djn_base(public_key, self._rng)
        hs = mp.powmod(h, public_key.n, public_key.nsquare)
        self._table = FixedBaseTable(hs, public_key.nsquare, self.exponent_bits)

    @property
    def public_key(self) -> PaillierPublicKey:
        """The key this encryptor encrypts under."""
        return self._public_key

    def draw_exponent(self) -> int:
        """A fresh random exponent ``a`` of :attr:`exponent_bits` bits."""
        return self._rng.getrandbits(self.exponent_bits)

    def randomizer(self, exponent: int) -> int:
        """``h_s^exponent mod n^2``."""
        return self._table.pow(exponent)

    def encrypt_with(self, value: int, exponent: int) -> int:
        """Encrypt a signed integer with a given exponent (deterministic; for pools)."""
        pk = self._public_key
        return (1 + pk.encode(value) * pk.n) * self._table.pow(exponent) % pk.nsquare

    def encrypt(self, value: int) -> int:
        """Encrypt a signed integer with fresh randomness."""
        return self.encrypt_with(value, self.draw_exponent())


class OwnerEncryptor:
    """DJN encryption by the key owner: two half-size tables modulo ``p^2`` and ``q^2``.

    Produces exactly the ciphertext :class:`PublicEncryptor` would for the same ``h`` and
    exponent, at about a sixth of the cost (2048 bits). ``h`` may be given (worker processes must
    share it to reproduce a single-process run); by default it is drawn from ``rng``.
    """

    def __init__(
        self,
        private_key: PaillierPrivateKey,
        *,
        exponent_length: ExponentLength = ExponentLength.FULL,
        rng: random.Random | None = None,
        h: int | None = None,
    ) -> None:
        pk = private_key.public_key
        self._private_key = private_key
        self._rng = rng or default_rng()
        self.exponent_length = exponent_length
        self.exponent_bits = exponent_length.bits(pk.key_bits)
        if h is None:
            h = _djn_base(pk, self._rng)
        elif not 1 < h < pk.n or mp.gcd(h, pk.n) != 1:
            raise InputError("h must be a unit modulo n")
        self.h = mp.mpz(h)
        p, q = private_key.p, private_key.q
        psq, qsq = private_key.psquare, private_key.qsquare
        # h_s = h^n; modulo p^2 its order divides p - 1, so exponents shrink to |p| bits.
        self._table_p = FixedBaseTable(mp.powmod(h, pk.n, psq), psq, int(p.bit_length()))
        self._table_q = FixedBaseTable(mp.powmod(h, pk.n, qsq), qsq, int(q.bit_length()))
        self._p_minus_1, self._q_minus_1 = p - 1, q - 1
        self._psq_inv_qsq = mp.invert(psq, qsq)

    @property
    def public_key(self) -> PaillierPublicKey:
        """The key this encryptor encrypts under."""
        return self._private_key.public_key

    @property
    def private_key(self) -> PaillierPrivateKey:
        """The owner's key (worker processes are built from it)."""
        return self._private_key

    def draw_exponent(self) -> int:
        """A fresh random exponent ``a`` of :attr:`exponent_bits` bits."""
        return self._rng.getrandbits(self.exponent_bits)

    def _join(self, cp: int, cq: int) -> int:
        psq = self._private_key.psquare
        return cp + psq * ((cq - cp) * self._psq_inv_qsq % self._private_key.qsquare)

    def randomizer(self, exponent: int) -> int:
        """``h_s^exponent mod n^2``, computed modulo ``p^2`` and ``q^2``."""
        return self._join(
            self._table_p.pow(exponent % self._p_minus_1),
            self._table_q.pow(exponent % self._q_minus_1),
        )

    def encrypt_with(self, value: int, exponent: int) -> int:
        """Encrypt a signed integer with a given exponent (deterministic; for pools)."""
        sk = self._private_key
        gm = 1 + sk.public_key.encode(value) * sk.public_key.n
        cp = gm * self._table_p.pow(exponent % self._p_minus_1) % sk.psquare
        cq = gm * self._table_q.pow(exponent % self._q_minus_1) % sk.qsquare
        return self._join(cp, cq)

    def encrypt(self, value: int) -> int:
        """Encrypt a signed integer with fresh randomness."""
        return self.encrypt_with(value, self.draw_exponent())

    def encrypt_many(self, values: Sequence[int], exponents: Sequence[int]) -> list[int]:
        """Encrypt ``values[i]`` with ``exponents[i]`` (the worker-process entry point)."""
        if len(values) != len(exponents):
            raise InputError("one exponent per value is needed")
        return [self.encrypt_with(v, a) for v, a in zip(values, exponents, strict=True)]


class RandomnessPool:
    """Randomizers ``h_s^a`` computed ahead of time, each handed out exactly once.

    Fill it while the process would otherwise wait (e.g. during the ECDH phase); then an
    encryption costs one modular multiplication. When the pool runs dry it computes
    randomizers on demand, so it never reuses one (reuse would link ciphertexts).
    """

    def __init__(self, encryptor: Encryptor) -> None:
        self._encryptor = encryptor
        self._ready: list[int] = []

    def __len__(self) -> int:
        return len(self._ready)

    def fill(self, count: int) -> None:
        """Precompute ``count`` more randomizers."""
        enc = self._encryptor
        self._ready.extend(enc.randomizer(enc.draw_exponent()) for _ in range(count))

    def encrypt(self, value: int) -> int:
        """Encrypt with a pooled randomizer (or a fresh one if the pool is empty)."""
        enc = self._encryptor
        pk = enc.public_key
        r = self._ready.pop() if self._ready else enc.randomizer(enc.draw_exponent())
        return (1 + pk.encode(value) * pk.n) * r % pk.nsquare
