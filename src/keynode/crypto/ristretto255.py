"""Low-level ristretto255 (RFC 9496) and hashing to it (RFC 9380), on libsodium via rbcl.

This module is the raw layer: byte strings in, byte strings out, no policy. The
protocols in :mod:`keynode.protocols` are what callers should use.

* :func:`expand_message_xmd` is RFC 9380 §5.3.1 with SHA-512.
* :func:`from_uniform_bytes` is RFC 9496 §4.3.4's one-way map (64 bytes -> element).
* :func:`hash_to_group` is RFC 9380 Appendix B's hash_to_ristretto255:
  ``from_uniform_bytes(expand_message_xmd(msg, dst, 64))``.

Every element received from a peer goes through :func:`check_element` or
:func:`scalarmult`, which reject non-canonical encodings and the identity with an
opaque :class:`~keynode.errors.ProtocolError`.
"""

from __future__ import annotations

import hashlib

import rbcl

from keynode.errors import ProtocolError

ELEMENT_BYTES = 32
SCALAR_BYTES = 32
UNIFORM_BYTES = 64
IDENTITY = bytes(ELEMENT_BYTES)

_SHA512_BLOCK = 128
_SHA512_OUT = 64
_INVALID = "invalid group element"


def expand_message_xmd(msg: bytes, dst: bytes, len_in_bytes: int) -> bytes:
    """RFC 9380 §5.3.1 expand_message_xmd with SHA-512."""
    if not 0 < len(dst) <= 255:
        raise ValueError("DST must be 1 to 255 bytes")
    ell = -(-len_in_bytes // _SHA512_OUT)
    if len_in_bytes <= 0 or ell > 255 or len_in_bytes > 0xFFFF:
        raise ValueError("len_in_bytes out of range for SHA-512")
    dst_prime = dst + bytes([len(dst)])
    b0 = hashlib.sha512(
        bytes(_SHA512_BLOCK) + msg + len_in_bytes.to_bytes(2, "big") + b"\x00" + dst_prime
    ).digest()
    blocks = [hashlib.sha512(b0 + b"\x01" + dst_prime).digest()]
    b0_int = int.from_bytes(b0, "big")
    for i in range(2, ell + 1):
        chained = (b0_int ^ int.from_bytes(blocks[-1], "big")).to_bytes(_SHA512_OUT, "big")
        blocks.append(hashlib.sha512(chained + bytes([i]) + dst_prime).digest())
    return b"".join(blocks)[:len_in_bytes]


def from_uniform_bytes(b: bytes) -> bytes:
    """RFC 9496 one-way map: 64 uniform bytes -> a 32-byte ristretto255 encoding."""
    if len(b) != UNIFORM_BYTES:
        raise ValueError(f"from_uniform_bytes takes {UNIFORM_BYTES} bytes, got {len(b)}")
    return bytes(rbcl.crypto_core_ristretto255_from_hash(b))


def hash_to_group(msg: bytes, dst: bytes) -> bytes:
    """hash_to_ristretto255 (RFC 9380 App. B): expand_message_xmd(SHA-512, 64), one-way map."""
    return from_uniform_bytes(expand_message_xmd(msg, dst, UNIFORM_BYTES))


class Hasher:
    """hash_to_group for one DST, with the constant 128-byte zero block absorbed once.

    Gives the same output as :func:`hash_to_group` (a test checks it); it exists because
    hashing is on the hot path, a million identifiers per run.
    """

    def __init__(self, dst: bytes) -> None:
        if not 0 < len(dst) <= 255:
            raise ValueError("DST must be 1 to 255 bytes")
        self.dst = dst
        self._dst_prime = dst + bytes([len(dst)])
        self._prefix = hashlib.sha512(bytes(_SHA512_BLOCK))
        self._b0_suffix = UNIFORM_BYTES.to_bytes(2, "big") + b"\x00" + self._dst_prime
        self._b1_suffix = b"\x01" + self._dst_prime

    def __call__(self, msg: bytes) -> bytes:
        h0 = self._prefix.copy()
        h0.update(msg + self._b0_suffix)
        b0 = h0.digest()
        # 64 output bytes are exactly one SHA-512 block: uniform_bytes = b_1.
        b1 = hashlib.sha512(b0 + self._b1_suffix).digest()
        return bytes(rbcl.crypto_core_ristretto255_from_hash(b1))


def random_scalar() -> bytes:
    """A uniformly random non-zero scalar (libsodium's CSPRNG)."""
    return bytes(rbcl.crypto_core_ristretto255_scalar_random())


def random_element() -> bytes:
    """A uniformly random group element (used to pad records; it matches nothing)."""
    return bytes(rbcl.crypto_core_ristretto255_random())


def check_element(p: bytes) -> None:
    """Reject anything but the canonical encoding of a non-identity element."""
    if (
        len(p) != ELEMENT_BYTES
        or p == IDENTITY
        or not rbcl.crypto_core_ristretto255_is_valid_point(p)
    ):
        raise ProtocolError(_INVALID)


def scalarmult(scalar: bytes, p: bytes) -> bytes:
    """``scalar * p``; a non-canonical ``p`` or the identity raises an opaque ProtocolError."""
    if len(p) != ELEMENT_BYTES:
        raise ProtocolError(_INVALID)
    try:
        return bytes(rbcl.crypto_scalarmult_ristretto255(scalar, p))
    except RuntimeError:
        # libsodium refuses non-canonical encodings and an identity result; since the
        # scalar is non-zero in a prime-order group, the latter means p is the identity.
        raise ProtocolError(_INVALID) from None
