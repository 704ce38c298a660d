"""Hashed overlap, transport-free: key agreement, keyed digests, the broker's matching state.

The cheaper, weaker overlap. The partner and the key node agree a key that the broker
does not learn, both send the broker keyed digests of their canonical identifiers, and
the broker compares digests and releases what the partner's level allows:

1. the partner opens a match with an ephemeral X25519 public key; the broker answers with
   a match id and the key node's X25519 public key (registered by the key node's hasher)
   and tells the hasher the partner's public key;
2. each side computes ``k = HKDF-SHA256(X25519 shared secret, salt=match id,
   info=HKDF_INFO || the two public keys in sorted order)`` (:func:`agree_key`);
3. the partner uploads ``HMAC-SHA-256(k, x)`` for every key of every record, in record
   order, each record padded to a fixed width with random 32-byte values so that all
   records look alike (:func:`digest_records`); the key node uploads ``HMAC-SHA-256(k, y)``
   for its distinct identifiers, sorted by digest so that the order says nothing about
   its input (:func:`digest_set`);
4. the broker counts a partner record as shared when any of its digests is among the key
   node's (:meth:`HashedMatch.result`), releases the size (level 2) or the shared record
   indexes (level 3), and deletes both uploads (:meth:`HashedMatch.discard`).

What each side learns (parties follow the protocol but are curious):

* partner: the overlap size in records (level 2), or which of its own records are
  shared (level 3); nothing else about the key node's set — not even its size;
* key node's hasher: the partner's public key and the match id, nothing else;
* broker: the partner's record count and padded width, the key node's number of
  identifiers, the overlap size and — unavoidably, since it does the matching — which of
  the partner's digests (and so which record positions) matched, and by how many keys.
  It never sees an identifier or the key ``k``, and digests change with every match.

Why "weaker" than ECDH-PSI (:mod:`keynode.protocols.psi`): the broker holds both sides'
digests, and the key node knows ``k``. The broker runs at the key node, so an operator
who combines the hasher's key with the partner's upload can test any guessed identifier
(a phone number, an e-mail from a list) against it: a dictionary attack that ECDH-PSI
rules out. What limits it: the per-match key is derived from an X25519 key that the
hasher keeps only in memory, and uploads are deleted as soon as the result is computed.
The broker relays the public keys, so the partner also trusts it not to substitute its
own (it is the key node's server, authenticated by mTLS). A policy may forbid this
protocol (``limits.hashed_overlap_allowed``).
"""

from __future__ import annotations

import enum
import hmac
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain, compress, repeat

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keynode.errors import InputError, LimitExceeded, ProtocolError

DIGEST_BYTES = 32
PUBLIC_KEY_BYTES = 32
#: Most digests per uploaded chunk: 65 536 x 32 bytes = 2 MiB, well under the message cap.
CHUNK_DIGESTS = 65_536
#: HKDF info: names keynode, the protocol, its version and what the key is for.
HKDF_INFO = b"keynode hashed-overlap v1: HMAC-SHA-256 key for one match\x00"
_MAC = "sha256"


# -- key agreement -----------------------------------------------------------------------


def public_key_bytes(private_key: X25519PrivateKey) -> bytes:
    """The raw 32-byte X25519 public key of ``private_key``."""
    return private_key.public_key().public_bytes_raw()


def check_public_key(data: bytes) -> bytes:
    """``data`` if it is a 32-byte X25519 public key; a :class:`ProtocolError` otherwise."""
    if len(data) != PUBLIC_KEY_BYTES:
        raise ProtocolError("invalid public key")
    return data


def agree_key(private_key: X25519PrivateKey, peer_public_key: bytes, match_id: str) -> bytes:
    """The 32-byte HMAC key for ``match_id``: the same on both sides, unknown to the broker.

    The salt is the match id (one key per match) and the info binds both public keys, so
    a key cannot be carried over to another match or pair of keys. A public key of the
    wrong length or of small order (an all-zero shared secret) is refused, opaquely.
    """
    try:
        peer = X25519PublicKey.from_public_bytes(check_public_key(peer_public_key))
        shared = private_key.exchange(peer)
    except ValueError:
        raise ProtocolError("invalid public key") from None
    ours = public_key_bytes(private_key)
    info = HKDF_INFO + b"".join(sorted((ours, peer_public_key)))
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=match_id.encode(), info=info)
    return hkdf.derive(shared)


# -- digests -----------------------------------------------------------------------------


def _macs(key: bytes, messages: Iterable[bytes]) -> bytes:
    """Packed HMAC-SHA-256 digests of ``messages`` (OpenSSL's one-shot HMAC per message)."""
    return b"".join(map(hmac.digest, repeat(key), messages, repeat(_MAC)))


def digest_records(
    key: bytes,
    records: Sequence[Sequence[bytes]],
    width: int,
    *,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> bytes:
    """The partner's upload for ``records``: ``width`` digests per record, in record order.

    A record with fewer keys than ``width`` is padded with random 32-byte values, which
    match nothing and look like digests, so the broker cannot tell how many keys a
    record has.
    """
    if width < 1:
        raise InputError("record width must be at least 1")
    lengths = set(map(len, records))
    if 0 in lengths:
        raise InputError("every record needs at least one key")
    if any(n > width for n in lengths):
        raise InputError("record width must be at least the largest number of keys per record")
    if lengths <= {width}:
        return _macs(key, chain.from_iterable(records))
    parts = []
    for record in records:
        parts.append(_macs(key, record))
        if len(record) < width:
            parts.append(random_bytes((width - len(record)) * DIGEST_BYTES))
    return b"".join(parts)


def digest_set(key: bytes, identifiers: Iterable[bytes]) -> bytes:
    """The key node's upload: digests of its distinct identifiers, sorted by digest.

    Sorting by digest (which is pseudo-random) hides the order of the input, and the
    order differs from match to match, so positions cannot be linked across matches.
    """
    distinct = set(identifiers)
    return b"".join(sorted(map(hmac.digest, repeat(key), distinct, repeat(_MAC))))


def split_digests(packed: bytes) -> list[bytes]:
    """Packed digests as a list of 32-byte values."""
    return [packed[i : i + DIGEST_BYTES] for i in range(0, len(packed), DIGEST_BYTES)]


# -- the broker's state for one match ----------------------------------------------------


class Side(enum.Enum):
    """Who uploads: the partner (declared size) or the key node's hasher (capped size)."""

    PARTNER = "partner"
    KEY_NODE = "key-node"


@dataclass(frozen=True)
class HashedResult:
    """What a hashed match releases. ``shared_records`` (indexes) is membership only."""

    records: int
    overlap: int
    shared_records: tuple[int, ...] | None = None


class _Upload:
    """Bookkeeping of one side's stream: sequence, sizes, completion."""

    def __init__(self, side: Side, expected: int | None, cap: int, max_chunk: int) -> None:
        self.side = side
        self.expected = expected
        self.cap = cap
        self.max_chunk = max_chunk
        self.started = False
        self.complete = False
        self.next_sequence = 0
        self.received = 0

    def check(self, sequence: int, packed: bytes) -> int:
        """Refuse a chunk out of order, malformed, too big or beyond the total; its count."""
        if self.complete:
            raise ProtocolError("the upload is already complete")
        if sequence != self.next_sequence:
            raise ProtocolError(f"chunk {sequence} out of order: expected {self.next_sequence}")
        if not packed or len(packed) % DIGEST_BYTES:
            raise ProtocolError("a chunk must hold one or more whole 32-byte digests")
        count = len(packed) // DIGEST_BYTES
        if count > self.max_chunk:
            raise LimitExceeded(f"chunk of {count} digests exceeds {self.max_chunk}")
        limit = self.expected if self.expected is not None else self.cap
        if self.received + count > limit:
            raise LimitExceeded(f"more than the {limit} digests allowed for this upload")
        self.next_sequence += 1
        self.received += count
        return count

    def finish(self) -> int:
        if self.expected is not None and self.received != self.expected:
            raise ProtocolError(f"upload incomplete: {self.received} of {self.expected} digests")
        if self.received == 0:
            raise ProtocolError("an upload needs at least one digest")
        self.complete = True
        return self.received


class HashedMatch:
    """The broker's side of one hashed match: two checked uploads, one comparison.

    The partner declares ``record_count`` records of ``record_width`` digests up front
    and must send exactly that; the key node's hasher may send up to
    ``max_key_node_digests``. Each side streams numbered chunks (0, 1, ...) of at most
    ``max_chunk_digests`` and then finishes; a chunk out of order, a repeat, a partial
    digest, an overrun or an incomplete upload is refused. The key node's digests go into
    a set as they arrive; the partner's stay in order. Thread-safe: the two sides upload
    concurrently.
    """

    def __init__(
        self,
        record_count: int,
        record_width: int,
        *,
        max_key_node_digests: int,
        max_chunk_digests: int = CHUNK_DIGESTS,
    ) -> None:
        if record_count < 1 or record_width < 1:
            raise ProtocolError("a match needs at least one record of at least one key")
        self.record_count = record_count
        self.record_width = record_width
        self._lock = threading.Lock()
        expected = record_count * record_width
        self._uploads = {
            Side.PARTNER: _Upload(Side.PARTNER, expected, expected, max_chunk_digests),
            Side.KEY_NODE: _Upload(Side.KEY_NODE, None, max_key_node_digests, max_chunk_digests),
        }
        self._partner: list[bytes] = []
        self._key_node: set[bytes] = set()
        self._discarded = False

    def begin(self, side: Side) -> None:
        """Start ``side``'s upload; each side uploads once."""
        with self._lock:
            self._live()
            upload = self._uploads[side]
            if upload.started:
                raise ProtocolError(f"the {side.value} upload of this match has already started")
            upload.started = True

    def accept(self, side: Side, sequence: int, packed: bytes) -> None:
        """Check and keep one chunk of ``side``'s digests."""
        with self._lock:
            self._live()
            upload = self._uploads[side]
            if not upload.started:
                raise ProtocolError("the upload has not begun")
            upload.check(sequence, packed)
            if side is Side.PARTNER:
                self._partner.append(packed)
            else:
                self._key_node.update(split_digests(packed))

    def finish(self, side: Side) -> int:
        """End ``side``'s upload; refuses an incomplete one. Returns the digests received."""
        with self._lock:
            self._live()
            return self._uploads[side].finish()

    def complete(self, side: Side) -> bool:
        return self._uploads[side].complete

    @property
    def ready(self) -> bool:
        """Both uploads are complete: :meth:`result` may be called."""
        return all(u.complete for u in self._uploads.values()) and not self._discarded

    def result(self, membership: bool) -> HashedResult:
        """Partner records with any digest among the key node's; indexes if ``membership``."""
        with self._lock:
            if not self.ready:
                raise ProtocolError("the match is not complete")
            hits = map(self._key_node.__contains__, split_digests(b"".join(self._partner)))
            width = self.record_width
            if width == 1:
                shared = list(compress(range(self.record_count), hits))
            else:
                flags = list(hits)
                shared = [
                    r for r in range(self.record_count) if any(flags[r * width : (r + 1) * width])
                ]
        return HashedResult(
            records=self.record_count,
            overlap=len(shared),
            shared_records=tuple(shared) if membership else None,
        )

    def discard(self) -> None:
        """Drop every digest of both sides; the match accepts nothing afterwards."""
        with self._lock:
            self._discarded = True
            self._partner = []
            self._key_node = set()

    def held_digests(self) -> int:
        """How many digests the match still holds (both sides; 0 once discarded)."""
        with self._lock:
            return sum(len(c) for c in self._partner) // DIGEST_BYTES + len(self._key_node)

    def _live(self) -> None:
        if self._discarded:
            raise ProtocolError("this match has ended")
