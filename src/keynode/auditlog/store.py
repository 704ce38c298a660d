"""The append-only storage of the policy log: entries, Merkle nodes and checkpoints.

Four tables, written in one transaction per batch so that a crash leaves either the
whole batch (entries, their subtree hashes, the new size and the checkpoint signed over
it) or none of it:

- ``auditlog_entries(idx, body)``: the canonical entry bytes;
- ``auditlog_nodes(level, idx, hash)``: every completed perfect subtree, so that proofs
  at any size need O(log n) point lookups and no recomputation;
- ``auditlog_meta(id = 1, size)``: the committed tree size, locked by every writer;
- ``auditlog_checkpoints(size, note)``: the signed checkpoint of every batch.

Nothing here updates or deletes a row. Readers ask the database for the size, so an
audit service may read a log that another process (the broker) writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from keynode.auditlog.checkpoint import Checkpoint
from keynode.auditlog.merkle import CompactRange, consistency_proof, inclusion_proof, leaf_hash
from keynode.errors import InputError, NotFound, VerificationError
from keynode.storage import Database, Transaction

_PAGE = 5000


def _schema(db: Database) -> list[str]:
    blob = db.blob_type()
    return [
        "CREATE TABLE IF NOT EXISTS auditlog_meta (id INTEGER PRIMARY KEY, size BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS auditlog_entries "
        f"(idx BIGINT PRIMARY KEY, body {blob} NOT NULL)",
        "CREATE TABLE IF NOT EXISTS auditlog_nodes (level INTEGER NOT NULL, idx BIGINT NOT NULL, "
        f"hash {blob} NOT NULL, PRIMARY KEY (level, idx))",
        "CREATE TABLE IF NOT EXISTS auditlog_checkpoints "
        "(size BIGINT PRIMARY KEY, note TEXT NOT NULL)",
        "INSERT INTO auditlog_meta (id, size) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
    ]


class LogStore:
    """Append-only Merkle log storage on a :class:`~keynode.storage.Database`.

    One process at a time should write (the broker); several may read. A second writer
    is still safe: every append locks the size row and re-reads the tree edge if
    another writer moved it.
    """

    def __init__(self, db: Database, origin: str = "") -> None:
        """Open (creating the tables if needed); without ``origin`` the store is read-only."""
        self.db = db
        self.origin = origin
        db.create_schema(_schema(db))
        with db.transaction() as tx:
            self._edge = self._load_edge(tx, self._size(tx))

    @staticmethod
    def _size(tx: Transaction, *, lock: bool = False) -> int:
        suffix = " FOR UPDATE" if lock and tx.dialect == "postgresql" else ""
        row = tx.one("SELECT size FROM auditlog_meta WHERE id = 1" + suffix)
        if row is None:
            raise VerificationError("audit log metadata is missing")
        return int(row[0])

    @staticmethod
    def _load_edge(tx: Transaction, size: int) -> CompactRange:
        hashes = []
        for level, idx in CompactRange.coordinates(size):
            row = tx.one(
                "SELECT hash FROM auditlog_nodes WHERE level = ? AND idx = ?", (level, idx)
            )
            if row is None:
                raise VerificationError("audit log tree is incomplete")
            hashes.append(bytes(row[0]))
        return CompactRange(size, hashes)

    def append(self, bodies: Sequence[bytes], sign: Callable[[Checkpoint], str]) -> tuple[int, str]:
        """Durably append ``bodies`` and a checkpoint signed over the new size.

        Returns the index of the first new entry and the signed checkpoint. When this
        returns, the transaction has committed: the entries survive a crash.
        """
        if not bodies:
            raise InputError("nothing to append")
        if not self.origin:
            raise InputError("this log store was opened read-only (no origin)")
        with self.db.transaction(write=True) as tx:
            size = self._size(tx, lock=True)
            edge = self._edge if self._edge.size == size else self._load_edge(tx, size)
            edge = edge.copy()  # the commit may still fail
            nodes: list[tuple[int, int, bytes]] = []
            for body in bodies:
                nodes.extend(edge.append(leaf_hash(body)))
            note = sign(Checkpoint(self.origin, edge.size, edge.root()))
            tx.executemany(
                "INSERT INTO auditlog_entries (idx, body) VALUES (?, ?)",
                [(size + i, body) for i, body in enumerate(bodies)],
            )
            tx.executemany("INSERT INTO auditlog_nodes (level, idx, hash) VALUES (?, ?, ?)", nodes)
            tx.execute("UPDATE auditlog_meta SET size = ? WHERE id = 1", (edge.size,))
            tx.execute(
                "INSERT INTO auditlog_checkpoints (size, note) VALUES (?, ?)", (edge.size, note)
            )
        self._edge = edge
        return size, note

    def size(self) -> int:
        """The committed number of entries."""
        with self.db.transaction() as tx:
            return self._size(tx)

    def latest_checkpoint(self) -> str:
        """The signed checkpoint of the current size."""
        with self.db.transaction() as tx:
            row = tx.one("SELECT note FROM auditlog_checkpoints ORDER BY size DESC LIMIT 1")
        if row is None:
            raise NotFound("the audit log is empty: no checkpoint yet")
        return str(row[0])

    def checkpoints(self) -> Iterator[str]:
        """Every signed checkpoint, oldest first."""
        after = -1
        while True:
            with self.db.transaction() as tx:
                rows = tx.all(
                    "SELECT size, note FROM auditlog_checkpoints "
                    "WHERE size > ? ORDER BY size LIMIT ?",
                    (after, _PAGE),
                )
            for _, note in rows:
                yield str(note)
            if len(rows) < _PAGE:
                return
            after = int(rows[-1][0])

    def _check_range(self, start: int, end: int) -> None:
        if not 0 <= start <= end:
            raise InputError(f"invalid entry range [{start}, {end})")
        size = self.size()
        if end > size:
            raise NotFound(f"the audit log has {size} entries; asked up to {end}")

    def entries(self, start: int, end: int) -> Iterator[bytes]:
        """Entry bytes ``start <= idx < end``, in order, read in pages."""
        self._check_range(start, end)
        while start < end:
            stop = min(end, start + _PAGE)
            with self.db.transaction() as tx:
                rows = tx.all(
                    "SELECT body FROM auditlog_entries WHERE idx >= ? AND idx < ? ORDER BY idx",
                    (start, stop),
                )
            if len(rows) != stop - start:
                raise VerificationError("audit log entries are missing")
            for (body,) in rows:
                yield bytes(body)
            start = stop

    def _reader(self, tx: Transaction) -> Callable[[int, int], bytes]:
        def node(level: int, idx: int) -> bytes:
            row = tx.one(
                "SELECT hash FROM auditlog_nodes WHERE level = ? AND idx = ?", (level, idx)
            )
            if row is None:
                raise VerificationError("audit log tree is incomplete")
            return bytes(row[0])

        return node

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """The audit path of entry ``index`` in the tree of ``size`` entries."""
        self._check_range(0, size)
        if not 0 <= index < size:
            raise InputError(f"entry {index} is not in a tree of {size} entries")
        with self.db.transaction() as tx:
            return inclusion_proof(index, size, self._reader(tx))

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """The proof that the tree of ``size1`` entries is a prefix of the tree of ``size2``."""
        self._check_range(0, size2)
        if not 0 <= size1 <= size2:
            raise InputError(f"no consistency proof from size {size1} to size {size2}")
        with self.db.transaction() as tx:
            return consistency_proof(size1, size2, self._reader(tx))
