"""API keys: held only as SHA-256 digests and compared in constant time against every key.

Hashing first gives every comparison the same length, and the loop never stops at a match, so
the time a check takes says nothing about which key (or how much of one) was close.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Iterable, Sequence

from server.core.key_ids import fingerprint

USER_ROLE = "user"
ADMIN_ROLE = "admin"


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()


@dataclass(frozen=True)
class Identity:
    """Who a valid key belongs to."""

    role: str
    key_id: str


class KeyRing:
    def __init__(self, user_keys: Iterable[str] = (), admin_keys: Iterable[str] = ()):
        self._entries: list[tuple[bytes, Identity]] = []
        for role, keys in ((USER_ROLE, user_keys), (ADMIN_ROLE, admin_keys)):
            self._entries += [(_digest(key), Identity(role, fingerprint(key))) for key in keys]

    @property
    def user_count(self) -> int:
        return sum(1 for _, identity in self._entries if identity.role == USER_ROLE)

    @property
    def admin_count(self) -> int:
        return sum(1 for _, identity in self._entries if identity.role == ADMIN_ROLE)

    def replacing(self, role: str, keys: Iterable[str]) -> "KeyRing":
        """A new ring with `role`'s keys replaced by `keys` and the other role's kept."""
        ring = KeyRing()
        ring._entries = [e for e in self._entries if e[1].role != role]
        ring._entries += [(_digest(key), Identity(role, fingerprint(key))) for key in keys]
        return ring

    def __len__(self) -> int:
        return len(self._entries)

    def match(self, candidates: Sequence[str]) -> Identity | None:
        """The identity of the first candidate that is a key; every candidate is compared with
        every key, whatever matches."""
        found: Identity | None = None
        for candidate in candidates:
            digest = _digest(candidate)
            for stored, identity in self._entries:
                if hmac.compare_digest(digest, stored) and found is None:
                    found = identity
        # An admin key outranks a user key presented beside it.
        return found


def credentials(metadata: Iterable[tuple[str, str | bytes]], header_name: str) -> list[str]:
    """The key candidates a call carries: `authorization: Bearer <key>` (scheme in any case),
    `x-api-key`, and the configured header (raw, or as a Bearer value)."""
    wanted = {"authorization", "x-api-key", header_name.lower()}
    found: list[str] = []
    for name, value in metadata:
        if name not in wanted or isinstance(value, bytes):
            continue
        value = value.strip()
        scheme, _, rest = value.partition(" ")
        if scheme.lower() == "bearer":
            value = rest.strip()
        elif name == "authorization":
            continue  # another scheme (Basic ...) is not an API key
        if value:
            found.append(value)
    return found
