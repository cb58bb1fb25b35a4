"""The Open Inference Protocol's REST form (KServe v2 / Triton): health, server and model
metadata, model readiness and inference with JSON tensors, on the server's
`inference.GRPCInferenceService` (models are engines; the tensors of Triton's vLLM backend)."""

from rest_bridge.families import Family
from rest_bridge.families.kserve import openapi, routes

FAMILY = Family("kserve", (routes.blueprint,), (openapi,))
