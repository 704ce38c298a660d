"""The network CA: identities in certificates, validity at an injected time, revocation."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import stat
from collections.abc import Sequence
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from pki_support import NETWORK, NOW, Network

from keynode import pki
from keynode.errors import InputError, VerificationError


def _cert(network: Network, name: str) -> x509.Certificate:
    return pki.read_certificate(network.certs(name) / pki.TLS_CERT)


def _ca(network: Network) -> x509.Certificate:
    return pki.read_certificate(network.ca / pki.CA_CERT)


def test_identity_is_one_uri_san_and_the_subject_agrees(network: Network) -> None:
    cert = _cert(network, "bank")
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [
        "keynode://retail/partner/bank"
    ]
    assert cert.subject.rfc4514_string() == "O=retail,OU=partner,CN=bank"
    assert pki.parse_identity(cert) == pki.PeerIdentity(
        role="partner", party="bank", serial=cert.serial_number, network=NETWORK
    )


def test_only_the_key_node_certificate_serves(network: Network) -> None:
    def usages(name: str) -> set[x509.ObjectIdentifier]:
        eku = _cert(network, name).extensions.get_extension_for_class(x509.ExtendedKeyUsage)
        return set(eku.value)

    assert usages("key-node") == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert usages("bank") == usages("olga") == usages("aude") == {ExtendedKeyUsageOID.CLIENT_AUTH}
    sans = _cert(network, "key-node").extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert sans.value.get_values_for_type(x509.DNSName) == ["localhost"]
    assert sans.value.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]


def test_private_keys_are_owner_only(network: Network) -> None:
    for path in (network.ca / pki.CA_KEY, network.certs("bank") / pki.TLS_KEY):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_existing_files_are_never_overwritten(network: Network) -> None:
    with pytest.raises(InputError, match="already exists"):
        pki.init_ca(NETWORK, network.ca, now=NOW)
    with pytest.raises(InputError, match="already exists"):
        pki.issue(network.ca, pki.PARTNER, "bank", network.certs("bank"), now=NOW)


@pytest.mark.parametrize(
    ("role", "party", "extra", "message"),
    [
        ("admin", "bank", {}, "unknown role"),
        (pki.PARTNER, "Bank", {}, "invalid party name"),
        (pki.PARTNER, "bank/../x", {}, "invalid party name"),
        (pki.PARTNER, "-bank", {}, "invalid party name"),
        (pki.PARTNER, "bank", {"dns_names": ["bank.example"]}, "only a key-node"),
        (pki.KEY_NODE, "retailer", {"ips": ["not-an-ip"]}, "does not appear to be an IPv4"),
    ],
)
def test_issue_rejects_bad_requests(
    network: Network,
    tmp_path: Path,
    role: str,
    party: str,
    extra: dict[str, list[str]],
    message: str,
) -> None:
    with pytest.raises(InputError, match=message):
        pki.issue(network.ca, role, party, tmp_path, now=NOW, **extra)  # type: ignore[arg-type]


def test_issue_needs_a_ca_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        pki.issue(tmp_path / "nowhere", pki.PARTNER, "bank", tmp_path / "out", now=NOW)


def test_certificates_verify_inside_their_validity_period_only(network: Network) -> None:
    cert, ca = _cert(network, "bank"), _ca(network)
    assert pki.verify_certificate(cert, ca, now=NOW).party == "bank"
    assert pki.verify_certificate(cert, ca, now=NOW - pki.CLOCK_SKEW).party == "bank"
    with pytest.raises(VerificationError, match="does not verify"):
        pki.verify_certificate(cert, ca, now=NOW - dt.timedelta(hours=1))  # not yet valid
    with pytest.raises(VerificationError, match="does not verify"):
        pki.verify_certificate(cert, ca, now=NOW + pki.CERT_VALIDITY + dt.timedelta(seconds=1))


def test_certificate_from_another_ca_does_not_verify(network: Network) -> None:
    with pytest.raises(VerificationError, match="does not verify"):
        pki.verify_certificate(_cert(network, "rogue-bank"), _ca(network), now=NOW)


def test_naive_clock_is_refused(network: Network) -> None:
    with pytest.raises(InputError, match="timezone-aware"):
        pki.verify_certificate(_cert(network, "bank"), _ca(network), now=dt.datetime(2026, 6, 1))


def _forged(sans: Sequence[x509.GeneralName], *, ca: bool = False) -> x509.Certificate:
    """A self-signed certificate with chosen SANs, to exercise identity parsing alone."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "forged")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key, hashes.SHA256())


def _uri(value: str) -> x509.UniformResourceIdentifier:
    return x509.UniformResourceIdentifier(value)


@pytest.mark.parametrize(
    "sans",
    [
        pytest.param([], id="no-san"),
        pytest.param([x509.DNSName("bank.example")], id="no-identity-uri"),
        pytest.param(
            [_uri("keynode://retail/partner/bank"), _uri("keynode://retail/partner/insurer")],
            id="two-identities",
        ),
        pytest.param([_uri("keynode://retail/admin/bank")], id="unknown-role"),
        pytest.param([_uri("keynode://retail/partner/Bank")], id="uppercase-party"),
        pytest.param([_uri("keynode://retail/partner/bank/extra")], id="extra-path"),
        pytest.param([_uri("keynode://retail/partner")], id="missing-party"),
        pytest.param([_uri("keynode:retail/partner/bank")], id="not-a-url"),
    ],
)
def test_certificates_without_a_valid_identity_are_refused(sans: list[x509.GeneralName]) -> None:
    with pytest.raises(VerificationError):
        pki.parse_identity(_forged(sans))


def _is_label(name: str) -> bool:
    """The reference rule for names: a lowercase DNS label, spelled out without a regex."""
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-")
    return 0 < len(name) <= 63 and set(name) <= allowed and "-" not in (name[0], name[-1])


_URI_TEXT = st.one_of(
    st.from_regex(r"[a-z0-9-]{1,8}", fullmatch=True),
    st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=70),
)


@settings(max_examples=150, deadline=None)
@given(network=_URI_TEXT, role=st.sampled_from([*sorted(pki.ROLES), "admin", ""]), party=_URI_TEXT)
def test_identity_parsing_accepts_exactly_the_valid_uris(
    network: str, role: str, party: str
) -> None:
    cert = _forged([_uri(f"keynode://{network}/{role}/{party}")])
    valid = all(_is_label(name) for name in (network, party)) and role in pki.ROLES
    if valid:
        assert pki.parse_identity(cert) == pki.PeerIdentity(role, party, 1, network)
    else:
        with pytest.raises(VerificationError):
            pki.parse_identity(cert)


def test_a_ca_certificate_is_not_a_peer(network: Network) -> None:
    with pytest.raises(VerificationError, match="CA certificate"):
        pki.parse_identity(_forged([_uri("keynode://retail/partner/bank")], ca=True))
    with pytest.raises(VerificationError):
        pki.parse_identity(_ca(network))


def test_garbage_is_a_verification_error_not_a_value_error() -> None:
    with pytest.raises(VerificationError, match="malformed certificate"):
        pki.load_certificate(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")


def test_network_comes_from_the_ca(network: Network) -> None:
    assert pki.network_of(_ca(network)) == NETWORK
    with pytest.raises(VerificationError):
        pki.network_of(_forged([], ca=True))


# --- revocation ------------------------------------------------------------------------


@pytest.fixture
def small_network(tmp_path: Path) -> Network:
    """A throw-away CA with two partners, for tests that revoke."""
    net = Network(root=tmp_path, ca=tmp_path / "ca")
    pki.init_ca(NETWORK, net.ca, now=NOW)
    for party in ("bank", "insurer"):
        pki.issue(net.ca, pki.PARTNER, party, net.certs(party), now=NOW)
    return net


def _revocations(net: Network, now: dt.datetime = NOW) -> pki.RevocationList:
    return pki.RevocationList.from_crl((net.ca / pki.CRL).read_bytes(), _ca(net), now=now)


def test_revoke_by_serial_and_by_party(small_network: Network) -> None:
    bank = pki.parse_identity(_cert(small_network, "bank"))
    insurer = pki.parse_identity(_cert(small_network, "insurer"))
    assert _revocations(small_network).serials == frozenset()
    assert pki.revoke(small_network.ca, bank.serial, now=NOW) == [bank.serial]
    assert pki.revoke(small_network.ca, bank.serial, now=NOW) == []  # already revoked
    revoked = _revocations(small_network)
    assert revoked.is_revoked(bank) and not revoked.is_revoked(insurer)
    assert pki.revoke(small_network.ca, "insurer", now=NOW) == [insurer.serial]
    assert _revocations(small_network).serials == {bank.serial, insurer.serial}


def test_revoking_what_was_never_issued_is_an_input_error(small_network: Network) -> None:
    with pytest.raises(InputError, match="issued no certificate"):
        pki.revoke(small_network.ca, "telco", now=NOW)
    with pytest.raises(InputError, match="issued no certificate"):
        pki.revoke(small_network.ca, 12345, now=NOW)


def test_a_stale_crl_is_refused_until_refreshed(small_network: Network) -> None:
    later = NOW + pki.CRL_VALIDITY + dt.timedelta(seconds=1)
    with pytest.raises(VerificationError, match="out of date"):
        _revocations(small_network, later)
    pki.refresh_crl(small_network.ca, now=later)
    assert _revocations(small_network, later).serials == frozenset()


def test_a_crl_from_another_ca_is_refused(small_network: Network, network: Network) -> None:
    with pytest.raises(VerificationError, match="not signed by the network CA"):
        pki.RevocationList.from_crl((network.ca / pki.CRL).read_bytes(), _ca(small_network))
    with pytest.raises(VerificationError, match="malformed"):
        pki.RevocationList.from_crl(b"not a crl", _ca(small_network))


def test_crl_file_follows_changes_and_fails_closed(small_network: Network) -> None:
    clock = [NOW]
    crl = pki.CrlFile(small_network.ca / pki.CRL, _ca(small_network), clock=lambda: clock[0])
    bank = pki.parse_identity(_cert(small_network, "bank"))
    assert not crl.is_revoked(bank)
    pki.revoke(small_network.ca, "bank", now=NOW)
    assert crl.is_revoked(bank)
    clock[0] = NOW + pki.CRL_VALIDITY + dt.timedelta(seconds=1)
    with pytest.raises(VerificationError, match="revocation status unavailable"):
        crl.is_revoked(bank)
    clock[0] = NOW
    (small_network.ca / pki.CRL).write_bytes(b"garbage")
    with pytest.raises(VerificationError, match="revocation status unavailable"):
        crl.is_revoked(bank)
    (small_network.ca / pki.CRL).unlink()
    with pytest.raises(VerificationError, match="revocation status unavailable"):
        crl.is_revoked(bank)


def test_a_crl_file_unusable_at_start_is_an_error(tmp_path: Path, network: Network) -> None:
    with pytest.raises(VerificationError):
        pki.CrlFile(tmp_path / "missing.pem", _ca(network))


def test_ca_key_must_match_ca_certificate(small_network: Network, network: Network) -> None:
    (small_network.ca / pki.CA_KEY).unlink()
    (small_network.ca / pki.CA_KEY).write_bytes((network.ca / pki.CA_KEY).read_bytes())
    with pytest.raises(InputError, match="does not belong"):
        pki.revoke(small_network.ca, "bank", now=NOW)
    key = ec.generate_private_key(ec.SECP256R1())
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    (small_network.ca / pki.CA_KEY).write_bytes(encrypted)
    with pytest.raises(InputError, match="not an unencrypted PEM private key"):
        pki.revoke(small_network.ca, "bank", now=NOW)
