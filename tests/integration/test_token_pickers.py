"""Greedy requests pick from llama.cpp's logits row directly (ArgmaxPicker); that must choose the
very token llama.cpp's own logit_bias + greedy chain would, bias and bans included."""

from __future__ import annotations

import pytest

from server.backends.llama_bindings import llama_cpp
from server.backends.llama_model import LlamaModel
from server.backends.llama_sampling import ArgmaxPicker, ChainPicker, make_picker
from server.config import embedded_model_path
from server.core.types import LoadParams, Sampling

PROMPT = "The capital of France is"
STEPS = 12


@pytest.fixture(scope="module")
def model():
    params = LoadParams(n_ctx=512, n_gpu_layers=0, main_gpu=0, n_threads=2, n_batch=64,
                        n_parallel=1, flash_attn=True, kv_unified=False, kv_park_mb=0,
                        use_mmap=True, use_mlock=False)
    loaded = LlamaModel(str(embedded_model_path()), params, n_seq_max=1)
    yield loaded
    loaded.close()


class Decoder:
    """Feeds tokens to sequence 0, one batch per call; the last token's logits are at 0 or n-1."""

    def __init__(self, model: LlamaModel):
        self.model = model
        self.pos = 0
        self.batch = llama_cpp.llama_batch_init(64, 0, 1)
        llama_cpp.llama_memory_seq_rm(model.memory, 0, -1, -1)

    def feed(self, tokens: list[int]) -> int:
        for i, token in enumerate(tokens):
            self.batch.token[i] = token
            self.batch.pos[i] = self.pos + i
            self.batch.n_seq_id[i] = 1
            self.batch.seq_id[i][0] = 0
            self.batch.logits[i] = i == len(tokens) - 1
        self.batch.n_tokens = len(tokens)
        assert llama_cpp.llama_decode(self.model.ctx, self.batch) == 0
        self.pos += len(tokens)
        return len(tokens) - 1

    def close(self) -> None:
        llama_cpp.llama_batch_free(self.batch)


def both_pickers_generate(model: LlamaModel, logit_bias: dict[int, float]) -> list[int]:
    """Generates greedily, asking both pickers at every step; fails on the first disagreement."""
    sampling = Sampling(temperature=0, logit_bias=logit_bias)
    prompt = model.tokenize(PROMPT, add_special=True, parse_special=True)
    chain = ChainPicker(sampling, seed=1, n_vocab=model.n_vocab, prompt=prompt)
    argmax = ArgmaxPicker(logit_bias, n_vocab=model.n_vocab)
    decoder = Decoder(model)
    picked = []
    try:
        index = decoder.feed(prompt)
        for step in range(STEPS):
            # The chain copies the row; the argmax picker changes it in place, so it goes second.
            expected = chain.pick(model.ctx, index)
            got = argmax.pick(model.ctx, index)
            assert got == expected, f"step {step}: argmax picked {got}, llama.cpp's chain {expected}"
            picked.append(got)
            index = decoder.feed([got])
    finally:
        chain.close()
        decoder.close()
    return picked


def test_without_bias_both_pick_the_same_tokens(model):
    assert len(both_pickers_generate(model, {})) == STEPS


def test_banned_tokens_are_never_picked_and_the_runner_up_matches(model):
    free = both_pickers_generate(model, {})
    banned = {token: -100.0 for token in set(free[:3])}
    constrained = both_pickers_generate(model, banned)
    assert not set(constrained) & banned.keys()


def test_a_positive_bias_moves_the_pick_the_same_way(model):
    free = both_pickers_generate(model, {})
    favourite = next(t for t in range(1000, model.n_vocab) if t not in free)
    biased = both_pickers_generate(model, {favourite: 40.0, free[0]: -3.5})
    assert favourite in biased


def test_bias_for_a_token_outside_the_vocabulary_is_ignored(model):
    assert both_pickers_generate(model, {model.n_vocab + 5: 50.0, -1: 50.0}) == \
        both_pickers_generate(model, {})


@pytest.mark.parametrize("sampling, kind", [
    (Sampling(temperature=0), ArgmaxPicker),
    (Sampling(temperature=0, logit_bias={5: -100.0}), ArgmaxPicker),
    (Sampling(temperature=0, repeat_penalty=1.3), ChainPicker),
    (Sampling(temperature=0.7), ChainPicker),
])
def test_only_greedy_requests_without_penalties_skip_llama_cpps_chain(model, sampling, kind):
    picker = make_picker(sampling, seed=3, n_vocab=model.n_vocab, prompt=[1, 2, 3])
    try:
        assert type(picker) is kind
    finally:
        picker.close()
