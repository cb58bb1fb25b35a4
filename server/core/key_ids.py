"""The name an API key goes by everywhere a key must not appear (rate-limit windows and stats,
per-key settings): a short, non-reversible digest. Here, below both the settings and the
security layer, because both turn keys into these ids."""

from __future__ import annotations

import hashlib
import re

KEY_ID = re.compile(r"key:[0-9a-f]{12}")  # what fingerprint() gives


def fingerprint(value: str) -> str:
    """A short, non-reversible name for a key (rate-limit stats show this, never the key)."""
    return "key:" + hashlib.sha256(b"tokenwire-key-id:" + value.encode()).hexdigest()[:12]


def key_id_of(key_or_id: str) -> str:
    """A key id given as one stays as it is; an API key becomes its fingerprint."""
    return key_or_id if KEY_ID.fullmatch(key_or_id) else fingerprint(key_or_id)
