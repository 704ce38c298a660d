"""keynode: privacy-preserving customer-base matching for customer-sharing networks.

The public surface is small: :mod:`keynode.errors`, the normalisation profiles in
:mod:`keynode.identity`, the protocol recipes in :mod:`keynode.protocols` and the
``keynode`` command. Everything else is internal and may change.
"""

__version__ = "0.1.0"
