"""Level-4 audience tokens: opaque, per-partner, per-lease handles for key-node customers.

A partner leases the audience of a segment the network agreed; it receives one token per
member and a lease handle. A token is ``HMAC(token_key, lease_id || member)`` cut to 16
bytes under the partner's own ``token_key``, so tokens do not link across partners or
leases and reveal nothing without the key. The handle carries a tag under the partner's
``lease_key``. Only the broker holds both keys, so only it can resolve tokens back to
members, and only while the lease runs. Destroying the keys (resignation) makes every
token and handle the partner holds meaningless.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence

from keynode.errors import VerificationError

TOKEN_BYTES = 16
_TAG_BYTES = 16


def tokens_for(token_key: bytes, lease_id: str, members: Sequence[str]) -> list[bytes]:
    """One token per member, in the members' order."""
    prefix = lease_id.encode() + b"\x00"
    return [
        hmac.digest(token_key, prefix + m.encode(), hashlib.sha256)[:TOKEN_BYTES] for m in members
    ]


def resolve(
    token_key: bytes, lease_id: str, members: Sequence[str], tokens: Iterable[bytes]
) -> list[str]:
    """The members behind ``tokens`` (unknown tokens resolve to nothing)."""
    index = dict(zip(tokens_for(token_key, lease_id, members), members, strict=True))
    return sorted({index[t] for t in tokens if t in index})


def lease_handle(lease_key: bytes, lease_id: str, partner: str, expires_ms: int) -> str:
    """``<lease id>.<tag>``: what the partner presents to run a campaign."""
    return f"{lease_id}.{_tag(lease_key, lease_id, partner, expires_ms)}"


def open_handle(lease_key: bytes, handle: str, partner: str, expires_ms: int) -> str:
    """The lease id of a handle whose tag verifies; an opaque error otherwise."""
    lease_id, _, tag = handle.partition(".")
    if not hmac.compare_digest(tag, _tag(lease_key, lease_id, partner, expires_ms)):
        raise VerificationError("invalid lease")
    return lease_id


def lease_id_of(handle: str) -> str:
    """The lease id part of a handle (for the lookup that precedes the tag check)."""
    return handle.partition(".")[0]


def _tag(lease_key: bytes, lease_id: str, partner: str, expires_ms: int) -> str:
    message = f"{lease_id}\x00{partner}\x00{expires_ms}".encode()
    return hmac.digest(lease_key, message, hashlib.sha256)[:_TAG_BYTES].hex()


class SegmentDirectory:
    """The key node's segments from its own data: segment -> member references.

    References are whatever the key node's campaign system resolves (customer ids, row
    numbers); they never leave the key node except as tokens.
    """

    def __init__(self, members: dict[str, list[str]]) -> None:
        self._members = {segment: list(refs) for segment, refs in members.items()}

    @classmethod
    def from_columns(cls, segments: Sequence[object], refs: Sequence[object]) -> SegmentDirectory:
        grouped: dict[str, list[str]] = {}
        for segment, ref in zip(segments, refs, strict=True):
            if segment is not None and str(segment):
                grouped.setdefault(str(segment), []).append(str(ref))
        return cls(grouped)

    def segments(self) -> list[str]:
        return sorted(self._members)

    def members(self, segment: str) -> list[str]:
        return self._members.get(segment, [])
