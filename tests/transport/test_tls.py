"""Credentials from certificate directories, the loopback rule, server settings; no sockets."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pki_support import Network

from keynode import pki
from keynode.errors import InputError
from keynode.transport import tls
from keynode.transport.server import ServerSettings, build_server


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1:0", True),
        ("127.9.9.9:7443", True),
        ("[::1]:7443", True),
        ("localhost:7443", True),
        ("dns:///localhost:7443", True),
        ("ipv4:127.0.0.1:7443", True),
        ("unix:/run/keynode.sock", True),
        ("0.0.0.0:7443", False),
        ("[::]:7443", False),
        (":7443", False),
        ("10.0.0.5:7443", False),
        ("keynode.example:7443", False),
        ("localhost.example:7443", False),
        ("dns:///keynode.example:7443", False),
    ],
)
def test_loopback_addresses(address: str, loopback: bool) -> None:
    assert tls.is_loopback(address) is loopback


def test_plaintext_channel_to_the_network_is_refused() -> None:
    with pytest.raises(InputError, match="refusing plaintext"):
        tls.open_channel("keynode.example:7443", None)


def _copy(network: Network, name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(network.certs(name), tmp_path / name))


@pytest.mark.parametrize("missing", [pki.TLS_KEY, pki.TLS_CERT, pki.CA_CERT])
def test_a_missing_file_is_named(network: Network, tmp_path: Path, missing: str) -> None:
    certs = _copy(network, "bank", tmp_path)
    (certs / missing).unlink()
    with pytest.raises(InputError, match=f"cannot read .*{missing}"):
        tls.channel_credentials(certs)


def test_a_key_from_another_certificate_is_refused(network: Network, tmp_path: Path) -> None:
    certs = _copy(network, "bank", tmp_path)
    shutil.copy(network.certs("insurer") / pki.TLS_KEY, certs / pki.TLS_KEY)
    with pytest.raises(InputError, match="does not belong"):
        tls.channel_credentials(certs)


def test_a_corrupt_certificate_is_refused(network: Network, tmp_path: Path) -> None:
    certs = _copy(network, "bank", tmp_path)
    (certs / pki.TLS_CERT).write_bytes(b"not pem")
    with pytest.raises(InputError, match="not a PEM certificate"):
        tls.channel_credentials(certs)


def test_only_a_key_node_certificate_can_serve(network: Network) -> None:
    tls.server_credentials(network.certs("key-node"))
    with pytest.raises(InputError, match="not a key-node one"):
        tls.server_credentials(network.certs("bank"))


def test_server_settings_become_channel_arguments() -> None:
    options = dict(ServerSettings(max_connection_age=120, max_connection_age_grace=30).options())
    assert options["grpc.max_connection_age_ms"] == 120_000
    assert options["grpc.max_connection_age_grace_ms"] == 30_000
    assert options["grpc.max_receive_message_length"] == 4 * 1024 * 1024 + 64 * 1024
    assert options["grpc.so_reuseport"] == 0


@pytest.mark.parametrize(
    "kwargs",
    [{"max_connection_age": 0}, {"max_workers": 0}, {"max_workers": 8, "max_concurrent_rpcs": 4}],
)
def test_nonsense_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(InputError):
        ServerSettings(**kwargs)  # type: ignore[arg-type]


def test_unknown_service_names_are_refused_before_binding() -> None:
    with pytest.raises(InputError, match="unknown gRPC service"):
        build_server("127.0.0.1:0", credentials=None, services=["keynode.v1.Nothing"])
