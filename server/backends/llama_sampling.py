"""Per-request token pickers: each request owns its picker, so concurrent requests never share
sampler state (penalty history, RNG).

Greedy requests without penalties (the usual temperature-0 request, with or without logit_bias)
take the highest logit straight from llama.cpp's logits row. llama.cpp's own chain would first
copy the whole vocabulary into a candidates array (about 45 us per token for a 49k vocabulary,
against 6 us here), and on a small CPU every step's Python and sampling time is time the decode
threads wait. The result is the same token: bias added in float32, then the first highest
logit, as llama.cpp's logit_bias and greedy samplers do
(tests/integration/test_token_pickers.py holds us to it). Everything else runs llama.cpp's chain.

Two request features hook into either picker:
- a grammar (an llguidance matcher, server.backends.llama_grammar), checked sample-then-check:
  the token picked without it is validated, and only a rejected one costs the full-vocabulary
  mask and a second pick over the allowed tokens;
- log probabilities: the log-softmax of the row the sampler saw (logits plus logit_bias, before
  temperature and the grammar mask), with the `top` most likely tokens, kept in `last_logprobs`.
"""

from __future__ import annotations

import ctypes

from server.backends.llama_bindings import llama_cpp

from server.core.types import Sampling
from server.errors import EngineFailure

# Tokens of recent history that the repetition penalties look at (llama.cpp's default).
PENALTY_LAST_N = 64
# A bias at or below this bans the token outright, as OpenAI documents for -100.
BAN_BIAS = -100.0


def _bias_value(bias: float) -> float:
    return float("-inf") if bias <= BAN_BIAS else bias


class _Features:
    """The grammar and log-probability parts both pickers share."""

    def _init_features(self, np, n_vocab: int, matcher, top_logprobs: int | None,
                       logit_bias: dict[int, float]) -> None:
        self._np = np
        self._n_vocab = n_vocab
        self.matcher = matcher
        self._top = top_logprobs
        #: (chosen logprob, ((token, logprob) of the most likely, best first)) of the last pick.
        self.last_logprobs: tuple[float, tuple[tuple[int, float], ...]] | None = None
        self._log_z = 0.0
        self._row_for_logprobs = None
        # llama.cpp ignores biases for tokens outside the vocabulary; so do we.
        biased = [(token, _bias_value(bias)) for token, bias in logit_bias.items()
                  if 0 <= token < n_vocab]
        self._tokens = np.array([token for token, _ in biased], dtype=np.intp)
        self._bias = np.array([bias for _, bias in biased], dtype=np.float32)
        self.rejections = 0  # picks the grammar turned down (each cost a full mask)

    def _row(self, ctx, index: int):
        pointer = llama_cpp.llama_get_logits_ith(ctx, index)
        if not pointer:
            raise EngineFailure(f"llama.cpp has no logits for batch position {index}")
        return self._np.ctypeslib.as_array(pointer, shape=(self._n_vocab,))

    def _note_distribution(self, biased) -> None:
        """Keeps what log probabilities need from the biased row, before anything masks it."""
        if self._top is None:
            return
        np = self._np
        peak = float(biased.max())
        self._log_z = peak + float(np.log(np.exp(biased - peak, dtype=np.float64).sum()))
        if self._top:
            best = np.argpartition(-biased, self._top - 1)[:self._top]
            best = best[np.argsort(-biased[best], kind="stable")]
            self._best = tuple((int(t), float(biased[t]) - self._log_z) for t in best)
        else:
            self._best = ()
        self._row_for_logprobs = biased

    def _note_choice(self, token: int) -> None:
        if self._top is not None:
            chosen = float(self._row_for_logprobs[token]) - self._log_z
            self.last_logprobs = (chosen, self._best)
            self._row_for_logprobs = None

    def _allowed(self):
        """The grammar's full-vocabulary mask, as booleans."""
        np = self._np
        bits = np.frombuffer(self.matcher.compute_bitmask(), dtype=np.uint8)
        return np.unpackbits(bits, bitorder="little")[:self._n_vocab].astype(bool)

    def _unbiased_best(self, row, allowed, saved) -> int:
        """The grammar outranks logit_bias: when the bias bans every token the grammar allows
        (say, the end of generation once a JSON value is complete), the grammar's most likely
        token by the unbiased logits is taken. `saved` holds the unbiased values of biased
        tokens when `row` is biased in place."""
        raw = row.copy()
        if saved is not None:
            raw[self._tokens] = saved
        raw[~allowed] = -self._np.inf
        return int(raw.argmax())

    def _accepts(self, token: int) -> bool:
        return self.matcher.validate_tokens([token]) == 1

    def _consume(self, token: int) -> None:
        if self.matcher is not None and not self.matcher.consume_token(token):
            raise EngineFailure(f"the grammar refused token {token} it had allowed: "
                                f"{self.matcher.get_error()}")


class ChainPicker(_Features):
    """llama.cpp's sampler chain for one request."""

    def __init__(self, s: Sampling, *, seed: int, n_vocab: int, prompt: list[int], matcher=None,
                 top_logprobs: int | None = None):
        if matcher is not None or top_logprobs is not None:
            import numpy as np  # the plain sampled path never loads it

            self._init_features(np, n_vocab, matcher, top_logprobs, s.logit_bias)
        else:
            self.matcher, self._top, self.last_logprobs, self.rejections = None, None, None, 0
        self._candidates = None
        self._penalized = s.penalized
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
        if self.matcher is None and self._top is None:
            return llama_cpp.llama_sampler_sample(self._chain, ctx, index)
        row = self._row(ctx, index)
        if self._top is not None:
            biased = row.copy()
            if self._tokens.size:
                biased[self._tokens] += self._bias
            self._note_distribution(biased)
        if self.matcher is None:
            token = llama_cpp.llama_sampler_sample(self._chain, ctx, index)
        else:
            token = self._constrained(ctx, index, row)
        self._note_choice(token)
        return token

    def _constrained(self, ctx, index: int, row) -> int:
        if self._penalized:
            # The chain over a copy of the row (what llama_sampler_sample does inside), so that a
            # rejected pick can be redone before the chain accepts (records) one.
            token = self._apply(row, None)
        else:
            # Without penalties accepting changes no sampler's state, so llama.cpp's own sample
            # call (no copy of the row in Python) serves as the first, unchecked pick.
            token = llama_cpp.llama_sampler_sample(self._chain, ctx, index)
        if not self._accepts(token):
            self.rejections += 1
            allowed = self._allowed()
            token = self._apply(row, self._np.flatnonzero(allowed))
            if not allowed[token]:
                token = self._unbiased_best(row, allowed, None)
        if self._penalized:
            llama_cpp.llama_sampler_accept(self._chain, token)
        self._consume(token)
        return token

    def _apply(self, row, ids) -> int:
        """Runs the chain over the candidates `ids` (None: the whole vocabulary); the token
        picked. Only allowed tokens are candidates after a rejection: often a handful, so the
        chain sorts a short array instead of masking the whole vocabulary to -inf."""
        np = self._np
        if self._candidates is None:
            dtype = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])
            self._candidates = np.zeros(self._n_vocab, dtype=dtype)
            self._ids = np.arange(self._n_vocab, dtype=np.int32)
            self._array = llama_cpp.llama_token_data_array(
                data=self._candidates.ctypes.data_as(ctypes.POINTER(llama_cpp.llama_token_data)),
                size=self._n_vocab, selected=-1, sorted=False)
        if ids is None:
            ids = self._ids
        size = len(ids)
        if size == 0:
            return 0  # nothing allowed: the caller's fallback decides
        c = self._candidates[:size]
        c["id"] = ids
        c["logit"] = row[ids]
        c["p"] = 0.0
        self._array.size, self._array.selected, self._array.sorted = size, -1, False
        llama_cpp.llama_sampler_apply(self._chain, ctypes.byref(self._array))
        return int(self._candidates["id"][self._array.selected])

    def close(self) -> None:
        if self._chain is not None:
            llama_cpp.llama_sampler_free(self._chain)
            self._chain = None


class ArgmaxPicker(_Features):
    """Greedy without penalties: the first highest logit after the bias (stateless without a
    grammar)."""

    def __init__(self, logit_bias: dict[int, float], *, n_vocab: int, matcher=None,
                 top_logprobs: int | None = None):
        import numpy as np  # loaded with the first greedy request, not by every server

        self._init_features(np, n_vocab, matcher, top_logprobs, logit_bias)

    def pick(self, ctx, index: int) -> int:
        # A view of llama.cpp's row, biased in place (no copy of the whole row), then restored.
        row = self._row(ctx, index)
        if self._tokens.size:
            saved = row[self._tokens]  # a copy (fancy indexing): restored below
            row[self._tokens] += self._bias
        try:
            self._note_distribution(row)
            token = int(row.argmax())
            if self.matcher is not None:
                if not self._accepts(token):
                    self.rejections += 1
                    allowed = self._allowed()
                    masked = row.copy()
                    masked[~allowed] = -self._np.inf
                    token = int(masked.argmax())
                    if not allowed[token]:
                        token = self._unbiased_best(row, allowed, saved if self._tokens.size else None)
                self._consume(token)
            self._note_choice(token)
        finally:
            # The row is left as llama.cpp wrote it: the other choices of an n > 1 request pick
            # from the same row.
            if self._tokens.size:
                row[self._tokens] = saved
        return token

    def close(self) -> None:
        pass


def make_picker(s: Sampling, *, seed: int, n_vocab: int, prompt: list[int], matcher=None,
                top_logprobs: int | None = None):
    """The picker for `s`; the caller closes it when the request ends."""
    if s.greedy and not s.penalized:
        return ArgmaxPicker(s.logit_bias, n_vocab=n_vocab, matcher=matcher,
                            top_logprobs=top_logprobs)
    return ChainPicker(s, seed=seed, n_vocab=n_vocab, prompt=prompt, matcher=matcher,
                       top_logprobs=top_logprobs)


def seed32(seed: int) -> int:
    """Folds a 64-bit seed into llama.cpp's 32 bits, avoiding its 'pick a random seed' value."""
    folded = (seed ^ (seed >> 32)) & 0xFFFFFFFF
    return 0 if folded == llama_cpp.LLAMA_DEFAULT_SEED else folded
