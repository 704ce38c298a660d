"""Group commit: concurrent appends share one durable transaction.

Why: a durable commit costs an fsync (milliseconds on real disks). Under load, the
first caller to arrive becomes the leader, takes every request queued so far, commits
them together and wakes the others with their results; callers that arrive meanwhile
queue for the next batch. A lone caller pays one commit, exactly as without batching.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Request(Generic[T, R]):
    items: Sequence[T]
    done: bool = False
    result: list[R] = field(default_factory=list)
    error: BaseException | None = None


class GroupCommitter(Generic[T, R]):
    """Run ``commit(batch)`` for many callers at once; each gets back its own results.

    ``commit`` receives the concatenated items of up to ``max_items`` items' worth of
    requests (a single larger request is never split, so it stays atomic) and returns
    one result per item. If it raises, every request of that batch gets the error.
    """

    def __init__(self, commit: Callable[[list[T]], list[R]], max_items: int = 2000) -> None:
        self._commit = commit
        self._max_items = max_items
        self._cond = threading.Condition()
        self._queue: deque[_Request[T, R]] = deque()
        self._leader_active = False

    def submit(self, items: Sequence[T]) -> list[R]:
        """Commit ``items`` atomically (possibly with other callers'); block until durable."""
        request: _Request[T, R] = _Request(items)
        with self._cond:
            self._queue.append(request)
            while not request.done:
                if self._leader_active:
                    self._cond.wait()
                    continue
                self._leader_active = True
                batch = self._take_batch()
                self._cond.release()
                try:
                    self._run(batch)
                finally:
                    self._cond.acquire()
                    self._leader_active = False
                    self._cond.notify_all()
        if request.error is not None:
            raise request.error
        return request.result

    def _take_batch(self) -> list[_Request[T, R]]:
        batch = [self._queue.popleft()]
        count = len(batch[0].items)
        while self._queue and count + len(self._queue[0].items) <= self._max_items:
            count += len(self._queue[0].items)
            batch.append(self._queue.popleft())
        return batch

    def _run(self, batch: list[_Request[T, R]]) -> None:
        items = [item for request in batch for item in request.items]
        try:
            results = self._commit(items)
        except BaseException as exc:
            for request in batch:
                request.error = exc
                request.done = True
            return
        offset = 0
        for request in batch:
            request.result = results[offset : offset + len(request.items)]
            request.done = True
            offset += len(request.items)
