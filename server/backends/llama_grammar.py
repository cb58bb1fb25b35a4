"""Constrained decoding for the llama.cpp backend, with llguidance.

llguidance (the grammar engine llama.cpp and vLLM can use) compiles a JSON schema, a Lark or GBNF
grammar or a regex against the model's vocabulary and computes, per step, the set of tokens that
keep the output inside the language. It refuses a schema keyword it cannot enforce with an error
that names it (`Unimplemented keys: ["not"]`), which is what a caller needs to hear instead of
unconstrained output, and its mask costs about 5 us per step for this vocabulary on a 2-core
machine. `bench/grammar_engines.py` compares it with llama.cpp's own GBNF sampler (fed by
llama-cpp-python's JSON-schema converter) on schema coverage and per-token cost.

Pickers use it sample-then-check, as llama.cpp's own sampler does: the token picked without the
grammar is checked (cheap); only when the grammar rejects it is the full mask computed, applied to
the logits, and the token picked again.

A matcher is compiled once per constraint text (its hash is the cache key) and deep-copied for
each request, so concurrent requests never share parser state.
"""

from __future__ import annotations

import collections
import ctypes
import hashlib
import json
import threading

from server.core.types import Constraint, ConstraintKind
from server.errors import InvalidArgument

#: Compiled matchers kept per engine.
CACHE_SIZE = 64

# Compact JSON: one spelling per value, so the output is what a strict parser expects and the
# tool-call parser can find its fields by their exact text.
_JSON_OPTIONS = {"whitespace_flexible": False}


def _llguidance():
    import llguidance  # loaded with the first constrained request, not by every server

    return llguidance


def grammar_text(constraint: Constraint) -> str:
    """llguidance's grammar for a constraint; InvalidArgument (naming the field) when the source
    is not valid JSON or not a grammar llguidance can read."""
    llg = _llguidance()
    kind, source = constraint.kind, constraint.source
    try:
        if kind is ConstraintKind.JSON_OBJECT:
            return llg.LLMatcher.grammar_from_json_schema({"type": "object"}, defaults=_JSON_OPTIONS)
        if kind is ConstraintKind.JSON_SCHEMA:
            try:
                schema = json.loads(source)
            except ValueError as exc:
                raise InvalidArgument.single(constraint.field, f"is not valid JSON: {exc}") from None
            if not isinstance(schema, (dict, bool)):
                raise InvalidArgument.single(constraint.field, "must be a JSON object (a schema)")
            return llg.LLMatcher.grammar_from_json_schema(schema, defaults=_JSON_OPTIONS)
        if kind is ConstraintKind.GBNF:
            from llguidance.gbnf_to_lark import any_to_lark

            return llg.LLMatcher.grammar_from_lark(any_to_lark(source))
        if kind is ConstraintKind.LARK:
            return llg.LLMatcher.grammar_from_lark(source)
        return llg.LLMatcher.grammar_from_regex(source)
    except InvalidArgument:
        raise
    except Exception as exc:  # llguidance reports bad grammars as ValueError or its own errors
        raise InvalidArgument.single(constraint.field, f"cannot be enforced: {exc}") from None


def _llguidance_tokenizer(model):
    """llguidance's view of the vocabulary: every token's bytes, control tokens marked with a
    leading 0xFF (how llguidance tells special tokens from text), and llama.cpp's own tokenize
    function for the text grammars need tokenized. (llguidance.llamacpp does the same through an
    attribute call llama-cpp-python deprecates, with a warning per token.)"""
    llg = _llguidance()
    from server.backends.llama_bindings import llama_cpp

    control = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL
    user_defined = llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
    tokens = []
    for token in range(model.n_vocab):
        piece = model.token_text_bytes(token)
        attr = llama_cpp.llama_vocab_get_attr(model.vocab, token)
        if attr & control or (attr & user_defined and piece.startswith(b"<")
                              and piece.endswith(b">")):
            piece = b"\xff" + piece
        tokens.append(piece)
    eog = [t for t in range(model.n_vocab) if model.is_end_of_generation(t)] or [model.eos]
    tokenize = ctypes.cast(llama_cpp._lib.llama_tokenize, ctypes.c_void_p).value
    return llg.LLTokenizer.from_llamacpp(tokens=tokens, vocab_ptr=model.vocab,
                                         tokenize_fptr=tokenize, eos_token=eog)


class GrammarCompiler:
    """Compiles constraints for one model's vocabulary; thread-safe."""

    def __init__(self, model):
        self._model = model
        self._tokenizer = None
        self._lock = threading.Lock()
        self._cache: collections.OrderedDict[str, object] = collections.OrderedDict()

    def _vocabulary(self):
        # Built once per model (about a second for a 49k vocabulary): every end-of-generation
        # token ends the language, so a finished grammar lets the model stop its own way.
        if self._tokenizer is None:
            self._tokenizer = _llguidance_tokenizer(self._model)
        return self._tokenizer

    def matcher(self, constraint: Constraint):
        """A fresh matcher for `constraint` (compiled on first use, then copied)."""
        # Keyed by the request's own text: a repeated schema skips its conversion too.
        key = hashlib.sha256(f"{constraint.kind.value}\0{constraint.source}".encode()).hexdigest()
        with self._lock:
            compiled = self._cache.get(key)
            if compiled is not None:
                self._cache.move_to_end(key)
                return compiled.deep_copy()
            tokenizer = self._vocabulary()
        grammar = grammar_text(constraint)
        llg = _llguidance()
        compiled = llg.LLMatcher(tokenizer, grammar, log_level=0)
        if compiled.is_error():
            raise InvalidArgument.single(constraint.field,
                                         f"cannot be enforced: {compiled.get_error()}")
        with self._lock:
            self._cache[key] = compiled
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return compiled.deep_copy()

    def cached(self) -> int:
        return len(self._cache)
