"""A tiny database layer shared by the stores: SQLite by default, PostgreSQL by URL.

Stores write portable SQL with ``?`` placeholders and run it through
:func:`open_database`'s :class:`Database`; the layer translates placeholders, opens write
transactions with the right locking for each engine, and makes commits durable (SQLite
in WAL mode with ``synchronous=FULL``; PostgreSQL's default ``synchronous_commit``).
"""

from keynode.storage.db import Database, Transaction, open_database

__all__ = ["Database", "Transaction", "open_database"]
