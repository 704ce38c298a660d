"""Batched ristretto255 work over packed element strings, across worker processes.

Sets of elements travel as one ``bytes`` object of 32-byte encodings laid end to end
(cheap to pickle, slice and put on the wire). :class:`GroupPool` splits a batch into
slices, runs them on worker processes and joins the results in order; with one worker
it runs in-process. Workers start with the ``forkserver`` method because the parent
runs gRPC threads, and forking a threaded process is unsafe.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import TypeVar

from keynode.crypto.ristretto255 import ELEMENT_BYTES, Hasher, scalarmult
from keynode.errors import ProtocolError

T = TypeVar("T")

#: Below this many items a slice is not worth a trip to a worker.
MIN_SLICE = 2048


def pack(elements: Sequence[bytes]) -> bytes:
    """Concatenate 32-byte elements."""
    return b"".join(elements)


def unpack(packed: bytes) -> list[bytes]:
    """Split packed elements; a length that is not a multiple of 32 is a protocol error."""
    if len(packed) % ELEMENT_BYTES:
        raise ProtocolError("element data is not a whole number of 32-byte elements")
    return [packed[i : i + ELEMENT_BYTES] for i in range(0, len(packed), ELEMENT_BYTES)]


def hash_many(messages: Sequence[bytes], dst: bytes) -> bytes:
    """hash_to_group for each message, packed."""
    h = Hasher(dst)
    return b"".join([h(m) for m in messages])


def blind_many(messages: Sequence[bytes], dst: bytes, scalar: bytes) -> bytes:
    """``scalar * hash_to_group(m)`` for each message, packed."""
    h = Hasher(dst)
    return b"".join([scalarmult(scalar, h(m)) for m in messages])


def mult_many(scalar: bytes, packed: bytes) -> bytes:
    """``scalar * p`` for each packed element; any invalid element fails the whole batch."""
    if len(packed) % ELEMENT_BYTES:
        raise ProtocolError("element data is not a whole number of 32-byte elements")
    return b"".join(
        [
            scalarmult(scalar, packed[i : i + ELEMENT_BYTES])
            for i in range(0, len(packed), ELEMENT_BYTES)
        ]
    )


def _slices(n: int, parts: int) -> Iterator[tuple[int, int]]:
    size = max(MIN_SLICE, -(-n // parts))
    for start in range(0, n, size):
        yield start, min(n, start + size)


class GroupPool:
    """Runs batched group operations on ``workers`` processes (1 = in this process)."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
        self._executor: Executor | None = None
        if self.workers > 1:
            context = multiprocessing.get_context("forkserver")
            self._executor = ProcessPoolExecutor(self.workers, mp_context=context)
            # Start the workers now rather than inside the first timed operation.
            for f in [self._executor.submit(_ready) for _ in range(self.workers)]:
                f.result()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> GroupPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(
        self, fn: Callable[..., bytes], items: Sequence[T], *args: object, step: int = 1
    ) -> bytes:
        """Apply ``fn(slice, *args)`` over slices of ``items`` in parallel, results in order.

        ``fn`` must be a module-level function (it is pickled to the workers) returning
        bytes; ``step`` is how many items make one unit (32 for packed elements), so
        slices never cut a unit.
        """
        n = len(items) // step
        if self._executor is None or n < 2 * MIN_SLICE:
            return fn(items, *args)
        parts = self.workers * 4  # several slices per worker evens out stragglers
        futures = [
            self._executor.submit(fn, items[a * step : b * step], *args)
            for a, b in _slices(n, parts)
        ]
        return b"".join(f.result() for f in futures)

    def hash(self, messages: Sequence[bytes], dst: bytes) -> bytes:
        return self.run(hash_many, messages, dst)

    def blind(self, messages: Sequence[bytes], dst: bytes, scalar: bytes) -> bytes:
        return self.run(_blind_slice, messages, dst, scalar)

    def mult(self, scalar: bytes, packed: bytes) -> bytes:
        return self.run(_mult_slice, packed, scalar, step=ELEMENT_BYTES)

    def mult_async(self, scalar: bytes, packed: bytes) -> Pending:
        """Start ``mult`` across the workers and return at once (pipelines a stream)."""
        if self._executor is None:
            done: Future[bytes] = Future()
            try:
                done.set_result(mult_many(scalar, packed))
            except ProtocolError as exc:
                done.set_exception(exc)
            return Pending([done])
        n = len(packed) // ELEMENT_BYTES
        return Pending(
            [
                self._executor.submit(
                    mult_many, scalar, packed[a * ELEMENT_BYTES : b * ELEMENT_BYTES]
                )
                for a, b in _slices(n, self.workers)
            ]
        )


class Pending:
    """Slices of one batch in flight; :meth:`result` joins them in order."""

    def __init__(self, futures: list[Future[bytes]]) -> None:
        self._futures = futures

    def result(self) -> bytes:
        return b"".join(f.result() for f in self._futures)

    def cancel(self) -> None:
        for f in self._futures:
            f.cancel()


def _ready() -> None:
    """A no-op that makes a worker process start."""


def _blind_slice(messages: Sequence[bytes], dst: bytes, scalar: bytes) -> bytes:
    return blind_many(messages, dst, scalar)


def _mult_slice(packed: bytes, scalar: bytes) -> bytes:
    return mult_many(scalar, packed)
