"""Open a SQLite path or a ``postgresql://`` URL behind one small interface.

Why so small: the audit log and the broker need transactions, parameterised statements
and schema creation, nothing more. Keeping to that subset lets the same store code run
on both engines and be tested on both.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol

from keynode.errors import InputError, Unavailable

Row = tuple[Any, ...]
Params = Sequence[Any]
Dialect = Literal["sqlite", "postgresql"]


class _Cursor(Protocol):
    def execute(self, sql: str, params: Params = ..., /) -> Any: ...
    def executemany(self, sql: str, params: Sequence[Params], /) -> Any: ...
    def fetchone(self) -> Row | None: ...
    def fetchall(self) -> list[Row]: ...


class Transaction:
    """One open transaction: run statements with ``?`` placeholders and read rows."""

    def __init__(self, cursor: _Cursor, dialect: Dialect) -> None:
        self._cursor = cursor
        self.dialect: Dialect = dialect

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgresql" else sql

    def execute(self, sql: str, params: Params = ()) -> None:
        """Run one statement."""
        self._cursor.execute(self._sql(sql), params)

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        """Run one statement once per row of parameters."""
        if rows:
            self._cursor.executemany(self._sql(sql), rows)

    def one(self, sql: str, params: Params = ()) -> Row | None:
        """Run a query and return its first row, or None."""
        self._cursor.execute(self._sql(sql), params)
        return self._cursor.fetchone()

    def all(self, sql: str, params: Params = ()) -> list[Row]:
        """Run a query and return every row."""
        self._cursor.execute(self._sql(sql), params)
        return self._cursor.fetchall()


class Database:
    """A connection to one SQLite file or PostgreSQL database, safe to share by threads.

    Statements are serialised by a lock: keynode's stores do short transactions, and one
    connection keeps SQLite's write ordering and PostgreSQL's session state simple.
    """

    def __init__(self, conn: Any, dialect: Dialect, errors: tuple[type[Exception], ...]) -> None:
        self._conn = conn
        self._lock = threading.RLock()
        self._errors = errors  # the driver's exception classes
        self.dialect: Dialect = dialect

    @contextmanager
    def transaction(self, *, write: bool = False) -> Iterator[Transaction]:
        """A transaction that commits (durably) on success and rolls back on error.

        ``write=True`` takes SQLite's write lock up front (``BEGIN IMMEDIATE``) so that a
        read-then-write cannot interleave with another writer process. A failure of the
        database itself (lost connection, locked or full disk) becomes
        :class:`~keynode.errors.Unavailable`; other errors pass through unchanged.
        """
        with self._lock:
            cursor = self._conn.cursor()
            try:
                if self.dialect == "sqlite":
                    cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                yield Transaction(cursor, self.dialect)
                self._end(cursor, commit=True)
            except BaseException as exc:
                with contextlib.suppress(*self._errors):
                    self._end(cursor, commit=False)
                if isinstance(exc, self._errors):
                    raise Unavailable(f"database error: {exc}") from exc
                raise
            finally:
                cursor.close()

    def _end(self, cursor: Any, *, commit: bool) -> None:
        if self.dialect == "sqlite":
            cursor.execute("COMMIT" if commit else "ROLLBACK")
        elif commit:
            self._conn.commit()
        else:
            self._conn.rollback()

    def create_schema(self, statements: Sequence[str]) -> None:
        """Run ``CREATE ... IF NOT EXISTS`` statements in one transaction."""
        with self.transaction(write=True) as tx:
            for statement in statements:
                tx.execute(statement)

    def blob_type(self) -> str:
        """The column type for raw bytes on this engine."""
        return "BYTEA" if self.dialect == "postgresql" else "BLOB"

    def close(self) -> None:
        """Close the connection; the object is unusable afterwards."""
        with self._lock:
            self._conn.close()


def _open_sqlite(path: str) -> Database:
    target = Path(path)
    if target.parent and not target.parent.exists():
        raise InputError(f"database directory {target.parent} does not exist")
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # fsync the WAL at every commit
        conn.execute("PRAGMA busy_timeout=10000")
    except sqlite3.Error as exc:
        raise Unavailable(f"cannot open SQLite database {path}: {exc}") from exc
    # isolation_level=None: Database.transaction issues BEGIN and COMMIT itself.
    return Database(conn, "sqlite", (sqlite3.Error,))


def _open_postgresql(url: str) -> Database:
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise InputError(
            "PostgreSQL needs the 'postgres' extra: pip install keynode[postgres]"
        ) from exc
    try:
        conn = psycopg.connect(url, autocommit=False)
    except psycopg.Error as exc:
        raise Unavailable(f"cannot connect to PostgreSQL: {exc}") from exc
    return Database(conn, "postgresql", (psycopg.Error,))


def open_database(target: str) -> Database:
    """Open ``target``: a ``postgresql://`` (or ``postgres://``) URL, else a SQLite path."""
    if target.startswith(("postgresql://", "postgres://")):
        return _open_postgresql(target)
    if not target:
        raise InputError("no database given")
    return _open_sqlite(target)
