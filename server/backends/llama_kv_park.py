"""Host-memory copies of idle conversations' KV caches, least recently parked evicted first.

When the scheduler must give a sequence that holds a conversation's cache (a chat session's) to
another request, it parks the cache here first with llama.cpp's sequence-state API; the
conversation's next turn restores it into whichever sequence it gets and prefills only its new
tokens. The copies live under a byte budget; past it the oldest are dropped, and a conversation
whose copy was dropped falls back to a full prefill. Only the scheduler's thread uses this.
"""

from __future__ import annotations

import collections
import ctypes
import logging
from dataclasses import dataclass

from server.backends.llama_bindings import llama_cpp

log = logging.getLogger(__name__)


@dataclass
class _Parked:
    tokens: list[int]
    state: ctypes.Array
    size: int


class KvParking:
    def __init__(self, ctx, memory, budget_bytes: int):
        self._ctx = ctx
        self._memory = memory
        self.budget_bytes = budget_bytes
        self.used_bytes = 0
        self._entries: collections.OrderedDict[str, _Parked] = collections.OrderedDict()
        self.restored_total = 0

    def tokens(self, key: str) -> list[int] | None:
        entry = self._entries.get(key)
        return entry.tokens if entry else None

    def drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.used_bytes -= entry.size

    def park(self, key: str, seq_id: int, tokens: list[int]) -> bool:
        """Copies sequence `seq_id`'s KV (which holds `tokens`) under `key`; False if it does
        not fit the budget or llama.cpp cannot save it."""
        self.drop(key)
        if not tokens or self.budget_bytes <= 0:
            return False
        size = llama_cpp.llama_state_seq_get_size(self._ctx, seq_id)
        if size == 0 or size > self.budget_bytes:
            return False
        state = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(self._ctx, state, size, seq_id)
        if written == 0:
            return False  # read before making room: a failed copy evicts nobody
        while self.used_bytes + written > self.budget_bytes and self._entries:
            _, oldest = self._entries.popitem(last=False)
            self.used_bytes -= oldest.size
        self._entries[key] = _Parked(list(tokens), state, written)
        self.used_bytes += written
        return True

    def take(self, key: str) -> "_Parked | None":
        """Removes `key`'s parked copy and hands it over (for `load`), so that parking something
        else meanwhile cannot evict it."""
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.used_bytes -= entry.size
        return entry

    def load(self, entry: "_Parked | None", seq_id: int) -> list[int] | None:
        """Loads a copy `take` handed over into sequence `seq_id` (emptied first); its tokens,
        or None (sequence left empty) if there is none or llama.cpp refuses it."""
        if entry is None:
            return None
        llama_cpp.llama_memory_seq_rm(self._memory, seq_id, -1, -1)
        if llama_cpp.llama_state_seq_set_data(self._ctx, entry.state, entry.size, seq_id) == 0:
            log.warning("could not restore a parked KV cache of %d tokens; prefilling instead",
                        len(entry.tokens))
            llama_cpp.llama_memory_seq_rm(self._memory, seq_id, -1, -1)
            return None
        self.restored_total += 1
        return entry.tokens
