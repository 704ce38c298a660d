"""Per-partner secret scalars of the key node, and what is cached under each.

Each partner is matched under its own scalar, so blinded values from two partners never
compare. The key node's blinded set depends only on the scalar, so it is cached per key
and destroyed with it: rotating or destroying a partner's key makes every value the
partner holds from earlier sessions unmatchable against anything produced afterwards.
Keys live in memory: a restart is a rotation for every partner.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass

from keynode.crypto.ristretto255 import random_scalar


@dataclass(frozen=True)
class PartnerKey:
    """A partner's current scalar and the id that names it in caches and the policy log.

    The id is a hash of the scalar under a fixed prefix: it identifies the key without
    revealing it.
    """

    key_id: str
    scalar: bytes


class PartnerKeyring:
    """Creates, rotates and destroys per-partner keys and their cached blinded sets."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, PartnerKey] = {}
        self._cache: dict[str, bytes] = {}
        self._cache_locks: dict[str, threading.Lock] = {}

    def key_for(self, partner: str) -> PartnerKey:
        """The partner's current key, created on first use."""
        with self._lock:
            key = self._keys.get(partner)
            if key is None:
                scalar = random_scalar()
                key_id = hashlib.sha256(b"keynode-key-id\x00" + scalar).hexdigest()
                key = PartnerKey(key_id=key_id, scalar=scalar)
                self._keys[partner] = key
            return key

    def key_id(self, partner: str) -> str | None:
        """The id of the partner's current key, without creating one."""
        with self._lock:
            key = self._keys.get(partner)
            return key.key_id if key else None

    def rotate(self, partner: str) -> PartnerKey:
        """Replace the partner's key; the old key and its cached set are destroyed."""
        self.destroy(partner)
        return self.key_for(partner)

    def destroy(self, partner: str) -> str | None:
        """Forget the partner's key and cache; returns the destroyed key id, if any."""
        with self._lock:
            key = self._keys.pop(partner, None)
            if key is None:
                return None
            self._cache.pop(key.key_id, None)
            self._cache_locks.pop(key.key_id, None)
            return key.key_id

    def cached_set(self, key: PartnerKey, compute: Callable[[bytes], bytes]) -> bytes:
        """The blinded set for ``key``, computed once by ``compute(scalar)`` and cached.

        Concurrent sessions of one partner wait for a single computation. If the key is
        rotated meanwhile, the result is returned but not cached.
        """
        with self._lock:
            cached = self._cache.get(key.key_id)
            if cached is not None:
                return cached
            lock = self._cache_locks.setdefault(key.key_id, threading.Lock())
        with lock:
            with self._lock:
                cached = self._cache.get(key.key_id)
            if cached is not None:
                return cached
            blinded = compute(key.scalar)
            with self._lock:
                if any(k.key_id == key.key_id for k in self._keys.values()):
                    self._cache[key.key_id] = blinded
            return blinded

    def is_cached(self, partner: str) -> bool:
        with self._lock:
            key = self._keys.get(partner)
            return key is not None and key.key_id in self._cache
