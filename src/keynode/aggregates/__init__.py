"""The key node's Aggregates service: partners' values summed per key-node segment.

:mod:`keynode.aggregates.engine` holds the sessions (no gRPC); :mod:`.service` is the
servicer; the partner's side is :mod:`keynode.client.aggregates`. See ``docs/aggregates.md``.
"""
