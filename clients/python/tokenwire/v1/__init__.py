"""Generated protobuf and gRPC code for the tokenwire.v1 package (`make proto` regenerates it)."""
