"""Benchmarks an engine with real generations: optional warm-up, then timed samples one after
another, each timed from the caller's side and by the engine's own timings."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from server.core.types import GenerationRequest, Sampling
from server.errors import FieldViolation, InvalidArgument

if TYPE_CHECKING:
    from server.core.engines import EngineManager
    from server.monitoring.hardware import Hardware

# A prompt that invites a long answer, so samples usually run to max_tokens.
PROMPT = ("Write a detailed, multi-paragraph essay about the history of computing, from "
          "mechanical calculators to modern processors.\n\n")


def validate(num_samples: int, max_tokens: int, temperature: float) -> None:
    problems = []
    if not 1 <= num_samples <= 100:
        problems.append(FieldViolation("num_samples", f"must be between 1 and 100, got {num_samples}"))
    if not 1 <= max_tokens <= 4096:
        problems.append(FieldViolation("max_tokens", f"must be between 1 and 4096, got {max_tokens}"))
    if not 0.0 <= temperature <= 2.0:
        problems.append(FieldViolation("temperature", f"must be between 0 and 2, got {temperature}"))
    if problems:
        raise InvalidArgument(problems)


async def _one(engine, max_tokens: int, temperature: float, seed: int) -> dict:
    request = GenerationRequest(prompt=PROMPT, sampling=Sampling(temperature=temperature, seed=seed),
                                max_tokens=max_tokens, request_id=f"benchmark-{seed}",
                                arrived_at=time.monotonic())
    started = time.perf_counter()
    finish = None
    async for delta in engine.backend.generate(request):
        if delta.finish is not None:
            finish = delta.finish
    elapsed = time.perf_counter() - started
    tokens = finish.usage.completion_tokens if finish else 0
    return {"tokens": tokens, "time_seconds": elapsed,
            "tokens_per_second": tokens / elapsed if elapsed > 0 else 0.0,
            "first_token_latency_ms": finish.timings.time_to_first_token_ms if finish else 0.0,
            "decode_tokens_per_second": finish.timings.tokens_per_second if finish else 0.0}


async def run_benchmark(engines: "EngineManager", hardware: "Hardware", *, engine_id: str,
                        num_samples: int, max_tokens: int, temperature: float,
                        include_warmup: bool, include_memory_test: bool) -> dict:
    validate(num_samples, max_tokens, temperature)
    async with engines.lease(engine_id) as engine:
        if include_warmup:
            await _one(engine, min(max_tokens, 16), temperature, seed=0)
        samples = [await _one(engine, max_tokens, temperature, seed=i + 1) for i in range(num_samples)]
    total_tokens = sum(s["tokens"] for s in samples)
    total_time = sum(s["time_seconds"] for s in samples)
    result = {
        "engine_id": engine.id,
        "timestamp_unix_ms": int(time.time() * 1000),
        "tokens_per_second": total_tokens / total_time if total_time > 0 else 0.0,
        "first_token_latency_ms": sum(s["first_token_latency_ms"] for s in samples) / len(samples),
        "total_tokens": total_tokens,
        "total_time_seconds": total_time,
        "samples": samples,
    }
    if include_memory_test:
        result["memory_usage_bytes"] = hardware.process()["rss_bytes"]
    gpus = hardware.nvml.gpus()
    utilizations = [g["utilization_percent"] for g in gpus if "utilization_percent" in g]
    if utilizations:
        result["gpu_utilization_percent"] = sum(utilizations) / len(utilizations)
    return result
