"""Build a gRPC server the way every keynode service runs: bounded, mTLS, observable.

:func:`build_server` binds the port and adds health checking and reflection; the caller
adds its servicers and calls :meth:`KeynodeServer.start`::

    creds = tls.server_credentials(Path("certs/key-node"))
    built = build_server("0.0.0.0:7443", credentials=creds, services=["keynode.v1.Matching"])
    matching_pb2_grpc.add_MatchingServicer_to_server(Matching(authorizer), built.server)
    built.start()

Connections are closed after :attr:`ServerSettings.max_connection_age` (gRPC adds ±10 %
jitter) plus a grace period for calls in flight, so a certificate revoked mid-connection
stops working within ``1.1 * max_connection_age + max_connection_age_grace`` even for a
call that never re-checks it; calls that go through
:class:`keynode.transport.auth.Authorizer` are refused at once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from keynode.errors import InputError
from keynode.transport import tls

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerSettings:
    """Limits of one server. Times are in seconds."""

    max_message_bytes: int = tls.MAX_MESSAGE_BYTES
    max_connection_age: float = 300.0
    max_connection_age_grace: float = 60.0
    keepalive_time: float = 60.0
    keepalive_timeout: float = 20.0
    min_client_ping_interval: float = 10.0
    max_workers: int = 16
    max_concurrent_rpcs: int = 64

    def __post_init__(self) -> None:
        if min(self.max_connection_age, self.max_connection_age_grace, self.keepalive_time) <= 0:
            raise InputError("connection ages and keepalive times must be positive")
        if self.max_workers < 1 or self.max_concurrent_rpcs < self.max_workers:
            raise InputError("need max_workers >= 1 and max_concurrent_rpcs >= max_workers")

    def options(self) -> list[tuple[str, Any]]:
        """The gRPC channel arguments these settings stand for."""

        def ms(seconds: float) -> int:
            return int(seconds * 1000)

        return [
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_message_bytes),
            ("grpc.max_connection_age_ms", ms(self.max_connection_age)),
            ("grpc.max_connection_age_grace_ms", ms(self.max_connection_age_grace)),
            ("grpc.keepalive_time_ms", ms(self.keepalive_time)),
            ("grpc.keepalive_timeout_ms", ms(self.keepalive_timeout)),
            ("grpc.keepalive_permit_without_calls", 1),
            (
                "grpc.http2.min_recv_ping_interval_without_data_ms",
                ms(self.min_client_ping_interval),
            ),
            ("grpc.http2.max_pings_without_data", 0),
            # Without this, a second server on a busy port would share it silently.
            ("grpc.so_reuseport", 0),
        ]


@dataclass
class KeynodeServer:
    """A bound, not yet started server, with its health service."""

    server: grpc.Server
    port: int
    health: health.HealthServicer
    services: tuple[str, ...] = field(default=())

    def start(self) -> None:
        """Start serving and report every service (and the server, ``""``) as SERVING."""
        self.server.start()
        for name in ("", *self.services):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    def stop(self, grace: float | None = 5.0) -> None:
        """Report NOT_SERVING, then stop, letting calls in flight finish for ``grace`` s."""
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()


def build_server(
    address: str,
    *,
    credentials: grpc.ServerCredentials | None,
    services: Sequence[str] = (),
    settings: ServerSettings | None = None,
    insecure_plaintext_on_network: bool = False,
) -> KeynodeServer:
    """Create and bind a server; ``credentials=None`` means plaintext, loopback only.

    ``services`` are the full names (``keynode.v1.Matching``) of the services the caller
    will add; their ``_pb2`` modules must be imported so that reflection can describe
    them. Port 0 binds a free port, returned in :attr:`KeynodeServer.port`.
    """
    settings = settings or ServerSettings()
    pool = descriptor_pool.Default()
    for name in services:
        try:
            pool.FindServiceByName(name)
        except KeyError as exc:
            raise InputError(f"unknown gRPC service {name!r}: import its _pb2 module") from exc
    if credentials is None:
        tls.check_plaintext(address, insecure_plaintext_on_network=insecure_plaintext_on_network)
    server = grpc.server(
        futures.ThreadPoolExecutor(settings.max_workers, thread_name_prefix="keynode-grpc"),
        options=settings.options(),
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
    )
    health_servicer = health.HealthServicer()
    health_servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    for name in services:
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
    reflection.enable_server_reflection([*services, health_name, reflection.SERVICE_NAME], server)
    try:
        if credentials is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials)
    except RuntimeError as exc:
        raise InputError(f"cannot listen on {address}: {exc}") from exc
    if not port:
        raise InputError(f"cannot listen on {address}")
    log.info(
        "keynode server bound to %s (port %d, %s)",
        address,
        port,
        "mTLS" if credentials else "plaintext",
    )
    return KeynodeServer(server=server, port=port, health=health_servicer, services=tuple(services))
