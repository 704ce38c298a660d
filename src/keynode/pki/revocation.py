"""Revocation for a keynode network: the CA-signed X.509 CRL, and reading it safely.

:func:`revoke` adds serials (or every certificate of a party) to the CA's ``crl.pem``
and re-signs it atomically; :class:`CrlFile` is the servers' view of that file, which
fails closed when it cannot be read, does not verify or is stale.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from keynode.errors import InputError, VerificationError
from keynode.pki.authority import (
    CRL,
    CRL_VALIDITY,
    ISSUED,
    PeerIdentity,
    _load_ca,
    _now,
    _sign_crl,
    _write_new,
    check_name,
    parse_identity,
    read_certificate,
    read_file,
)

log = logging.getLogger(__name__)


def _load_crl(pem: bytes, ca_cert: x509.Certificate) -> x509.CertificateRevocationList:
    public = ca_cert.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise VerificationError("not a keynode network CA certificate")
    try:
        crl = x509.load_pem_x509_crl(pem)
        valid = crl.issuer == ca_cert.subject and crl.is_signature_valid(public)
    except (ValueError, TypeError) as exc:
        raise VerificationError("malformed revocation list") from exc
    if not valid:
        raise VerificationError("revocation list is not signed by the network CA")
    return crl


def revoke(
    ca_dir: Path,
    serial_or_party: int | str,
    *,
    now: dt.datetime | None = None,
    validity: dt.timedelta = CRL_VALIDITY,
) -> list[int]:
    """Revoke one certificate (an ``int`` serial) or every one issued to a party (a ``str``).

    Re-signs ``crl.pem`` and returns the serials newly revoked (already revoked ones are
    skipped). A serial or party this CA never issued to is an :class:`InputError`.
    """
    issued = _issued(ca_dir)
    if isinstance(serial_or_party, str):
        check_name("party", serial_or_party)
        targets = [i.serial for i in issued if i.party == serial_or_party]
    else:
        targets = [i.serial for i in issued if i.serial == serial_or_party]
    if not targets:
        raise InputError(f"this CA issued no certificate to {serial_or_party!r}")
    return _update_crl(ca_dir, targets, _now(now), validity)


def refresh_crl(
    ca_dir: Path, *, now: dt.datetime | None = None, validity: dt.timedelta = CRL_VALIDITY
) -> None:
    """Re-sign ``crl.pem`` unchanged but for its dates, before servers find it stale."""
    _update_crl(ca_dir, [], _now(now), validity)


def _issued(ca_dir: Path) -> list[PeerIdentity]:
    return [parse_identity(read_certificate(p)) for p in sorted((ca_dir / ISSUED).glob("*.crt"))]


def _update_crl(
    ca_dir: Path, serials: Iterable[int], now: dt.datetime, validity: dt.timedelta
) -> list[int]:
    ca_key, ca_cert = _load_ca(ca_dir)
    crl = _load_crl(read_file(ca_dir / CRL), ca_cert)
    already = {entry.serial_number for entry in crl}
    new = [serial for serial in serials if serial not in already]
    entries = list(crl) + [
        x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build()
        for serial in new
    ]
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number + 1
    pem = _sign_crl(ca_key, ca_cert, entries, number, now, validity)
    tmp = ca_dir / f".{CRL}.tmp"
    tmp.unlink(missing_ok=True)
    _write_new(tmp, pem, 0o644)
    tmp.replace(ca_dir / CRL)  # atomic: a server reloading the CRL never sees half of it
    return new


@dataclass(frozen=True)
class RevocationList:
    """The serials a verified, current CRL revokes."""

    serials: frozenset[int]
    next_update: dt.datetime

    @classmethod
    def from_crl(
        cls, pem: bytes, ca_cert: x509.Certificate, *, now: dt.datetime | None = None
    ) -> RevocationList:
        """Verify a PEM CRL against the CA; a stale one (past its next update) is refused."""
        crl = _load_crl(pem, ca_cert)
        next_update = crl.next_update_utc
        if next_update is None or _now(now) > next_update:
            raise VerificationError("revocation list is out of date: re-sign it")
        return cls(frozenset(entry.serial_number for entry in crl), next_update)

    def is_revoked(self, peer: PeerIdentity) -> bool:
        """Whether the peer's certificate is on this list."""
        return peer.serial in self.serials


class CrlFile:
    """A revocation source that re-reads a CRL file whenever it changes on disk.

    Fails closed: if the file cannot be read, does not verify or is stale, every peer
    counts as revoked until it is fixed (and the reason is logged).
    """

    def __init__(
        self,
        path: Path,
        ca_cert: x509.Certificate,
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._path = path
        self._ca_cert = ca_cert
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._list: RevocationList | None = None
        self.current()  # a broken CRL at start-up is an error, not a silent lock-out

    def current(self) -> RevocationList:
        """The revocation list now in force; :class:`VerificationError` if there is none."""
        with self._lock:
            try:
                stat = self._path.stat()
                stamp = (stat.st_mtime_ns, stat.st_size)
                if stamp != self._stamp or self._list is None:
                    self._list = None
                    pem = read_file(self._path)
                    self._list = RevocationList.from_crl(pem, self._ca_cert, now=self._clock())
                    self._stamp = stamp
                elif self._clock() > self._list.next_update:
                    raise VerificationError("revocation list is out of date: re-sign it")
            except (OSError, InputError, VerificationError) as exc:
                log.error("revocation list %s unusable: %s", self._path, exc)
                raise VerificationError("revocation status unavailable") from exc
            return self._list

    def is_revoked(self, peer: PeerIdentity) -> bool:
        """Whether the peer's certificate is revoked (raises if that cannot be known)."""
        return self.current().is_revoked(peer)
