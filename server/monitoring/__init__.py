"""Observability: hardware, metrics, status, logs, tracing and benchmarks (issue #7).

Core code here returns plain dicts keyed by the proto field names, so the servicers convert with
one generic call (`json_format.ParseDict`) instead of a hand-written converter per message.
"""
