"""Two grammar engines for JSON-schema constrained decoding: llguidance against llama.cpp's own
GBNF sampler (fed by llama-cpp-python's JSON-schema converter), on the embedded model.

Coverage: for each of about 17 schemas, each exercising one JSON Schema feature, each engine
either refuses the schema (the first line of its error is shown, and whether it names the
keyword), crashes (llama.cpp can abort the process on a grammar), or compiles it. A compiled
schema gets two checks:
- a witness: an instance valid in every respect but the keyword under test, fed token by token;
  an engine that accepts it does not enforce the keyword (a silent gap), whatever it generates;
  a valid instance is fed too, to catch an engine that is stricter than the schema;
- a greedy generation (--max-tokens, a chat prompt asking for an example JSON object), checked
  with the jsonschema package (formats included); an invalid output from an engine that
  accepted the schema is a silent gap too.

Per-token cost: for three schemas (a simple object, nested objects with arrays, enum-heavy) each
engine generates greedily (--timing-tokens) and every logits row is kept; the engine's ways of
picking a token are then replayed over those rows, in turn, for --rounds rounds (so decoding is
not timed, and a replay must pick the tokens its generation picked; a way that picks
differently from the check way gets a generation of its own):
- llguidance sample-then-check: the argmax is validated, the full mask computed only when the
  grammar rejects it (what tokenwire's pickers do);
- llguidance full mask every step;
- llama.cpp full: the grammar sampler applied to the whole candidates array every step;
- llama.cpp check-then-full: applied to a one-candidate array first (what llama.cpp's common
  sampler does), to the whole array only when it rejects the argmax.
The figure is microseconds per token (the whole pick, and the part spent inside the engine's
calls), median over the rounds, beside a no-grammar argmax baseline. Compile time is the median
of three compiles from schema to a ready matcher or sampler.

All the work runs in a worker subprocess, so a llama.cpp abort costs one schema ("crashed") and a
fresh worker takes the rest. The tables are markdown on stdout (progress goes to stderr); the
figures also go to --out as JSON. About half a minute on 2 cores.

    .venv/bin/python bench/grammar_engines.py > grammar_engines.md
"""

from __future__ import annotations

import argparse
import ctypes
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness import (RESULTS_DIR, BenchError, machine_info, print_machine, run_main,
                     write_results)

PROMPT = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
          "Face<|im_end|>\n<|im_start|>user\nGive an example JSON object.<|im_end|>\n"
          "<|im_start|>assistant\n")
RESULT_MARK = "@@result "
COMPILES = 3


@dataclass
class Case:
    name: str
    keywords: list[str]
    schema: dict
    # Compact, properties in schema order: llguidance (whitespace_flexible off) allows no spaces
    # and the GBNF converter fixes the property order, so any other spelling would be refused
    # for its form, not for the keyword.
    valid: object
    invalid: object  # breaks only the keyword under test


def _obj(properties: dict, **extra) -> dict:
    return {"type": "object", "properties": properties, "required": list(properties),
            "additionalProperties": False, **extra}


_POINT = _obj({"x": {"type": "integer"}, "y": {"type": "integer"}})
CASES = [
    Case("$defs / $ref", ["$defs", "$ref"],
         {"$defs": {"point": _POINT},
          **_obj({"start": {"$ref": "#/$defs/point"}, "end": {"$ref": "#/$defs/point"}})},
         {"start": {"x": 1, "y": 2}, "end": {"x": 3, "y": 4}},
         {"start": {"x": 1, "y": "two"}, "end": {"x": 3, "y": 4}}),
    Case("enum", ["enum"], _obj({"color": {"enum": ["red", "green", "blue"]}}),
         {"color": "green"}, {"color": "purple"}),
    Case("const", ["const"], _obj({"version": {"const": 2}, "name": {"type": "string"}}),
         {"version": 2, "name": "a"}, {"version": 3, "name": "a"}),
    Case("required + additionalProperties:false", ["required", "additionalProperties"],
         _obj({"id": {"type": "integer"}, "name": {"type": "string"}}),
         {"id": 1, "name": "a"}, {"id": 1, "name": "a", "extra": True}),
    Case("array minItems / maxItems", ["minItems", "maxItems"],
         _obj({"tags": {"type": "array", "items": {"type": "string"}, "minItems": 2,
                        "maxItems": 3}}),
         {"tags": ["a", "b"]}, {"tags": ["a", "b", "c", "d"]}),
    Case("nested objects", ["properties", "required"],
         _obj({"user": _obj({"name": {"type": "string"},
                             "address": _obj({"city": {"type": "string"},
                                              "zip": {"type": "string"}})})}),
         {"user": {"name": "a", "address": {"city": "b", "zip": "1"}}},
         {"user": {"name": "a", "address": {"city": "b"}}}),
    Case("anyOf", ["anyOf"], _obj({"value": {"anyOf": [{"type": "integer"}, {"type": "boolean"}]}}),
         {"value": True}, {"value": "x"}),
    Case("oneOf (disjoint)", ["oneOf"],
         _obj({"shape": {"oneOf": [_obj({"kind": {"const": "circle"}, "r": {"type": "number"}}),
                                   _obj({"kind": {"const": "square"},
                                         "side": {"type": "number"}})]}}),
         {"shape": {"kind": "circle", "r": 1.5}}, {"shape": {"kind": "circle", "side": 2}}),
    # "abc" matches both alternatives, which oneOf forbids: an engine that treats oneOf as anyOf
    # accepts it.
    Case("oneOf (overlapping)", ["oneOf"],
         _obj({"code": {"oneOf": [{"type": "string", "maxLength": 5},
                                  {"type": "string", "pattern": "^[a-z]+$"}]}}),
         {"code": "ABC"}, {"code": "abc"}),
    Case("pattern", ["pattern"],
         _obj({"code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{3}$"}}),
         {"code": "ABC-123"}, {"code": "abc-123"}),
    Case("format: date-time", ["format", "date-time"],
         _obj({"when": {"type": "string", "format": "date-time"}}),
         {"when": "2024-05-01T12:30:00Z"}, {"when": "yesterday"}),
    Case("format: email", ["format", "email"],
         _obj({"email": {"type": "string", "format": "email"}}),
         {"email": "a@example.com"}, {"email": "not-an-email"}),
    Case("minLength / maxLength", ["minLength", "maxLength"],
         _obj({"name": {"type": "string", "minLength": 3, "maxLength": 8}}),
         {"name": "abcd"}, {"name": "abcdefghijkl"}),
    Case("minimum / maximum", ["minimum", "maximum"],
         _obj({"age": {"type": "integer", "minimum": 18, "maximum": 30}}),
         {"age": 25}, {"age": 99}),
    Case("not", ["not"], _obj({"name": {"type": "string", "not": {"const": "admin"}}}),
         {"name": "bob"}, {"name": "admin"}),
    Case("if / then / else", ["if", "then", "else"],
         _obj({"country": {"enum": ["US", "CA"]}, "postal": {"type": "string"}},
              **{"if": {"properties": {"country": {"const": "US"}}},
                 "then": {"properties": {"postal": {"pattern": "^[0-9]{5}$"}}},
                 "else": {"properties": {"postal": {
                     "pattern": "^[A-Z][0-9][A-Z] [0-9][A-Z][0-9]$"}}}}),
         {"country": "US", "postal": "12345"}, {"country": "US", "postal": "K1A 0B1"}),
    Case("uniqueItems", ["uniqueItems"],
         _obj({"ids": {"type": "array", "items": {"type": "integer"}, "uniqueItems": True,
                       "minItems": 2, "maxItems": 4}}),
         {"ids": [1, 2]}, {"ids": [1, 1]}),
]

_STATUSES = ["open", "triaged", "assigned", "in_progress", "blocked", "review", "testing",
             "staged", "deployed", "verified", "closed", "reopened", "duplicate", "wontfix",
             "invalid", "deferred", "escalated", "pending", "archived", "cancelled"]
_REGIONS = ["us-east", "us-west", "eu-north", "eu-west", "eu-central", "ap-south", "ap-east",
            "ap-northeast", "sa-east", "af-south", "me-central", "ca-central"]
TIMING_SCHEMAS = {
    "simple object": _obj({"name": {"type": "string"}, "age": {"type": "integer"},
                           "active": {"type": "boolean"}}),
    "nested with arrays": _obj({"orders": {
        "type": "array", "minItems": 2, "maxItems": 4,
        "items": _obj({"id": {"type": "integer"},
                       "customer": _obj({"name": {"type": "string"},
                                         "tags": {"type": "array", "items": {"type": "string"},
                                                  "maxItems": 3}}),
                       "lines": {"type": "array", "minItems": 1, "maxItems": 3,
                                 "items": _obj({"sku": {"type": "string"},
                                                "qty": {"type": "integer"}})}})}}),
    "enum-heavy": _obj({"events": {
        "type": "array", "minItems": 4, "maxItems": 8,
        "items": _obj({"status": {"enum": _STATUSES},
                       "priority": {"enum": ["low", "medium", "high", "critical"]},
                       "region": {"enum": _REGIONS},
                       "kind": {"enum": ["bug", "feature", "task", "incident", "question"]}})}}),
}

LLG, CPP = "llguidance", "llama.cpp"
# (key, engine, title) of the replayed ways of picking a token.
MODES = [("none", "-", "no grammar (argmax only)"),
         ("llg_check", LLG, "llguidance sample-then-check"),
         ("llg_full", LLG, "llguidance full mask every step"),
         ("cpp_full", CPP, "llama.cpp full candidates every step"),
         ("cpp_check", CPP, "llama.cpp check-then-full")]


def compact(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def first_line(text: str, limit: int = 110) -> str:
    line = next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[:limit - 3] + "..."


# -- the worker: the model, both engines, the measurements --------------------------------------

class Worker:
    def __init__(self, threads: int) -> None:
        import numpy as np

        from server.backends.llama_bindings import llama_cpp
        from server.backends.llama_model import LlamaModel
        from server.config import embedded_model_path
        from server.core.types import LoadParams

        self.np, self.cpp = np, llama_cpp
        self.grammar_module = importlib.import_module("llama_cpp.llama_grammar")
        params = LoadParams(n_ctx=1024, n_gpu_layers=0, main_gpu=0, n_threads=threads,
                            n_batch=128, n_parallel=1, flash_attn=True, kv_unified=False,
                            kv_park_mb=0, use_mmap=True, use_mlock=False)
        self.model = LlamaModel(str(embedded_model_path()), params, n_seq_max=1)
        self.n_vocab = self.model.n_vocab
        # As GrammarCompiler builds it: every end-of-generation token may end the language.
        from llguidance.llamacpp import lltokenizer_from_vocab

        self.eog = [t for t in range(self.n_vocab) if self.model.is_end_of_generation(t)]
        self.tokenizer = lltokenizer_from_vocab(self.model.vocab, eos_token=self.eog)
        self.prompt = self.model.tokenize(PROMPT, add_special=False, parse_special=True)
        self.batch = llama_cpp.llama_batch_init(len(self.prompt), 0, 1)
        self._decode(list(enumerate(self.prompt)))
        dtype = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])
        self.ids = np.arange(self.n_vocab, dtype=np.int32)
        self.cand = np.zeros(self.n_vocab, dtype=dtype)
        self.cand_array = llama_cpp.llama_token_data_array(
            data=self.cand.ctypes.data_as(ctypes.POINTER(llama_cpp.llama_token_data)),
            size=self.n_vocab, selected=-1, sorted=False)
        self.one = (llama_cpp.llama_token_data * 1)()
        self.one_array = llama_cpp.llama_token_data_array(data=self.one, size=1, selected=-1,
                                                          sorted=False)

    def _decode(self, rows: list[tuple[int, int]]) -> None:
        """Decodes (position, token) rows of sequence 0; the last row gets logits (index 0 when
        one row)."""
        batch = self.batch
        for n, (pos, token) in enumerate(rows):
            batch.token[n], batch.pos[n], batch.n_seq_id[n] = token, pos, 1
            batch.seq_id[n][0] = 0
            batch.logits[n] = n == len(rows) - 1
        batch.n_tokens = len(rows)
        if self.cpp.llama_decode(self.model.ctx, batch) != 0:
            raise BenchError(f"llama_decode failed on a batch of {len(rows)}")

    def _row(self):
        pointer = self.cpp.llama_get_logits_ith(self.model.ctx, -1)
        return self.np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))

    # -- compiling ---------------------------------------------------------------------------

    def llg_compile(self, schema: dict) -> dict:
        from llguidance import LLMatcher

        from server.backends.llama_grammar import grammar_text
        from server.core.types import Constraint, ConstraintKind
        from server.errors import InvalidArgument

        constraint = Constraint(ConstraintKind.JSON_SCHEMA, json.dumps(schema), "schema")
        try:
            grammar = grammar_text(constraint)
        except InvalidArgument as exc:
            return {"status": "refuses", "message": str(exc)}
        is_error, messages = LLMatcher.validate_grammar_with_warnings(grammar, self.tokenizer)
        if is_error:
            return {"status": "refuses", "message": messages[0] if messages else "?"}
        times = []
        for _ in range(COMPILES):
            # Schema to ready matcher, as GrammarCompiler does it on a cache miss.
            started = time.perf_counter()
            matcher = LLMatcher(self.tokenizer, grammar_text(constraint), log_level=0)
            times.append(time.perf_counter() - started)
        if matcher.is_error():
            return {"status": "refuses", "message": matcher.get_error()}
        fresh = matcher.deep_copy()
        started = time.perf_counter()
        fresh.compute_bitmask()
        first_mask = time.perf_counter() - started
        self._llg = matcher
        return {"status": "compiles", "warnings": messages,
                "compile_ms": statistics.median(times) * 1e3, "first_mask_ms": first_mask * 1e3}

    def _cpp_sampler(self, gbnf: bytes):
        # llama.cpp's grammar parser writes why it refuses a grammar to the stderr descriptor
        # (fprintf) and returns NULL: catch that text for the report.
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as caught:
            os.dup2(caught.fileno(), 2)
            try:
                sampler = self.cpp.llama_sampler_init_grammar(self.model.vocab, gbnf, b"root")
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
            caught.seek(0)
            log = caught.read().decode("utf-8", "replace")
        return sampler, log

    def cpp_compile(self, schema: dict) -> dict:
        times = []
        for _ in range(COMPILES):
            started = time.perf_counter()
            try:
                gbnf = self.grammar_module.json_schema_to_gbnf(json.dumps(schema))
            except Exception as exc:  # the converter asserts or raises on what it cannot read
                return {"status": "refuses",
                        "message": f"json_schema_to_gbnf: {type(exc).__name__}: {exc}"}
            sampler, log = self._cpp_sampler(gbnf.encode())
            times.append(time.perf_counter() - started)
            if not sampler:
                return {"status": "refuses",
                        "message": f"llama_sampler_init_grammar returned NULL: {log.strip()}"}
            self.cpp.llama_sampler_free(sampler)
        self._gbnf = gbnf.encode()
        sampler, _ = self._cpp_sampler(self._gbnf)
        started = time.perf_counter()
        self._cpp_apply_full(sampler, self._row())
        first_mask = time.perf_counter() - started
        self.cpp.llama_sampler_free(sampler)
        return {"status": "compiles", "compile_ms": statistics.median(times) * 1e3,
                "first_mask_ms": first_mask * 1e3, "gbnf_lines": gbnf.count("\n")}

    # -- one step of each way of picking -------------------------------------------------------

    def _cpp_apply_full(self, sampler, row) -> tuple[int, float]:
        """The grammar over every candidate (the array llama.cpp's sampler chain works on); the
        best allowed token (-1 when the grammar allows none) and the seconds inside llama.cpp."""
        c = self.cand
        c["id"] = self.ids
        c["logit"] = row
        c["p"] = 0.0
        array = self.cand_array
        array.size, array.selected, array.sorted = self.n_vocab, -1, False
        started = time.perf_counter()
        self.cpp.llama_sampler_apply(sampler, ctypes.byref(self.cand_array))
        spent = time.perf_counter() - started
        best = int(c["logit"].argmax())
        return (int(c["id"][best]) if c["logit"][best] != -self.np.inf else -1), spent

    def _cpp_allows(self, sampler, token: int, logit: float) -> bool:
        self.one[0].id, self.one[0].logit, self.one[0].p = token, logit, 0.0
        self.one_array.size, self.one_array.selected, self.one_array.sorted = 1, -1, False
        self.cpp.llama_sampler_apply(sampler, ctypes.byref(self.one_array))
        return self.one[0].logit != -self.np.inf

    def picker(self, mode: str):
        if mode == "none":
            return ArgmaxOnly()
        if mode.startswith("llg"):
            return LlgPicker(self, self._llg.deep_copy(), full_always=mode == "llg_full")
        return CppPicker(self, full_always=mode == "cpp_full")

    # -- generating, checking, timing ------------------------------------------------------------

    def generate(self, mode: str, max_tokens: int, keep_rows: bool = False):
        """Greedy decoding under one way of picking; the tokens (an end-of-generation token last
        if the model picked one), how it ended, and each step's logits row if kept."""
        self.cpp.llama_memory_seq_rm(self.model.memory, 0, len(self.prompt) - 1, -1)
        self._decode([(len(self.prompt) - 1, self.prompt[-1])])
        picker = self.picker(mode)
        tokens, rows, ended = [], [], "length"
        try:
            for i in range(max_tokens):
                row = self._row()
                if keep_rows:
                    rows.append(row.copy())
                token = picker.step(row)[0]
                if token < 0:
                    ended = "dead end"
                    break
                tokens.append(token)
                # llguidance says when only an end-of-generation token may follow; the server
                # stops there, so this does too.
                if self.model.is_end_of_generation(token) or picker.done():
                    ended = "stop"
                    break
                self._decode([(len(self.prompt) + i, token)])
        finally:
            picker.close()
        return tokens, ended, rows

    def text(self, tokens: list[int]) -> str:
        return b"".join(self.model.piece(t) for t in tokens
                        if not self.model.is_end_of_generation(t)).decode("utf-8", "replace")

    def accepts(self, engine: str, instance) -> bool:
        """Whether the engine's grammar takes `instance` (compact JSON) whole and may end there."""
        tokens = self.model.tokenize(compact(instance), add_special=False, parse_special=False)
        if engine == LLG:
            matcher = self._llg.deep_copy()
            return matcher.consume_tokens(tokens) and matcher.is_accepting()
        sampler, _ = self._cpp_sampler(self._gbnf)
        try:
            for token in tokens:
                if not self._cpp_allows(sampler, token, 0.0):
                    return False
                self.cpp.llama_sampler_accept(sampler, token)
            return self._cpp_allows(sampler, self.model.eos, 0.0)
        finally:
            self.cpp.llama_sampler_free(sampler)

    def compile(self, engine: str, schema: dict) -> dict:
        return (self.llg_compile if engine == LLG else self.cpp_compile)(schema)

    def coverage(self, engine: str, case: dict, max_tokens: int) -> dict:
        import jsonschema

        result = self.compile(engine, case["schema"])
        if result["status"] != "compiles":
            return result
        result["valid_accepted"] = self.accepts(engine, case["valid"])
        result["invalid_accepted"] = self.accepts(engine, case["invalid"])
        tokens, ended, _ = self.generate("llg_check" if engine == LLG else "cpp_check", max_tokens)
        text = self.text(tokens)
        result.update(output=text, ended=ended, output_tokens=len(tokens))
        try:
            value = json.loads(text)
        except ValueError:
            result["output_check"] = "incomplete" if ended == "length" else "not JSON"
            return result
        validator = jsonschema.Draft202012Validator(
            case["schema"], format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        error = jsonschema.exceptions.best_match(validator.iter_errors(value))
        result["output_check"] = "valid" if error is None else "INVALID"
        if error is not None:
            result["output_error"] = first_line(error.message)
        return result

    def replay(self, mode: str, rows) -> tuple[list[int], float, float, int]:
        """One pass of `mode` over kept rows: the tokens, seconds in all, seconds inside the
        engine's calls, full masks."""
        picker = self.picker(mode)
        picked, engine_s, fulls = [], 0.0, 0
        try:
            started = time.perf_counter()
            for row in rows:
                token, spent, full = picker.step(row)
                picked.append(token)
                engine_s += spent
                fulls += full
                if token < 0:
                    break
            total = time.perf_counter() - started
        finally:
            picker.close()
        return picked, total, engine_s, fulls

    def timing(self, engine: str, schema: dict, max_tokens: int, rounds: int) -> dict:
        """The check way generates; the full way is replayed over the same rows and generates
        its own only where it picks differently (llguidance's mask can leave out a token that
        validate_tokens takes: a non-canonical split of bytes the grammar forces). The rounds
        take the ways in turn, each beside an argmax-only pass over its rows, so that a shared
        machine's load changes hit them all alike."""
        result = self.compile(engine, schema)
        if result["status"] != "compiles":
            return result
        check, full = ("llg_check", "llg_full") if engine == LLG else ("cpp_check", "cpp_full")
        tokens, ended, rows = self.generate(check, max_tokens, keep_rows=True)
        runs = {check: (tokens, ended, rows[:len(tokens)])}  # a dead end's last row picked nothing
        if self.replay(full, runs[check][2])[0] == tokens:
            runs[full] = runs[check]
        else:
            tokens, ended, rows = self.generate(full, max_tokens, keep_rows=True)
            runs[full] = (tokens, ended, rows[:len(tokens)])
        figures = {key: {"tokens": len(t), "ended": e, "output": self.text(t), "token_ids": t,
                         "totals": [], "engines": [], "argmax": []}
                   for key, (t, e, _) in runs.items()}
        for _ in range(rounds):
            for key, (tokens, _, rows) in runs.items():
                f = figures[key]
                picked, total, engine_s, f["full_masks"] = self.replay(key, rows)
                if picked != tokens:
                    raise BenchError(f"{engine} {key}: the replay picked other tokens than the "
                                     f"generation")
                f["totals"].append(total / len(rows) * 1e6)
                f["engines"].append(engine_s / len(rows) * 1e6)
                f["argmax"].append(self.replay("none", rows)[1] / len(rows) * 1e6)
        for f in figures.values():
            f.update(us_per_token=statistics.median(f.pop("totals")),
                     engine_us_per_token=statistics.median(f.pop("engines")),
                     argmax_us_per_token=statistics.median(f.pop("argmax")))
        result["modes"] = figures
        return result


class ArgmaxOnly:
    def step(self, row):
        return int(row.argmax()), 0.0, False

    def done(self) -> bool:
        return False

    def close(self) -> None:
        pass


class LlgPicker:
    """llguidance as tokenwire's pickers use it (see server/backends/llama_sampling.py)."""

    def __init__(self, worker: Worker, matcher, *, full_always: bool):
        self.w, self.matcher, self.full_always = worker, matcher, full_always

    def step(self, row):
        np, clock, matcher = self.w.np, time.perf_counter, self.matcher
        token = int(row.argmax())
        t0 = clock()
        full = self.full_always or matcher.validate_tokens([token]) != 1
        engine = clock() - t0
        if full:
            t0 = clock()
            bitmask = matcher.compute_bitmask()
            engine += clock() - t0
            allowed = np.unpackbits(np.frombuffer(bitmask, dtype=np.uint8),
                                    bitorder="little")[:self.w.n_vocab].astype(bool)
            masked = row.copy()
            masked[~allowed] = -np.inf
            token = int(masked.argmax())
            if masked[token] == -np.inf:
                return -1, engine, full
        t0 = clock()
        if not matcher.consume_token(token):
            raise BenchError(f"llguidance refused token {token} it allowed: {matcher.get_error()}")
        return token, engine + clock() - t0, full

    def done(self) -> bool:
        return self.matcher.is_stopped()

    def close(self) -> None:
        pass


class CppPicker:
    """llama.cpp's grammar sampler, as its common sampler uses it (check-then-full) or over the
    whole candidates array every step."""

    def __init__(self, worker: Worker, *, full_always: bool):
        self.w, self.full_always = worker, full_always
        self.sampler, _ = worker._cpp_sampler(worker._gbnf)

    def step(self, row):
        w, clock = self.w, time.perf_counter
        token, engine, full = int(row.argmax()), 0.0, self.full_always
        if not full:
            t0 = clock()
            full = not w._cpp_allows(self.sampler, token, float(row[token]))
            engine += clock() - t0
        if full:
            token, spent = w._cpp_apply_full(self.sampler, row)
            engine += spent
            if token < 0:
                return -1, engine, full
        # Only tokens the grammar allowed reach here: llama.cpp aborts on accepting another.
        t0 = clock()
        w.cpp.llama_sampler_accept(self.sampler, token)
        return token, engine + clock() - t0, full

    def done(self) -> bool:
        return False

    def close(self) -> None:
        if self.sampler:
            self.w.cpp.llama_sampler_free(self.sampler)
            self.sampler = None


def worker_main(threads: int) -> int:
    """Answers one JSON job a line on stdin with one RESULT_MARK line on stdout."""
    worker = Worker(threads)
    print(RESULT_MARK + json.dumps({"ready": True, "n_vocab": worker.n_vocab,
                                    "prompt_tokens": len(worker.prompt)}), flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        try:
            if job["kind"] == "coverage":
                result = worker.coverage(job["engine"], job["case"], job["max_tokens"])
            else:
                result = worker.timing(job["engine"], job["schema"], job["max_tokens"],
                                       job["rounds"])
        except BenchError as exc:
            result = {"status": "error", "message": str(exc)}
        print(RESULT_MARK + json.dumps(result), flush=True)
    return 0


# -- the parent: jobs, crashes, tables -----------------------------------------------------------

class WorkerProcess:
    """The worker subprocess; a job it dies on (a llama.cpp abort) comes back as "crashed" with
    the last line it wrote on stderr, and the next job starts a fresh worker."""

    def __init__(self, threads: int, timeout_s: float) -> None:
        self.threads, self.timeout_s = threads, timeout_s
        self.proc: subprocess.Popen | None = None
        self.log = tempfile.TemporaryFile(mode="w+b")
        self.buffer = b""
        self.starts = 0

    def _start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", "--threads", str(self.threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, bufsize=0)
        self.buffer, self.starts = b"", self.starts + 1
        ready = self._read(self.timeout_s)
        if not isinstance(ready, dict) or not ready.get("ready"):
            raise BenchError(f"the worker did not start: {self._stderr_since(0)}")
        self.info = ready

    def _read(self, timeout_s: float) -> dict | str:
        """The next result, or "eof" (the worker died) or "timeout"."""
        import select

        deadline = time.monotonic() + timeout_s
        fd = self.proc.stdout.fileno()
        while True:
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                text = line.decode("utf-8", "replace")
                if text.startswith(RESULT_MARK):
                    return json.loads(text[len(RESULT_MARK):])
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                return "timeout"
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return "eof"
            self.buffer += chunk

    def _stderr_since(self, position: int) -> str:
        self.log.seek(position)
        lines = [ln.strip() for ln in self.log.read().decode("utf-8", "replace").splitlines()
                 if ln.strip()]
        self.log.seek(0, os.SEEK_END)
        # An abort writes its reason first and a backtrace after it.
        telling = [ln for ln in lines
                   if any(w in ln.lower() for w in ("error", "assert", "abort", "terminate"))]
        return (telling or lines or ["(nothing on stderr)"])[0]

    def run(self, job: dict) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        self.log.seek(0, os.SEEK_END)
        position = self.log.tell()
        self.proc.stdin.write((json.dumps(job) + "\n").encode())
        self.proc.stdin.flush()
        result = self._read(self.timeout_s)
        if isinstance(result, dict):
            return result
        if result == "timeout":
            self.proc.kill()
        self.proc.wait()
        return {"status": "crashed",
                "message": (f"no answer in {self.timeout_s:.0f}s" if result == "timeout" else
                            f"exit {self.proc.returncode}: {self._stderr_since(position)}")}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", "\\n")


def table(headers: list[str], rows: list[list]) -> None:
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---" for _ in headers) + "|")
    for row in rows:
        print("| " + " | ".join(cell(v) for v in row) + " |")
    print()


def names_keyword(message: str, keywords: list[str]) -> str:
    found = [k for k in keywords if k.lower() in message.lower()]
    return f"yes ({', '.join(found)})" if found else "no"


def verdict(r: dict) -> str:
    if r["status"] != "compiles":
        return {"refuses": "refuses (error)", "crashed": "CRASHED"}.get(r["status"], r["status"])
    gaps = []
    if r["invalid_accepted"]:
        gaps.append("accepts the invalid witness")
    if r["output_check"] == "INVALID":
        gaps.append("greedy output invalid")
    notes = [] if r["valid_accepted"] else ["rejects the valid witness"]
    if r["output_check"] in ("incomplete", "not JSON"):
        notes.append(f"output {r['output_check']}")
    text = ("**SILENT GAP**: " + ", ".join(gaps)) if gaps else "enforces"
    return text + (f" ({'; '.join(notes)})" if notes else "")


def report(coverage: dict, timing: dict, args, info: dict) -> None:
    engines = (LLG, CPP)
    print(f"## Schema coverage ({len(CASES)} schemas; greedy output of at most {args.max_tokens} "
          f"tokens, checked with jsonschema)\n")
    table(["schema", "keywords", LLG, CPP],
          [[c.name, ", ".join(c.keywords), *(verdict(coverage[c.name][e]) for e in engines)]
           for c in CASES])
    counts = {e: {} for e in engines}
    for c in CASES:
        for e in engines:
            v = verdict(coverage[c.name][e]).split(" ")[0].strip("*:")
            counts[e][v] = counts[e].get(v, 0) + 1
    table(["engine", "enforces", "refuses", "silent gap", "crashed"],
          [[e, counts[e].get("enforces", 0), counts[e].get("refuses", 0),
            counts[e].get("SILENT", 0), counts[e].get("CRASHED", 0)] for e in engines])

    print("## Refusals and crashes: the first line of the error\n")
    rows = [[c.name, e, first_line(coverage[c.name][e].get("message", "")),
             names_keyword(coverage[c.name][e].get("message", ""), c.keywords)]
            for c in CASES for e in engines if coverage[c.name][e]["status"] != "compiles"]
    table(["schema", "engine", "error (first line)", "names the keyword?"], rows or [["-"] * 4])

    print("## Compiled schemas: witnesses, greedy output, compile time\n")
    rows = []
    for c in CASES:
        for e in engines:
            r = coverage[c.name][e]
            if r["status"] != "compiles":
                continue
            check = r["output_check"] + (f": {r['output_error']}" if "output_error" in r else "")
            rows.append([c.name, e, f"{r['compile_ms']:.2f}",
                         "accepted" if r["valid_accepted"] else "REJECTED",
                         "ACCEPTED" if r["invalid_accepted"] else "rejected",
                         f"{r['output_tokens']} ({r['ended']})", check,
                         first_line(r["output"], 70)])
    table(["schema", "engine", "compile ms", "valid witness", "invalid witness",
           "output tokens (end)", "output check", "output (start)"], rows)

    print(f"## Per-token cost of picking under the grammar (greedy; microseconds per token, "
          f"median of {args.rounds} replays of the generation's logits rows; "
          f"{info['n_vocab']}-token vocabulary)\n")
    rows = []
    for name in TIMING_SCHEMAS:
        for e in engines:
            r = timing[name][e]
            if r["status"] != "compiles":
                rows.append([name, e, r["status"], first_line(r.get("message", "")),
                             *[""] * 5])
                continue
            check = r["modes"]["llg_check" if e == LLG else "cpp_check"]
            for key, owner, title in MODES:
                if owner != e:
                    continue
                m = r["modes"][key]
                rows.append([name, title, f"{m['tokens']} ({m['ended']})",
                             "yes" if m["token_ids"] == check["token_ids"] else "NO",
                             f"{m['full_masks']} / {m['tokens']}", f"{m['us_per_token']:.1f}",
                             f"{m['engine_us_per_token']:.1f}", f"{m['argmax_us_per_token']:.1f}",
                             f"{m['us_per_token'] - m['argmax_us_per_token']:.1f}"])
    table(["schema", "way", "tokens (end)", "same tokens as check way", "full masks",
           "us / token", "in engine calls", "argmax alone", "grammar's cost"], rows)
    print("us / token: the whole pick (argmax, check, mask, masked argmax, advance); in engine "
          "calls: the part inside llguidance's or llama.cpp's own calls; argmax alone: a "
          "no-grammar argmax over the same rows; grammar's cost = us / token - argmax alone.\n")

    print("## Compile time (schema to ready matcher / sampler; median of "
          f"{COMPILES}) and the first full mask\n")
    rows = []
    for name in TIMING_SCHEMAS:
        for e in engines:
            r = timing[name][e]
            if r["status"] == "compiles":
                rows.append([name, e, f"{r['compile_ms']:.2f}", f"{r['first_mask_ms']:.2f}"])
            else:
                rows.append([name, e, r["status"], "-"])
    table(["schema", "engine", "compile ms", "first full mask ms"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-tokens", type=int, default=120, help="per coverage generation")
    parser.add_argument("--timing-tokens", type=int, default=120, help="per timed generation")
    parser.add_argument("--rounds", type=int, default=5, help="replays per timed way")
    # One decode thread by default: on a small shared machine two ggml threads that spin-wait
    # on each other slow to a crawl whenever another process takes a core, and only the
    # replays (single-threaded) are timed anyway.
    parser.add_argument("--threads", type=int, default=1, help="decode threads")
    parser.add_argument("--job-timeout", type=float, default=300,
                        help="seconds one worker job may take")
    parser.add_argument("--out", default=str(RESULTS_DIR / "grammar_engines.json"))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(args.threads)
    if args.max_tokens < 1 or args.timing_tokens < 1 or args.rounds < 1 or args.threads < 1:
        parser.error("--max-tokens, --timing-tokens, --rounds and --threads must be >= 1")

    import llguidance

    machine = machine_info()
    print(f"# Grammar engines: llguidance {llguidance.__version__} against llama.cpp's grammar "
          f"sampler (llama-cpp-python {_version('llama_cpp_python')})\n")
    print_machine(machine)
    load_before = os.getloadavg()
    worker = WorkerProcess(args.threads, args.job_timeout)
    started = time.perf_counter()
    coverage: dict[str, dict] = {}
    timing: dict[str, dict] = {}
    try:
        for case in CASES:
            coverage[case.name] = {}
            for engine in (LLG, CPP):
                job = {"kind": "coverage", "engine": engine, "max_tokens": args.max_tokens,
                       "case": {"schema": case.schema, "valid": case.valid,
                                "invalid": case.invalid}}
                result = coverage[case.name][engine] = worker.run(job)
                if result["status"] == "error":
                    raise BenchError(f"{case.name}, {engine}: {result['message']}")
                print(f"  coverage  {case.name:<40} {engine:<11} {verdict(result)}",
                      file=sys.stderr, flush=True)
        for name, schema in TIMING_SCHEMAS.items():
            timing[name] = {}
            for engine in (LLG, CPP):
                job = {"kind": "timing", "engine": engine, "schema": schema,
                       "max_tokens": args.timing_tokens, "rounds": args.rounds}
                result = timing[name][engine] = worker.run(job)
                if result["status"] == "error":
                    raise BenchError(f"{name}, {engine}: {result['message']}")
                print(f"  timing    {name:<40} {engine:<11} {result['status']}",
                      file=sys.stderr, flush=True)
    finally:
        worker.stop()
    print(f"  load average (1 min) before / after: {load_before[0]:.2f} / "
          f"{os.getloadavg()[0]:.2f}; decode threads {args.threads}\n")
    report(coverage, timing, args, worker.info)
    print(f"Worker starts: {worker.starts} (one more per crash); "
          f"{time.perf_counter() - started:.0f} s in all.")
    write_results(Path(args.out), machine=machine, args=vars(args), coverage=coverage,
                  timing=timing)
    return 0


def _version(distribution: str) -> str:
    from importlib.metadata import version

    return version(distribution)


if __name__ == "__main__":
    run_main(main)
