"""KV cache layout (issue 23): one cache split between the sequences against one unified cache.

Each layout loads the embedded model (or --model) with the same --parallel sequences; rounds
alternate between the layouts so that both see the same machine (prompts of a few dozen tokens; greedy answers may end before --tokens, the same
in both layouts). In each round, 1 and then
--parallel concurrent greedy streams answer different prompts; the figure is the tokens/s of
all streams together (tokens / wall time), median over rounds, and the ratio to the first layout.

    .venv/bin/python bench/kv_layout.py [--rounds 3] [--tokens 128] [--parallel 4]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from bench.kv_cache_types import PROMPTS
from server.backends.llama_cpp import LlamaCppBackend
from server.config import embedded_model_path, load_settings
from server.core.types import ChatMessage, GenerationRequest, LoadParams, Sampling

LAYOUTS = {
    "split 4096 / 4 (before)": {"n_ctx": 4096, "kv_unified": False},
    "split, sized from the model (default)": {"n_ctx": 0, "kv_unified": False},
    "unified, sized from the model": {"n_ctx": 0, "kv_unified": True},
}


async def stream(backend: LlamaCppBackend, prompt: str, max_tokens: int) -> int:
    request = GenerationRequest(messages=(ChatMessage("user", prompt),),
                                sampling=Sampling(temperature=0.0), max_tokens=max_tokens)
    count = 0
    async for delta in backend.generate(request):
        count += len(delta.token_ids)
    return count


async def measure(backend: LlamaCppBackend, streams: int, max_tokens: int) -> float:
    prompts = [PROMPTS[i % len(PROMPTS)] + f" (variant {i})" for i in range(streams)]
    started = time.perf_counter()
    counts = await asyncio.gather(*(stream(backend, p, max_tokens) for p in prompts))
    return sum(counts) / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(embedded_model_path()))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--parallel", type=int, default=4)
    args = parser.parse_args()
    backends, windows = {}, {}
    for name, engine in LAYOUTS.items():
        settings = load_settings(environ={}, overrides={"engine": {
            **engine, "n_parallel": args.parallel}})
        backend = LlamaCppBackend("bench", args.model, settings.resolve_load_params(LoadParams()))
        await backend.load()
        backends[name] = backend
        windows[name] = backend.info().n_ctx
        await measure(backend, 1, 16)  # warm-up
    levels = (1, args.parallel)
    rates: dict[tuple[str, int], list[float]] = {(n, c): [] for n in LAYOUTS for c in levels}
    try:
        for _ in range(args.rounds):
            for name, backend in backends.items():
                for c in levels:
                    rates[name, c].append(await measure(backend, c, args.tokens))
    finally:
        for backend in backends.values():
            await backend.close()
    base = next(iter(LAYOUTS))
    print(f"model {args.model}, {args.parallel} sequences, greedy, {args.tokens} tokens per "
          f"stream, {args.rounds} interleaved rounds; tokens/s of all streams together (median)")
    for name in backends:
        cells = []
        for c in levels:
            rate = statistics.median(rates[name, c])
            ratio = rate / statistics.median(rates[base, c])
            cells.append(f"c={c}: {rate:6.1f} ({ratio:.2f}x)")
        print(f"{name:32} window {windows[name]:6d}  " + "  ".join(cells))


if __name__ == "__main__":
    asyncio.run(main())
