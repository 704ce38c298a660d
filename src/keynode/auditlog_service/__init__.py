"""The read-only AuditLog gRPC service and its client: protobuf <-> the auditlog core.

Nothing in :mod:`keynode.auditlog` knows about gRPC; this package translates.
"""

from keynode.auditlog_service.client import AuditClient
from keynode.auditlog_service.server import AuditLogServicer, serve_audit

__all__ = ["AuditClient", "AuditLogServicer", "serve_audit"]
