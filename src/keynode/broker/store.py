"""What the broker keeps besides the policy log: policies, certificates, keys, leases.

The policy log is the source of truth for every decision (levels, grants, releases,
resignations); the broker rebuilds its standings from it at start-up. This store holds
only what the log must not contain: the policy documents themselves (the log has their
hashes), the enrolled certificates' serials, per-partner secret keys, spent grant ids
and audience leases. Deleting a partner's rows is part of making a resignation final.
"""

from __future__ import annotations

from dataclasses import dataclass

from keynode.storage import Database


def _schema(db: Database) -> list[str]:
    blob = db.blob_type()
    return [
        f"CREATE TABLE IF NOT EXISTS broker_policies (hash TEXT PRIMARY KEY, body {blob} NOT NULL)",
        "CREATE TABLE IF NOT EXISTS broker_certificates (partner TEXT PRIMARY KEY, "
        "serial TEXT NOT NULL, identity_hash TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS broker_revoked_serials (serial TEXT PRIMARY KEY, "
        "partner TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS broker_partner_keys (partner TEXT NOT NULL, "
        f"kind TEXT NOT NULL, key {blob} NOT NULL, PRIMARY KEY (partner, kind))",
        "CREATE TABLE IF NOT EXISTS broker_spent_grants (grant_id TEXT PRIMARY KEY, "
        "expires_ms BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS broker_leases (lease_id TEXT PRIMARY KEY, "
        "partner TEXT NOT NULL, segment TEXT NOT NULL, expires_ms BIGINT NOT NULL)",
    ]


@dataclass(frozen=True)
class Lease:
    lease_id: str
    partner: str
    segment: str
    expires_ms: int


class BrokerStore:
    """The broker's tables on a SQLite or PostgreSQL :class:`~keynode.storage.Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.create_schema(_schema(db))

    # -- policies --------------------------------------------------------------------

    def save_policy(self, policy_hash: str, body: bytes) -> None:
        with self.db.transaction(write=True) as tx:
            tx.execute(
                "INSERT INTO broker_policies (hash, body) VALUES (?, ?) "
                "ON CONFLICT (hash) DO NOTHING",
                (policy_hash, body),
            )

    def policies(self) -> dict[str, bytes]:
        with self.db.transaction() as tx:
            return {h: bytes(b) for h, b in tx.all("SELECT hash, body FROM broker_policies")}

    # -- certificates ----------------------------------------------------------------

    def set_certificate(self, partner: str, serial: int, identity_hash: str) -> None:
        with self.db.transaction(write=True) as tx:
            tx.execute("DELETE FROM broker_certificates WHERE partner = ?", (partner,))
            tx.execute(
                "INSERT INTO broker_certificates (partner, serial, identity_hash) VALUES (?, ?, ?)",
                (partner, format(serial, "x"), identity_hash),
            )

    def certificate(self, partner: str) -> tuple[int, str] | None:
        """(serial, identity hash) of the partner's enrolled certificate."""
        with self.db.transaction() as tx:
            row = tx.one(
                "SELECT serial, identity_hash FROM broker_certificates WHERE partner = ?",
                (partner,),
            )
        return (int(row[0], 16), str(row[1])) if row else None

    def revoke_serial(self, partner: str, serial: int) -> None:
        with self.db.transaction(write=True) as tx:
            tx.execute(
                "INSERT INTO broker_revoked_serials (serial, partner) VALUES (?, ?) "
                "ON CONFLICT (serial) DO NOTHING",
                (format(serial, "x"), partner),
            )
            tx.execute("DELETE FROM broker_certificates WHERE partner = ?", (partner,))

    def is_serial_revoked(self, serial: int) -> bool:
        with self.db.transaction() as tx:
            row = tx.one(
                "SELECT 1 FROM broker_revoked_serials WHERE serial = ?", (format(serial, "x"),)
            )
        return row is not None

    # -- per-partner keys --------------------------------------------------------------

    def partner_key(self, partner: str, kind: str) -> bytes | None:
        with self.db.transaction() as tx:
            row = tx.one(
                "SELECT key FROM broker_partner_keys WHERE partner = ? AND kind = ?",
                (partner, kind),
            )
        return bytes(row[0]) if row else None

    def create_partner_key(self, partner: str, kind: str, key: bytes) -> bytes:
        """Store ``key`` unless one exists; return the key in force."""
        with self.db.transaction(write=True) as tx:
            tx.execute(
                "INSERT INTO broker_partner_keys (partner, kind, key) VALUES (?, ?, ?) "
                "ON CONFLICT (partner, kind) DO NOTHING",
                (partner, kind, key),
            )
            row = tx.one(
                "SELECT key FROM broker_partner_keys WHERE partner = ? AND kind = ?",
                (partner, kind),
            )
        assert row is not None
        return bytes(row[0])

    def delete_partner_key(self, partner: str, kind: str) -> None:
        with self.db.transaction(write=True) as tx:
            tx.execute(
                "DELETE FROM broker_partner_keys WHERE partner = ? AND kind = ?", (partner, kind)
            )

    # -- grants and leases -------------------------------------------------------------

    def spend_grant(self, grant_id: str, expires_ms: int, now_ms: int) -> bool:
        """Mark a grant used; False if it was used before. Expired ids are pruned."""
        with self.db.transaction(write=True) as tx:
            tx.execute("DELETE FROM broker_spent_grants WHERE expires_ms <= ?", (now_ms,))
            if tx.one("SELECT 1 FROM broker_spent_grants WHERE grant_id = ?", (grant_id,)):
                return False
            tx.execute(
                "INSERT INTO broker_spent_grants (grant_id, expires_ms) VALUES (?, ?)",
                (grant_id, expires_ms),
            )
            return True

    def add_lease(self, lease: Lease) -> None:
        with self.db.transaction(write=True) as tx:
            tx.execute(
                "INSERT INTO broker_leases (lease_id, partner, segment, expires_ms) "
                "VALUES (?, ?, ?, ?)",
                (lease.lease_id, lease.partner, lease.segment, lease.expires_ms),
            )

    def lease(self, lease_id: str) -> Lease | None:
        with self.db.transaction() as tx:
            row = tx.one(
                "SELECT lease_id, partner, segment, expires_ms FROM broker_leases "
                "WHERE lease_id = ?",
                (lease_id,),
            )
        return Lease(str(row[0]), str(row[1]), str(row[2]), int(row[3])) if row else None

    def delete_partner_leases(self, partner: str) -> int:
        with self.db.transaction(write=True) as tx:
            rows = tx.all("SELECT lease_id FROM broker_leases WHERE partner = ?", (partner,))
            tx.execute("DELETE FROM broker_leases WHERE partner = ?", (partner,))
        return len(rows)
