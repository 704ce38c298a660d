"""A synthetic customer-sharing network for the demo, tests and benchmarks.

:func:`generate_network` writes a retailer's loyalty base (the key node) and six
partners' customer files with realistically dirty identifiers, deterministically from
a seed, and returns a :class:`DemoNetwork` manifest that says what a correct match of
each partner against the key node finds.
"""

from keynode.synthetic.network import (
    DEFAULT_MEMBERS,
    PARTNERS,
    DemoNetwork,
    PartnerSpec,
    PartyFile,
    generate_network,
)

__all__ = [
    "DEFAULT_MEMBERS",
    "PARTNERS",
    "DemoNetwork",
    "PartnerSpec",
    "PartyFile",
    "generate_network",
]
