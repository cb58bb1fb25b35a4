"""Backend constructors by the name used in settings (`models[].backend`)."""

from __future__ import annotations

from typing import Callable

from server.core.backend import Backend
from server.core.types import LoadParams

BackendFactory = Callable[[str, str, LoadParams, int], Backend]


def _llama_cpp(engine_id: str, path: str, params: LoadParams, max_queue: int) -> Backend:
    # Imported lazily: llama_cpp loads a large native library.
    from server.backends.llama_cpp import LlamaCppBackend

    return LlamaCppBackend(engine_id, path, params, max_queue=max_queue)


BACKENDS: dict[str, BackendFactory] = {"llama_cpp": _llama_cpp}
