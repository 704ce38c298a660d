"""The broker: sharing levels, grants, audience leases and resignation (core + servicer).

:class:`~keynode.broker.core.Broker` is the pure decision core: every decision goes
through :mod:`keynode.policy` and is appended to the policy log before it takes effect.
:mod:`keynode.broker.service` is its gRPC face.
"""
