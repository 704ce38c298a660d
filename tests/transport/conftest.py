"""One small network PKI per test module: a CA, the key node, partners, an operator, an auditor,
and a rogue CA that issues look-alike certificates for the same network name."""

from __future__ import annotations

import pytest
from pki_support import NOW, Network, make_network


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Network:
    """A network valid at the fixed test time :data:`NOW`."""
    return make_network(tmp_path_factory.mktemp("pki"), NOW)


@pytest.fixture(scope="module")
def live_network(tmp_path_factory: pytest.TempPathFactory) -> Network:
    """A network valid now, for real TLS handshakes (BoringSSL uses the real clock)."""
    return make_network(tmp_path_factory.mktemp("live-pki"), None)
