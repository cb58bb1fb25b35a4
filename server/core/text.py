"""Turns a stream of token byte pieces into text deltas that are safe to send.

Two promises are kept here, independent of any backend:
- a delta never ends inside a multi-byte UTF-8 character (bytes are held until the character
  completes; bytes that can never form one become U+FFFD);
- a delta never contains any part of a stop sequence: text that could still grow into a stop
  sequence is held back until it either matches (generation ends, the match is dropped) or can
  no longer match (it is released).
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass


@dataclass(frozen=True)
class Released:
    text: str
    token_ids: tuple[int, ...]


class DeltaAssembler:
    def __init__(self, stop: tuple[str, ...] = ()):
        self._stop = tuple(s for s in stop if s)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""
        # (token id, length of self._pending once that token's characters were added)
        self._pending_ids: list[tuple[int, int]] = []
        self.stopped = False

    def push(self, token_id: int, piece: bytes) -> Released | None:
        """Adds one token's bytes; returns what can be released now, if anything."""
        if self.stopped:
            raise RuntimeError("push after a stop sequence matched")
        before = len(self._pending)
        self._pending += self._decoder.decode(piece)
        # A token that ends inside a character belongs with the character it starts, which
        # arrives with a later token: mark it as ending one past the current text.
        end = len(self._pending) if len(self._pending) > before else before + 1
        self._pending_ids.append((token_id, end))
        if not self._stop:
            return self._release(len(self._pending))
        match_at = self._earliest_stop()
        if match_at is not None:
            self.stopped = True
            released = self._release(match_at)
            self._pending, self._pending_ids = "", []
            return released
        return self._release(len(self._pending) - self._held_suffix())

    def flush(self) -> Released | None:
        """Releases everything still held, at the end of a generation that did not stop on a match."""
        if self.stopped:
            return None
        self._pending += self._decoder.decode(b"", final=True)
        self._pending_ids = [(tid, min(end, len(self._pending))) for tid, end in self._pending_ids]
        return self._release(len(self._pending))

    def _earliest_stop(self) -> int | None:
        hits = [i for i in (self._pending.find(s) for s in self._stop) if i >= 0]
        return min(hits) if hits else None

    def _held_suffix(self) -> int:
        """Length of the longest suffix of the pending text that begins some stop sequence."""
        text = self._pending
        longest = 0
        for stop in self._stop:
            for n in range(min(len(stop) - 1, len(text)), longest, -1):
                if text.endswith(stop[:n]):
                    longest = n
                    break
        return longest

    def _release(self, upto: int) -> Released | None:
        if upto <= 0 and not self._pending_ids:
            return None
        text = self._pending[:upto]
        ids = tuple(tid for tid, end in self._pending_ids if end <= upto)
        if not text and not ids:
            return None
        self._pending = self._pending[upto:]
        self._pending_ids = [(tid, end - upto) for tid, end in self._pending_ids if end > upto]
        return Released(text, ids)
