"""A real gRPC server on 127.0.0.1 with real mTLS: who gets in, and as whom."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from pki_support import Network

import keynode.v1.matching_pb2  # noqa: F401  (registers keynode.v1.Matching for reflection)
from keynode import pki
from keynode.errors import InputError
from keynode.transport import tls
from keynode.transport.auth import Authorizer
from keynode.transport.server import KeynodeServer, ServerSettings, build_server
from keynode.transport.status import grpc_errors

WHOAMI = "/keynode.test.Probe/Whoami"
OPERATE = "/keynode.test.Probe/Operate"
MATCHING = "keynode.v1.Matching"


class Probe:
    """A tiny servicer: partners ask who they are (as a party), operators operate."""

    def __init__(self, authorizer: Authorizer) -> None:
        self._auth = authorizer

    @grpc_errors
    def whoami(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        peer = self._auth.require(context, roles={pki.PARTNER}, party=request.decode() or None)
        return f"{peer.network}/{peer.role}/{peer.party}".encode()

    @grpc_errors
    def operate(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self._auth.require(context, roles={pki.OPERATOR})
        return b"done"

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            "keynode.test.Probe",
            {
                "Whoami": grpc.unary_unary_rpc_method_handler(self.whoami),
                "Operate": grpc.unary_unary_rpc_method_handler(self.operate),
            },
        )


def _authorizer(network: Network) -> Authorizer:
    ca_cert = pki.read_certificate(network.ca / pki.CA_CERT)
    return Authorizer(pki.network_of(ca_cert), pki.CrlFile(network.ca / pki.CRL, ca_cert))


def _serve(
    network: Network,
    settings: ServerSettings | None = None,
    extra: tuple[grpc.GenericRpcHandler, ...] = (),
) -> KeynodeServer:
    creds = tls.server_credentials(network.certs("key-node"))
    built = build_server("127.0.0.1:0", credentials=creds, services=[MATCHING], settings=settings)
    built.server.add_generic_rpc_handlers((Probe(_authorizer(network)).handler(), *extra))
    built.start()
    return built


@pytest.fixture(scope="module")
def server(live_network: Network) -> Iterator[KeynodeServer]:
    built = _serve(live_network)
    yield built
    built.stop(None)


def _call(port: int, cert_dir: Path | None, method: str, body: bytes = b"") -> bytes:
    with tls.open_channel(f"127.0.0.1:{port}", cert_dir) as channel:
        result: bytes = channel.unary_unary(method)(body, timeout=10)
        return result


def _code(port: int, cert_dir: Path | None, method: str, body: bytes = b"") -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        _call(port, cert_dir, method, body)
    code: grpc.StatusCode = caught.value.code()
    return code


def test_partner_is_identified_from_its_certificate(
    server: KeynodeServer, live_network: Network
) -> None:
    assert _call(server.port, live_network.certs("bank"), WHOAMI, b"bank") == b"retail/partner/bank"
    assert _call(server.port, live_network.certs("bank"), WHOAMI) == b"retail/partner/bank"


def test_certificate_from_another_ca_fails_the_handshake(
    server: KeynodeServer, live_network: Network
) -> None:
    code = _code(server.port, live_network.certs("rogue-bank"), WHOAMI, b"bank")
    assert code is grpc.StatusCode.UNAVAILABLE


def test_client_without_certificate_fails_the_handshake(
    server: KeynodeServer, live_network: Network
) -> None:
    ca = (live_network.ca / pki.CA_CERT).read_bytes()
    creds = grpc.ssl_channel_credentials(root_certificates=ca)
    with (
        grpc.secure_channel(f"127.0.0.1:{server.port}", creds) as channel,
        pytest.raises(grpc.RpcError) as caught,
    ):
        channel.unary_unary(WHOAMI)(b"bank", timeout=10)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE


def test_expired_client_certificate_fails_the_handshake(
    server: KeynodeServer, live_network: Network, tmp_path: Path
) -> None:
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    pki.issue(
        live_network.ca,
        pki.PARTNER,
        "lapsed",
        tmp_path,
        now=long_ago,
        validity=dt.timedelta(days=1),
    )
    assert _code(server.port, tmp_path, WHOAMI) is grpc.StatusCode.UNAVAILABLE


def test_wrong_role_is_permission_denied(server: KeynodeServer, live_network: Network) -> None:
    assert (
        _code(server.port, live_network.certs("olga"), WHOAMI) is grpc.StatusCode.PERMISSION_DENIED
    )
    assert (
        _code(server.port, live_network.certs("bank"), OPERATE) is grpc.StatusCode.PERMISSION_DENIED
    )
    assert _call(server.port, live_network.certs("olga"), OPERATE) == b"done"


def test_partner_cannot_act_as_another_partner(
    server: KeynodeServer, live_network: Network
) -> None:
    code = _code(server.port, live_network.certs("bank"), WHOAMI, b"insurer")
    assert code is grpc.StatusCode.PERMISSION_DENIED


def test_revoked_certificate_is_refused_on_the_next_call(
    server: KeynodeServer, live_network: Network
) -> None:
    with tls.open_channel(f"127.0.0.1:{server.port}", live_network.certs("telco")) as channel:
        whoami = channel.unary_unary(WHOAMI)
        assert whoami(b"telco", timeout=10) == b"retail/partner/telco"
        pki.revoke(live_network.ca, "telco")
        with pytest.raises(grpc.RpcError) as caught:
            whoami(b"telco", timeout=10)  # same connection, next call
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert _call(server.port, live_network.certs("insurer"), WHOAMI) == b"retail/partner/insurer"


def test_plaintext_loopback_server_has_no_identity_to_authorise(live_network: Network) -> None:
    built = build_server("127.0.0.1:0", credentials=None)
    built.server.add_generic_rpc_handlers((Probe(_authorizer(live_network)).handler(),))
    built.start()
    try:
        assert _code(built.port, None, WHOAMI) is grpc.StatusCode.UNAUTHENTICATED
    finally:
        built.stop(None)


def test_plaintext_on_a_network_address_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(InputError, match="refusing plaintext"):
        build_server("0.0.0.0:0", credentials=None)
    with caplog.at_level(logging.WARNING):
        built = build_server("0.0.0.0:0", credentials=None, insecure_plaintext_on_network=True)
    built.server.stop(None)
    assert "INSECURE" in caplog.text


def test_health_reports_serving(server: KeynodeServer, live_network: Network) -> None:
    with tls.open_channel(f"localhost:{server.port}", live_network.certs("aude")) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", MATCHING):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_and_describes_the_services(
    server: KeynodeServer, live_network: Network
) -> None:
    with tls.open_channel(f"127.0.0.1:{server.port}", live_network.certs("aude")) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        assert set(database.get_services()) == {
            MATCHING,
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
        }
        described = database.FindFileContainingSymbol(MATCHING)
        assert described.package == "keynode.v1"


def test_max_connection_age_ends_even_a_stream_that_never_rechecks(
    live_network: Network,
) -> None:
    def forever(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        while context.is_active():
            yield b"tick"
            time.sleep(0.05)

    settings = ServerSettings(max_connection_age=0.5, max_connection_age_grace=0.5)
    stream_handler = grpc.method_handlers_generic_handler(
        "keynode.test.Stream", {"Forever": grpc.unary_stream_rpc_method_handler(forever)}
    )
    built = _serve(live_network, settings, (stream_handler,))
    try:
        started = time.monotonic()
        with tls.open_channel(f"127.0.0.1:{built.port}", live_network.certs("bank")) as channel:
            stream = channel.unary_stream("/keynode.test.Stream/Forever")(b"", timeout=20)
            with pytest.raises(grpc.RpcError) as caught:
                for _ in stream:
                    pass
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
        assert time.monotonic() - started < 5
    finally:
        built.stop(None)
