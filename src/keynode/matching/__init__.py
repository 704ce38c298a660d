"""The key node's Matching service: an engine (pure) and its gRPC servicer."""
