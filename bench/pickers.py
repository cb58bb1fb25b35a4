"""Cost of picking one greedy token: llama.cpp's sampler chain against tokenwire's ArgmaxPicker.

Both read the same logits row of the embedded model (after its prompt), with every
end-of-generation token banned through logit_bias, as in the load benchmark. Each picker picks
--picks times per round; the figure is microseconds per pick, min / median / max over --rounds.
The chain copies the whole vocabulary into a candidates array per pick; the argmax picker adds
the bias to the row in place and takes numpy's argmax. Both must pick the same token.

    .venv/bin/python bench/pickers.py
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from harness import (RESULTS_DIR, BenchError, eog_tokens, machine_info, min_median_max,
                     print_machine, run_main, write_results)
from server.backends.llama_bindings import llama_cpp
from server.backends.llama_model import LlamaModel
from server.backends.llama_sampling import ArgmaxPicker, ChainPicker
from server.config import embedded_model_path, physical_cores
from server.core.types import LoadParams, Sampling

PROMPT = "Write a long story about a lighthouse keeper."


def load(threads: int) -> tuple[LlamaModel, int, list[int]]:
    """The embedded model with PROMPT decoded; its last row's batch index, the prompt."""
    params = LoadParams(n_ctx=512, n_gpu_layers=0, main_gpu=0, n_threads=threads, n_batch=64,
                        n_parallel=1, flash_attn=True, kv_unified=False, kv_park_mb=0,
                        use_mmap=True, use_mlock=False)
    model = LlamaModel(str(embedded_model_path()), params, n_seq_max=1)
    prompt = model.tokenize(PROMPT, add_special=True, parse_special=True)
    batch = llama_cpp.llama_batch_init(len(prompt), 0, 1)
    try:
        for i, token in enumerate(prompt):
            batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, i, 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = i == len(prompt) - 1
        batch.n_tokens = len(prompt)
        if llama_cpp.llama_decode(model.ctx, batch) != 0:
            raise BenchError("llama_decode failed on the prompt")
    finally:
        llama_cpp.llama_batch_free(batch)
    return model, len(prompt) - 1, prompt


def per_pick_us(pick, picks: int) -> float:
    started = time.perf_counter()
    for _ in range(picks):
        pick()
    return (time.perf_counter() - started) / picks * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--picks", type=int, default=2000, help="picks per picker and round")
    parser.add_argument("--out", default=str(RESULTS_DIR / "pickers.json"))
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.picks < 1:
        parser.error("--rounds and --picks must be >= 1")

    model, index, prompt = load(physical_cores())
    bias = {token: -100.0 for token in eog_tokens(embedded_model_path())}
    chain = ChainPicker(Sampling(temperature=0, logit_bias=bias), seed=0, n_vocab=model.n_vocab,
                        prompt=prompt)
    argmax = ArgmaxPicker(bias, n_vocab=model.n_vocab)
    machine = machine_info()
    print(f"pickers: one greedy pick, {model.n_vocab}-token vocabulary, {len(bias)} tokens banned")
    print_machine(machine)
    try:
        # The chain first: the argmax picker changes the row (adding the same bias again is
        # harmless to its own later picks: banned stays -inf).
        expected, got = chain.pick(model.ctx, index), argmax.pick(model.ctx, index)
        if got != expected:
            raise BenchError(f"the pickers disagree: chain {expected}, argmax {got}")
        runs: dict[str, list[float]] = {"chain": [], "argmax": []}
        for round_ in range(1, args.rounds + 1):
            runs["chain"].append(per_pick_us(lambda: chain.pick(model.ctx, index), args.picks))
            runs["argmax"].append(per_pick_us(lambda: argmax.pick(model.ctx, index), args.picks))
            print(f"  round {round_}  chain {runs['chain'][-1]:6.1f} us  "
                  f"argmax {runs['argmax'][-1]:6.1f} us", flush=True)
    finally:
        chain.close()
        model.close()
    summary = {name: min_median_max(values) for name, values in runs.items()}
    for name, s in summary.items():
        print(f"  {name:<7} us per pick, min / median / max: "
              f"{s['min']:.1f} / {s['median']:.1f} / {s['max']:.1f}")
    print(f"  ratio of medians (chain / argmax): "
          f"{summary['chain']['median'] / summary['argmax']['median']:.1f}")
    write_results(Path(args.out), machine=machine, picks=args.picks, runs=runs, summary=summary)
    return 0


if __name__ == "__main__":
    run_main(main)
