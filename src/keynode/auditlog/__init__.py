"""The policy log: an RFC 9162 transparency log of every policy decision (pure core).

Recipe layer (what the broker, the service and the CLI use):

- :class:`PolicyLog` — open a SQLite path or PostgreSQL URL, ``append`` entries durably
  (group-committed), read checkpoints, entries and proofs;
- :mod:`keynode.auditlog.records` — one builder per decision (grant, release, ...);
- :func:`verify_log` — the auditor's full check (signatures, append-only, replay);
- :func:`export_log` / :class:`ExportSource` — offline copies.

Low level: :mod:`~keynode.auditlog.merkle` (RFC 9162 hashing and proofs),
:mod:`~keynode.auditlog.entries` (canonical entries),
:mod:`~keynode.auditlog.checkpoint` (signed notes), :mod:`~keynode.auditlog.store`.
No gRPC here: the service lives in :mod:`keynode.auditlog_service`.
"""

from keynode.auditlog import records
from keynode.auditlog.checkpoint import Checkpoint, NoteSigner, NoteVerifier
from keynode.auditlog.entries import Entry, EntryType, decode_entry
from keynode.auditlog.export import ExportSource, export_log
from keynode.auditlog.policylog import PolicyLog, Receipt
from keynode.auditlog.replay import PolicyReplay, ReplayViolation
from keynode.auditlog.verify import LogSource, Verdict, verify_log

__all__ = [
    "Checkpoint",
    "Entry",
    "EntryType",
    "ExportSource",
    "LogSource",
    "NoteSigner",
    "NoteVerifier",
    "PolicyLog",
    "PolicyReplay",
    "Receipt",
    "ReplayViolation",
    "Verdict",
    "decode_entry",
    "export_log",
    "records",
    "verify_log",
]
