"""KV cache element types (issue 23): decode speed and greedy agreement with f16.

For each cache type (K and V alike: f16, q8_0, q4_0) the embedded model (or --model) is loaded
with the same window, and each prompt is answered greedily twice: the first 32 tokens are
compared with f16's (how many leading tokens agree, and whether all 32 do), and a longer answer
gives the decode rate. Also the KV bytes per token, from which a memory budget gives the window.

    .venv/bin/python bench/kv_cache_types.py [--model PATH] [--n-ctx 4096] [--tokens 128]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time

from server.backends.llama_cpp import LlamaCppBackend
from server.config import embedded_model_path, load_settings
from server.core import engines, gguf_info
from server.core.types import ChatMessage, GenerationRequest, LoadParams, Sampling

PROMPTS = [
    "Write a detailed paragraph about the ocean.",
    "Explain how a bicycle stays upright.",
    "List five facts about the moon.",
    "What is the capital of France? Answer in one sentence.",
    "Describe the water cycle to a child.",
]
TYPES = ("f16", "q8_0", "q4_0")


async def answer(backend: LlamaCppBackend, prompt: str, max_tokens: int) -> tuple[list[int], float]:
    request = GenerationRequest(messages=(ChatMessage("user", prompt),),
                                sampling=Sampling(temperature=0.0), max_tokens=max_tokens)
    tokens: list[int] = []
    rate = 0.0
    async for delta in backend.generate(request):
        tokens.extend(delta.token_ids)
        if delta.finish is not None:
            rate = delta.finish.timings.tokens_per_second
    return tokens, rate


async def run_type(path: str, cache_type: str, n_ctx: int, max_tokens: int) -> dict:
    settings = load_settings(environ={}, overrides={"engine": {
        "n_ctx": n_ctx, "n_parallel": 1, "cache_type_k": cache_type, "cache_type_v": cache_type}})
    params = settings.resolve_load_params(LoadParams())
    backend = LlamaCppBackend("bench", path, params)
    await backend.load()
    try:
        firsts, rates = [], []
        for prompt in PROMPTS:
            first, _ = await answer(backend, prompt, 32)
            firsts.append(first)
            _, rate = await answer(backend, prompt, max_tokens)
            rates.append(rate)
    finally:
        await backend.close()
    per_token = engines.kv_bytes_per_token(gguf_info.read(path), params)
    return {"type": cache_type, "firsts": firsts, "tok_s": statistics.median(rates),
            "kv_bytes_per_token": per_token}


def leading_agreement(a: list[int], b: list[int]) -> int:
    return len(os.path.commonprefix([a, b]))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(embedded_model_path()))
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    rows = []
    for cache_type in TYPES:
        started = time.perf_counter()
        rows.append(await run_type(args.model, cache_type, args.n_ctx, args.tokens))
        rows[-1]["seconds"] = time.perf_counter() - started
    base = rows[0]
    out = []
    for row in rows:
        agree = [leading_agreement(f, b) for f, b in zip(row["firsts"], base["firsts"])]
        out.append({"cache_type": row["type"], "decode_tok_s": round(row["tok_s"], 1),
                    "vs_f16": round(row["tok_s"] / base["tok_s"], 3) if base["tok_s"] else None,
                    "first32_identical": f"{sum(a >= 32 for a in agree)}/{len(agree)}",
                    "leading_tokens_agreeing": agree,
                    "kv_bytes_per_token": row["kv_bytes_per_token"],
                    "tokens_per_GiB": (1 << 30) // row["kv_bytes_per_token"]})
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"model {args.model}, n_ctx {args.n_ctx}, 1 sequence, greedy, {len(PROMPTS)} prompts, "
          f"decode rate = median over prompts of a {args.tokens}-token answer")
    print(f"{'cache':6} {'tok/s':>7} {'vs f16':>7} {'first 32 same':>14} {'leading agree':>24} "
          f"{'KV B/token':>10} {'tokens/GiB':>10}")
    for r in out:
        print(f"{r['cache_type']:6} {r['decode_tok_s']:7.1f} {r['vs_f16']:7.3f} "
              f"{r['first32_identical']:>14} {str(r['leading_tokens_agreeing']):>24} "
              f"{r['kv_bytes_per_token']:10d} {r['tokens_per_GiB']:10d}")


if __name__ == "__main__":
    asyncio.run(main())
