"""Paillier keys, the integer encoding, and checked (de)serialisation. Low-level.

Keys use ``g = n + 1`` (so ``g^m = 1 + m*n mod n^2``), exactly like ``phe``
(python-paillier): a ciphertext made here decrypts with ``phe`` and the reverse, once
both sides agree on the encoding below.

**Encoding.** A signed integer ``v`` with ``|v| <= max_int = n // 3 - 1`` is the
plaintext ``v mod n``; this is ``phe``'s ``EncodedNumber`` with exponent 0, so
``phe.EncryptedNumber(phe_public_key, c, 0)`` is the same number. Plaintexts in the band
between ``max_int`` and ``n - max_int`` decode to an error, never to a wrong number.

**Peers' input** (public keys, ciphertexts) is validated on the way in and refused with
an opaque :class:`~keynode.errors.ProtocolError`; the reason goes to the log only.

Big integers are ``mp.mpz`` at run time (an ``int``-compatible type); they are typed
as ``int`` here because gmpy2 ships no type stubs.
"""

from __future__ import annotations

import logging
import random
import secrets
from dataclasses import dataclass, field

from keynode.crypto import paillier_mp as mp
from keynode.errors import InputError, ProtocolError

log = logging.getLogger(__name__)

#: Default modulus size: 2048 bits, about 112-bit security (NIST SP 800-57 Part 1 table 2,
#: same strength as RSA-2048); 3072 bits (about 128-bit) is supported.
DEFAULT_KEY_BITS = 2048
#: The policy minimum for keys accepted from peers or generated for real use.
MIN_KEY_BITS = 2048
#: Largest modulus accepted from a peer (bounds the work a peer can make us do).
MAX_KEY_BITS = 4096
#: Smallest key :func:`generate_keypair` makes even with ``allow_weak=True`` (tests only).
MIN_WEAK_KEY_BITS = 512

# Product of the odd primes below 2000: one gcd rejects moduli with a small factor.
_SMALL_PRIMES_PRODUCT = mp.primorial(2000) // 2
_MR_ROUNDS = 40

_INVALID_KEY = "invalid public key"
_INVALID_CIPHERTEXT = "invalid ciphertext"
_INVALID_PLAINTEXT = "invalid result"


def default_rng() -> random.Random:
    """The operating system's CSPRNG, the default wherever randomness is injectable."""
    return secrets.SystemRandom()


@dataclass(frozen=True, eq=False)
class PaillierPublicKey:
    """A Paillier public key ``n`` with ``g = n + 1``; compares equal by ``n``."""

    n: int
    nsquare: int = field(init=False, repr=False)
    max_int: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n = mp.mpz(self.n)
        object.__setattr__(self, "n", n)
        object.__setattr__(self, "nsquare", n * n)
        object.__setattr__(self, "max_int", n // 3 - 1)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PaillierPublicKey) and self.n == other.n

    def __hash__(self) -> int:
        return hash(int(self.n))

    @property
    def key_bits(self) -> int:
        """Bit length of ``n``."""
        return int(self.n.bit_length())

    @property
    def n_bytes(self) -> int:
        """Byte length of the serialised key."""
        return (self.key_bits + 7) // 8

    @property
    def ciphertext_bytes(self) -> int:
        """Byte length of a serialised ciphertext (``n^2`` fits in twice the key)."""
        return 2 * self.n_bytes

    # -- encoding -------------------------------------------------------------------

    def encode(self, value: int) -> int:
        """The plaintext for a signed integer (``phe`` exponent-0 encoding)."""
        if not -self.max_int <= value <= self.max_int:
            raise InputError("value does not fit the Paillier plaintext range")
        return mp.mpz(value) % self.n

    def decode(self, plaintext: int) -> int:
        """The signed integer for a decrypted plaintext; the overflow band is refused.

        A plaintext in the band can only come from an overflowing computation, a
        foreign-key ciphertext or a peer's tampering, hence :class:`ProtocolError`.
        """
        if plaintext <= self.max_int:
            return int(plaintext)
        if plaintext >= self.n - self.max_int:
            return int(plaintext - self.n)
        log.info("decrypted plaintext is in the overflow band")
        raise ProtocolError(_INVALID_PLAINTEXT)

    # -- wire format ----------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """``n`` as big-endian bytes of length :attr:`n_bytes`."""
        return int(self.n).to_bytes(self.n_bytes, "big")

    @classmethod
    def from_bytes(cls, data: bytes, *, min_bits: int = MIN_KEY_BITS) -> PaillierPublicKey:
        """Parse and validate a peer's key; refuse anything odd with ``ProtocolError``."""
        n = mp.mpz(int.from_bytes(data, "big"))
        if not _plausible_modulus(n, len(data), min_bits):
            raise ProtocolError(_INVALID_KEY)
        return cls(n)

    def ciphertext_to_bytes(self, ciphertext: int) -> bytes:
        """A ciphertext as big-endian bytes of length :attr:`ciphertext_bytes`."""
        return int(ciphertext).to_bytes(self.ciphertext_bytes, "big")

    def ciphertext_from_bytes(self, data: bytes) -> int:
        """Parse and validate a ciphertext under this key (see :meth:`check_ciphertext`)."""
        if len(data) != self.ciphertext_bytes:
            log.info("ciphertext has %d bytes, expected %d", len(data), self.ciphertext_bytes)
            raise ProtocolError(_INVALID_CIPHERTEXT)
        c = mp.mpz(int.from_bytes(data, "big"))
        self.check_ciphertext(c)
        return c

    def check_ciphertext(self, c: int) -> None:
        """Refuse ``c`` unless ``1 <= c < n^2`` and ``gcd(c, n) = 1``.

        A ciphertext of a different key of the same size passes when it happens to be in
        range; it then decrypts to noise, which :meth:`decode` and the packing checks
        refuse with overwhelming probability.
        """
        if not 1 <= c < self.nsquare or mp.gcd(c % self.n, self.n) != 1:
            log.info("ciphertext out of range or not a unit")
            raise ProtocolError(_INVALID_CIPHERTEXT)


def _plausible_modulus(n: int, length: int, min_bits: int) -> bool:
    """What can be checked about a peer's ``n`` without its factors."""
    bits = int(n.bit_length())
    checks = {
        "length": bits == 8 * length,
        "size": min_bits <= bits <= MAX_KEY_BITS,
        "odd": n % 2 == 1,
        "small factor": mp.gcd(n, _SMALL_PRIMES_PRODUCT) == 1,
        "square": not mp.is_square(n),
        "prime": not mp.is_prime(n, _MR_ROUNDS),
    }
    failed = [name for name, ok in checks.items() if not ok]
    if failed:
        log.info("peer public key refused: %s", ", ".join(failed))
    return not failed


@dataclass(frozen=True, eq=False, repr=False)
class PaillierPrivateKey:
    """The factors ``p``, ``q`` with the CRT constants for fast decryption.

    The representation is deliberately opaque (no ``repr`` of the factors).
    """

    public_key: PaillierPublicKey
    p: int
    q: int
    psquare: int = field(init=False)
    qsquare: int = field(init=False)
    _hp: int = field(init=False)
    _hq: int = field(init=False)
    _p_inv_q: int = field(init=False)

    def __post_init__(self) -> None:
        p, q = mp.mpz(self.p), mp.mpz(self.q)
        if p * q != self.public_key.n or p == q:
            raise InputError("the factors do not match the public key")
        set_ = object.__setattr__
        set_(self, "p", p)
        set_(self, "q", q)
        set_(self, "psquare", p * p)
        set_(self, "qsquare", q * q)
        set_(self, "_hp", self._h(p, p * p))
        set_(self, "_hq", self._h(q, q * q))
        set_(self, "_p_inv_q", mp.invert(p, q))

    def __repr__(self) -> str:
        return f"PaillierPrivateKey(key_bits={self.public_key.key_bits})"

    def _h(self, prime: int, prime_square: int) -> int:
        """``L_p(g^(p-1) mod p^2)^-1 mod p``, as in Paillier's CRT decryption (and phe)."""
        g = self.public_key.n + 1
        lp = (mp.powmod(g, prime - 1, prime_square) - 1) // prime
        return mp.invert(lp, prime)

    def raw_decrypt(self, c: int) -> int:
        """The plaintext in ``[0, n)`` of a ciphertext, by CRT over ``p^2`` and ``q^2``."""
        p, q = self.p, self.q
        m_p = (mp.powmod(c, p - 1, self.psquare) - 1) // p * self._hp % p
        m_q = (mp.powmod(c, q - 1, self.qsquare) - 1) // q * self._hq % q
        return m_p + p * ((m_q - m_p) * self._p_inv_q % q)

    def decrypt(self, c: int) -> int:
        """Check, decrypt and decode a ciphertext to a signed integer."""
        self.public_key.check_ciphertext(c)
        return self.public_key.decode(self.raw_decrypt(c))


def _random_prime(bits: int, rng: random.Random) -> int:
    """A uniformly chosen ``bits``-bit prime ``= 3 mod 4`` with its top two bits set.

    The top two bits make the product of two such primes exactly ``2*bits`` long;
    ``3 mod 4`` (Blum primes) is what Damgård-Jurik-Nielsen assume for ``h = -x^2``.
    """
    top = 3 << (bits - 2)
    while True:
        candidate = mp.mpz(rng.getrandbits(bits) | top | 3)
        if mp.is_prime(candidate, _MR_ROUNDS):
            return candidate


def generate_keypair(
    key_bits: int = DEFAULT_KEY_BITS,
    *,
    rng: random.Random | None = None,
    allow_weak: bool = False,
) -> tuple[PaillierPublicKey, PaillierPrivateKey]:
    """A fresh key pair with ``n`` of exactly ``key_bits`` bits.

    Keys under :data:`MIN_KEY_BITS` need ``allow_weak=True`` and are for tests only.
    """
    if key_bits % 16:
        raise InputError("key size must be a multiple of 16 bits")
    floor = MIN_WEAK_KEY_BITS if allow_weak else MIN_KEY_BITS
    if not floor <= key_bits <= MAX_KEY_BITS:
        raise InputError(f"key size must be between {floor} and {MAX_KEY_BITS} bits")
    rng = rng or default_rng()
    while True:
        p = _random_prime(key_bits // 2, rng)
        q = _random_prime(key_bits // 2, rng)
        if p != q:
            break
    public_key = PaillierPublicKey(p * q)
    return public_key, PaillierPrivateKey(public_key, p, q)
