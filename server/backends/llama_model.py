"""A llama.cpp model and its decoding context, on the low-level API.

llama-cpp-python's `Llama` class creates its context with one sequence; continuous batching needs
`n_seq_max` sequences, each with its own KV stream (or one unified cache), so the model and context
are created here directly. Tokenization only reads the
vocabulary and is safe from any thread; everything that touches the context belongs to the
scheduler's thread.
"""

from __future__ import annotations

import ctypes
import threading

from server.backends.llama_bindings import llama_cpp, llama_logger

from server.core.types import LoadParams
from server.errors import EngineFailure

#: KV cache element types (LoadParams.cache_type_k/_v) -> ggml type ids.
_GGML_TYPES = {"f16": llama_cpp.GGML_TYPE_F16, "q8_0": llama_cpp.GGML_TYPE_Q8_0,
               "q4_0": llama_cpp.GGML_TYPE_Q4_0}

_backend_ready = threading.Lock()
_backend_initialized = False


def _init_backend() -> None:
    global _backend_initialized
    with _backend_ready:
        if not _backend_initialized:
            llama_logger.set_verbose(False)  # llama.cpp's own stderr chatter: errors only
            llama_cpp.llama_backend_init()
            _backend_initialized = True


class LlamaModel:
    def __init__(self, path: str, params: LoadParams, *, n_seq_max: int):
        _init_backend()
        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = params.n_gpu_layers
        mparams.main_gpu = params.main_gpu
        mparams.use_mmap = params.use_mmap
        mparams.use_mlock = params.use_mlock
        self.model = llama_cpp.llama_model_load_from_file(path.encode(), mparams)
        if not self.model:
            raise EngineFailure(f"cannot load a GGUF model from {path}")
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = params.n_ctx
        cparams.n_batch = params.n_batch
        cparams.n_ubatch = params.n_batch
        cparams.n_seq_max = n_seq_max
        cparams.kv_unified = params.kv_unified
        cparams.type_k = _GGML_TYPES[params.cache_type_k or "f16"]
        cparams.type_v = _GGML_TYPES[params.cache_type_v or "f16"]
        cparams.n_threads = params.n_threads
        cparams.n_threads_batch = params.n_threads
        cparams.no_perf = True
        cparams.flash_attn_type = (llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if params.flash_attn
                                   else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED)
        self.ctx = llama_cpp.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            llama_cpp.llama_model_free(self.model)
            quantized_v = (params.cache_type_v or "f16") != "f16"
            hint = (" (a quantized V cache needs flash attention)"
                    if quantized_v and not params.flash_attn else "")
            raise EngineFailure(f"cannot create a context of {params.n_ctx} tokens for {path}{hint}")
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.n_ctx = llama_cpp.llama_n_ctx(self.ctx)  # KV cells in all
        self.n_ctx_seq = llama_cpp.llama_n_ctx_seq(self.ctx)  # the most one sequence may use
        self.kv_unified = params.kv_unified
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        self.n_embd = llama_cpp.llama_model_n_embd(self.model)
        self._pieces: dict[int, bytes] = {}
        # No token covers more bytes than this, so a text of B bytes needs at least
        # B / max_token_bytes tokens: enough to refuse a huge prompt without tokenizing it.
        self.max_token_bytes = max(1, max(len(self.token_text_bytes(t)) for t in range(self.n_vocab)))

    def close(self) -> None:
        if self.ctx:
            llama_cpp.llama_free(self.ctx)
            self.ctx = None
        if self.model:
            llama_cpp.llama_model_free(self.model)
            self.model = None

    # -- vocabulary (any thread) -------------------------------------------------------------

    def tokenize(self, text: str, *, add_special: bool, parse_special: bool) -> list[int]:
        data = text.encode("utf-8")
        capacity = len(data) + 8
        buf = (llama_cpp.llama_token * capacity)()
        n = llama_cpp.llama_tokenize(self.vocab, data, len(data), buf, capacity, add_special, parse_special)
        if n < 0:
            capacity = -n
            buf = (llama_cpp.llama_token * capacity)()
            n = llama_cpp.llama_tokenize(self.vocab, data, len(data), buf, capacity, add_special, parse_special)
        return list(buf[:n])

    def piece(self, token: int) -> bytes:
        """The bytes of one generated token (special tokens render as nothing)."""
        piece = self._pieces.get(token)
        if piece is None:
            piece = self._pieces[token] = self._token_bytes(token, special=False)
        return piece

    def token_text_bytes(self, token: int) -> bytes:
        """A token's bytes, special tokens rendered as their text."""
        return self._token_bytes(token, special=True)

    def token_text(self, token: int) -> str:
        """A token as text, special tokens included (for BOS/EOS markers in chat templates)."""
        return self._token_bytes(token, special=True).decode("utf-8", "replace") if token >= 0 else ""

    def _token_bytes(self, token: int, *, special: bool) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = llama_cpp.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, special)
        return buf.raw[:n]

    def detokenize(self, tokens: list[int], *, render_special: bool) -> bytes:
        array = (llama_cpp.llama_token * len(tokens))(*tokens)
        capacity = max(16, len(tokens) * 8)
        buf = ctypes.create_string_buffer(capacity)
        n = llama_cpp.llama_detokenize(self.vocab, array, len(tokens), buf, capacity, False, render_special)
        if n < 0:
            capacity = -n
            buf = ctypes.create_string_buffer(capacity)
            n = llama_cpp.llama_detokenize(self.vocab, array, len(tokens), buf, capacity, False, render_special)
        return buf.raw[:n]

    def is_end_of_generation(self, token: int) -> bool:
        return llama_cpp.llama_vocab_is_eog(self.vocab, token)

    @property
    def bos(self) -> int:
        return llama_cpp.llama_vocab_bos(self.vocab)

    @property
    def eos(self) -> int:
        return llama_cpp.llama_vocab_eos(self.vocab)

    def chat_template(self) -> str | None:
        template = llama_cpp.llama_model_chat_template(self.model, None)
        return template.decode("utf-8") if isinstance(template, bytes) else template
