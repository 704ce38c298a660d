"""Generated protobuf and gRPC code for the keynode.v1 wire contract.

Do not edit: regenerate with ``python scripts/gen_protos.py``. The contract itself is
``proto/keynode/v1/*.proto``.
"""
