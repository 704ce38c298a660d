"""auditlog."""
