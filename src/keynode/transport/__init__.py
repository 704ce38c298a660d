"""gRPC plumbing shared by the servicers and clients: status mapping, servers, channels."""
