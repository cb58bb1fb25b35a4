"""Per-request token pickers: each request owns its picker, so concurrent requests never share
sampler state (penalty history, RNG).

Greedy requests without penalties (the usual temperature-0 request, with or without logit_bias)
take the highest logit straight from llama.cpp's logits row. llama.cpp's own chain would first
copy the whole vocabulary into a candidates array (about 45 us per token for a 49k vocabulary,
against 6 us here), and on a small CPU every step's Python and sampling time is time the decode
threads wait. The result is the same token: bias added in float32, then the first highest
logit, as llama.cpp's logit_bias and greedy samplers do
(tests/integration/test_token_pickers.py holds us to it). Everything else runs llama.cpp's chain.
"""

from __future__ import annotations

from server.backends.llama_bindings import llama_cpp

from server.core.types import Sampling
from server.errors import EngineFailure

# Tokens of recent history that the repetition penalties look at (llama.cpp's default).
PENALTY_LAST_N = 64
# A bias at or below this bans the token outright, as OpenAI documents for -100.
BAN_BIAS = -100.0


def _bias_value(bias: float) -> float:
    return float("-inf") if bias <= BAN_BIAS else bias


class ChainPicker:
    """llama.cpp's sampler chain for one request."""

    def __init__(self, s: Sampling, *, seed: int, n_vocab: int, prompt: list[int]):
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        self._chain = chain

        def add(sampler) -> None:
            llama_cpp.llama_sampler_chain_add(chain, sampler)

        if s.logit_bias:
            items = [llama_cpp.llama_logit_bias(token, _bias_value(bias))
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

    def pick(self, ctx, index: int) -> int:
        """The next token from the logits of batch position `index` (the chain accepts it)."""
        return llama_cpp.llama_sampler_sample(self._chain, ctx, index)

    def close(self) -> None:
        if self._chain is not None:
            llama_cpp.llama_sampler_free(self._chain)
            self._chain = None


class ArgmaxPicker:
    """Greedy without penalties: the first highest logit after the bias. Stateless."""

    def __init__(self, logit_bias: dict[int, float], *, n_vocab: int):
        import numpy as np  # loaded with the first greedy request, not by every server

        self._np = np
        self._n_vocab = n_vocab
        # llama.cpp ignores biases for tokens outside the vocabulary; so do we.
        biased = [(token, _bias_value(bias)) for token, bias in logit_bias.items()
                  if 0 <= token < n_vocab]
        self._tokens = np.array([token for token, _ in biased], dtype=np.intp)
        self._bias = np.array([bias for _, bias in biased], dtype=np.float32)

    def pick(self, ctx, index: int) -> int:
        pointer = llama_cpp.llama_get_logits_ith(ctx, index)
        if not pointer:
            raise EngineFailure(f"llama.cpp has no logits for batch position {index}")
        # A view of llama.cpp's row, changed in place: the next decode overwrites it, and nothing
        # else reads it.
        row = self._np.ctypeslib.as_array(pointer, shape=(self._n_vocab,))
        if self._tokens.size:
            row[self._tokens] += self._bias
        return int(row.argmax())

    def close(self) -> None:
        pass


def make_picker(s: Sampling, *, seed: int, n_vocab: int, prompt: list[int]):
    """The picker for `s`; the caller closes it when the request ends."""
    if s.greedy and not s.penalized:
        return ArgmaxPicker(s.logit_bias, n_vocab=n_vocab)
    return ChainPicker(s, seed=seed, n_vocab=n_vocab, prompt=prompt)


def seed32(seed: int) -> int:
    """Folds a 64-bit seed into llama.cpp's 32 bits, avoiding its 'pick a random seed' value."""
    folded = (seed ^ (seed >> 32)) & 0xFFFFFFFF
    return 0 if folded == llama_cpp.LLAMA_DEFAULT_SEED else folded
