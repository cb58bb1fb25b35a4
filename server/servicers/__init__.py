"""Thin gRPC servicers: protobuf in, domain call, protobuf out."""
