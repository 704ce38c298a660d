"""The policy log recipe: what the broker calls before any decision takes effect.

::

    log = PolicyLog.open("state/audit.db", signer)
    receipt = log.append(Entry(EntryType.GRANT, now_ms, "broker", "bank", {...}))
    # only now: hand out the grant

:meth:`PolicyLog.append` returns once the entry is committed (fsync'd) together with a
checkpoint signed over the new tree; concurrent callers share one commit (group
commit), so durability does not cost one fsync per entry under load.
:meth:`PolicyLog.append_all` commits several entries atomically — a resignation and
its key destructions, for example — so that no reader ever sees half of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from keynode.auditlog.batching import GroupCommitter
from keynode.auditlog.checkpoint import NoteSigner
from keynode.auditlog.entries import Entry
from keynode.auditlog.store import LogStore
from keynode.errors import InputError
from keynode.storage import open_database


@dataclass(frozen=True)
class Receipt:
    """Where an appended entry landed, and the signed checkpoint that first covers it."""

    index: int
    checkpoint: str


class PolicyLog:
    """A signed, append-only, durable log of policy decisions."""

    def __init__(self, store: LogStore, signer: NoteSigner, *, max_batch: int = 2000) -> None:
        if store.origin != signer.name:
            raise InputError(f"log origin {store.origin!r} differs from key name {signer.name!r}")
        self.store = store
        self._signer = signer
        self._committer: GroupCommitter[bytes, Receipt] = GroupCommitter(self._commit, max_batch)

    @classmethod
    def open(cls, target: str, signer: NoteSigner, *, max_batch: int = 2000) -> PolicyLog:
        """Open (creating if needed) the log in a SQLite path or ``postgresql://`` URL.

        The origin of the log is the signer's key name: configure both as one value.
        """
        return cls(LogStore(open_database(target), signer.name), signer, max_batch=max_batch)

    def _commit(self, bodies: list[bytes]) -> list[Receipt]:
        first, note = self.store.append(bodies, self._signer.sign)
        return [Receipt(first + i, note) for i in range(len(bodies))]

    def append(self, entry: Entry) -> Receipt:
        """Durably append one entry; return only once it survives a crash."""
        return self._committer.submit([entry.encode()])[0]

    def append_all(self, entries: Sequence[Entry]) -> list[Receipt]:
        """Durably append several entries atomically, in order."""
        if not entries:
            raise InputError("nothing to append")
        return self._committer.submit([entry.encode() for entry in entries])

    def size(self) -> int:
        """The number of committed entries."""
        return self.store.size()

    def latest_checkpoint(self) -> str:
        """The signed checkpoint over the whole log."""
        return self.store.latest_checkpoint()

    def entries(self, start: int, end: int) -> Iterator[bytes]:
        """Canonical entry bytes in ``[start, end)``."""
        return self.store.entries(start, end)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """The audit path of entry ``index`` in the tree of ``size`` entries."""
        return self.store.inclusion_proof(index, size)

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """The proof that the tree of ``size1`` is a prefix of the tree of ``size2``."""
        return self.store.consistency_proof(size1, size2)

    def close(self) -> None:
        """Close the underlying database."""
        self.store.db.close()
