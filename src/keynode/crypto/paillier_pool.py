"""Owner encryption on worker processes. Low-level.

The parent draws every random exponent (so an injected ``rng`` makes a parallel run
identical to a single-process one) and sends ``(values, exponents)`` slices to workers,
each of which holds an :class:`~keynode.crypto.paillier_fast.OwnerEncryptor` built once
from the same key and the same DJN base ``h``. Workers are started with ``forkserver``
(``spawn`` where that is missing) because the parent also runs gRPC threads, and forking
a threaded process is unsafe.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from types import TracebackType

from keynode.crypto import paillier_mp as mp
from keynode.crypto.paillier_fast import ExponentLength, OwnerEncryptor
from keynode.crypto.paillier_keys import PaillierPrivateKey, PaillierPublicKey

#: Values per task: large enough to amortise the round trip, small enough to balance.
SLICE = 512

_worker_encryptor: OwnerEncryptor | None = None


def _init_worker(p: int, q: int, h: int, exponent_length: str) -> None:
    global _worker_encryptor
    pk = PaillierPublicKey(mp.mpz(p) * q)
    sk = PaillierPrivateKey(pk, p, q)
    _worker_encryptor = OwnerEncryptor(sk, exponent_length=ExponentLength(exponent_length), h=h)


def _encrypt_slice(values: Sequence[int], exponents: Sequence[int]) -> list[int]:
    assert _worker_encryptor is not None, "worker not initialised"
    return [int(c) for c in _worker_encryptor.encrypt_many(values, exponents)]


def _ready() -> int:
    return os.getpid()


def _context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


class EncryptionPool:
    """Encrypts batches under the owner's key on ``workers`` processes.

    Use as a context manager (or call :meth:`close`). With ``workers=1`` everything runs
    in this process, which is also the reference the parallel path is tested against.
    """

    def __init__(self, encryptor: OwnerEncryptor, workers: int | None = None) -> None:
        self._encryptor = encryptor
        self.workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
        self._executor: ProcessPoolExecutor | None = None
        if self.workers > 1:
            sk = encryptor.private_key
            self._executor = ProcessPoolExecutor(
                self.workers,
                mp_context=_context(),
                initializer=_init_worker,
                initargs=(int(sk.p), int(sk.q), int(encryptor.h), encryptor.exponent_length.value),
            )
            self._warm_up()

    def _warm_up(self) -> None:
        """Start every worker (and build its tables) now, not inside the first batch."""
        assert self._executor is not None
        seen: set[int] = set()
        for _ in range(8):
            seen.update(
                f.result() for f in [self._executor.submit(_ready) for _ in range(4 * self.workers)]
            )
            if len(seen) >= self.workers:
                break

    @property
    def public_key(self) -> PaillierPublicKey:
        """The key this pool encrypts under."""
        return self._encryptor.public_key

    def __enter__(self) -> EncryptionPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers."""
        if self._executor is not None:
            self._executor.shutdown(cancel_futures=True)
            self._executor = None

    def encrypt(self, values: Sequence[int]) -> list[int]:
        """Encrypt every value with fresh randomness, in order."""
        exponents = [self._encryptor.draw_exponent() for _ in values]
        if self._executor is None or len(values) <= SLICE:
            return self._encryptor.encrypt_many(values, exponents)
        futures = [
            self._executor.submit(
                _encrypt_slice, list(values[i : i + SLICE]), exponents[i : i + SLICE]
            )
            for i in range(0, len(values), SLICE)
        ]
        out: list[int] = []
        for f in futures:
            out.extend(mp.mpz(c) for c in f.result())
        return out
