"""Generated protobuf and gRPC code for Triton's `inference` package: the Open Inference Protocol
(KServe v2) `GRPCInferenceService`, vendored under proto/tokenwire/inference (`make proto`
regenerates it)."""
