"""The partner's client library: run keynode protocols against a key node over gRPC."""
