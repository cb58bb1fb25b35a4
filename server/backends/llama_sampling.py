"""Per-request llama.cpp sampler chains: each request owns its chain, so concurrent requests never
share sampler state (penalty history, RNG)."""

from __future__ import annotations

from server.backends.llama_bindings import llama_cpp

from server.core.types import Sampling

# Tokens of recent history that the repetition penalties look at (llama.cpp's default).
PENALTY_LAST_N = 64
# A bias at or below this bans the token outright, as OpenAI documents for -100.
BAN_BIAS = -100.0


def build_sampler(s: Sampling, *, seed: int, n_vocab: int, prompt: list[int]):
    """A sampler chain for `s`; the caller frees it with llama_sampler_free."""
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())

    def add(sampler) -> None:
        llama_cpp.llama_sampler_chain_add(chain, sampler)

    if s.logit_bias:
        items = [llama_cpp.llama_logit_bias(token, float("-inf") if bias <= BAN_BIAS else bias)
                 for token, bias in s.logit_bias.items()]
        array = (llama_cpp.llama_logit_bias * len(items))(*items)
        add(llama_cpp.llama_sampler_init_logit_bias(n_vocab, len(items), array))
    if s.penalized:
        # This llama.cpp's signature takes the vocabulary size first (see its llama.h).
        add(llama_cpp.llama_sampler_init_penalties(n_vocab, PENALTY_LAST_N, s.repeat_penalty,
                                                   s.frequency_penalty, s.presence_penalty))
    if s.greedy:
        add(llama_cpp.llama_sampler_init_greedy())
    else:
        if s.top_k > 0:
            add(llama_cpp.llama_sampler_init_top_k(s.top_k))
        if s.top_p < 1.0:
            add(llama_cpp.llama_sampler_init_top_p(s.top_p, 1))
        if s.min_p > 0.0:
            add(llama_cpp.llama_sampler_init_min_p(s.min_p, 1))
        add(llama_cpp.llama_sampler_init_temp(s.temperature))
        add(llama_cpp.llama_sampler_init_dist(seed32(seed)))
    if s.penalized:
        # Penalties look back over recent history, prompt included, as llama.cpp's server does.
        for token in prompt[-PENALTY_LAST_N:]:
            llama_cpp.llama_sampler_accept(chain, token)
    return chain


def seed32(seed: int) -> int:
    """Folds a 64-bit seed into llama.cpp's 32 bits, avoiding its 'pick a random seed' value."""
    folded = (seed ^ (seed >> 32)) & 0xFFFFFFFF
    return 0 if folded == llama_cpp.LLAMA_DEFAULT_SEED else folded
