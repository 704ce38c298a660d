"""Start a key node's Matching service: engine + servicer on a keynode gRPC server."""

from __future__ import annotations

import grpc

from keynode.matching.engine import MatchingEngine
from keynode.matching.service import SERVICE_NAME, MatchingServicer, add_to_server
from keynode.transport.server import KeynodeServer, ServerSettings, build_server


def start_matching_server(
    engine: MatchingEngine,
    listen: str,
    *,
    credentials: grpc.ServerCredentials | None = None,
    settings: ServerSettings | None = None,
) -> KeynodeServer:
    """Serve ``engine`` alone, without policy, on ``listen`` (``host:port``; 0 picks a port).

    Without ``credentials`` the server is plaintext and only a loopback address is
    accepted; anything that leaves the machine needs mTLS.
    """
    built = build_server(
        listen, credentials=credentials, services=[SERVICE_NAME], settings=settings
    )
    add_to_server(built.server, MatchingServicer(engine))
    built.start()
    return built
