"""What a GGUF file says about its model, read from its header.

Only the header and tensor table are read (through a memory map), so describing a multi-gigabyte
model costs milliseconds of I/O. Results are cached by (path, size, mtime).
"""

from __future__ import annotations

import functools
import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from server.errors import UnreadableModelFile

GGUF_MAGIC = b"GGUF"
CHAT_TEMPLATE_KEY = "tokenizer.chat_template"


@dataclass(frozen=True)
class GgufInfo:
    architecture: str
    name: str
    quantization: str  # "Q4_1", "Q8_0", "F16"… or "" when the file does not say
    parameters: int  # parameter count summed over the tensor table
    size_label: str  # "135M", "0.5B"… (the file's own label, else derived from `parameters`)
    context_length: int  # the context the model was trained for; 0 if unknown
    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int
    chat_template: str | None  # the Jinja template the file carries (untrusted: render sandboxed)

    @property
    def has_chat_template(self) -> bool:
        return bool(self.chat_template)

    def kv_bytes_per_token(self) -> int:
        """f16 K and V for one token over all layers (the KV cache's cost per context cell)."""
        if not (self.n_layer and self.n_embd and self.n_head):
            return 0
        head_dim = self.n_embd // self.n_head
        return 2 * 2 * self.n_layer * (self.n_head_kv or self.n_head) * head_dim


class NotGguf(ValueError):
    """The file is not a readable GGUF model."""


def is_gguf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == GGUF_MAGIC
    except OSError:
        return False


def read(path: str | os.PathLike) -> GgufInfo:
    stat = os.stat(path)
    return _read(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _read(path: str, size: int, mtime_ns: int) -> GgufInfo:
    if not is_gguf(Path(path)):
        raise NotGguf(f"{Path(path).name} is not a GGUF file")
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
            fields, parameters = _Header(view).read()
    except (OSError, ValueError, struct.error) as exc:
        raise NotGguf(f"{Path(path).name} is not a readable GGUF file: {exc}") from None

    def field(key: str, default=None):
        return fields.get(key, default)

    def number(key: str) -> int:
        value = field(key, 0)
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0

    arch = _text_or_none(field("general.architecture")) or ""
    return GgufInfo(
        architecture=arch,
        name=_text_or_none(field("general.name")) or "",
        quantization=_quantization(field("general.file_type")),
        parameters=parameters,
        size_label=_text_or_none(field("general.size_label")) or size_label(parameters),
        context_length=number(f"{arch}.context_length"),
        n_layer=number(f"{arch}.block_count"),
        n_embd=number(f"{arch}.embedding_length"),
        n_head=number(f"{arch}.attention.head_count"),
        n_head_kv=number(f"{arch}.attention.head_count_kv"),
        chat_template=_text_or_none(field(CHAT_TEMPLATE_KEY)),
    )


# GGUF value types (ggml's gguf.h): struct formats of the fixed-size ones; 8 is a string, 9 an array.
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
_MAX_DIMS = 8  # ggml has 4; room for a future format, not for garbage


class _Header:
    """Reads a GGUF (v2 or v3) header: its key-value pairs and the shapes in its tensor table.

    Written here rather than taken from the `gguf` package: that reader needs numpy, ~10 MiB resident
    in a server process that otherwise never loads it. Arrays (the tokenizer's vocabulary) are
    skipped over, not decoded; nothing past the tensor table is touched. Every length is checked
    against the file, so a corrupt or hostile file fails with ValueError instead of a huge read.
    """

    def __init__(self, view: mmap.mmap) -> None:
        self.view, self.at, self.order = view, 0, "<"

    def read(self) -> tuple[dict[str, object], int]:
        if self._take(4) != GGUF_MAGIC:
            raise ValueError("no GGUF magic")
        (version,) = self._unpack("I")
        if version & 0xFFFF == 0 and version:  # written big-endian
            self.order = ">"
            version = int.from_bytes(version.to_bytes(4, "little"), "big")
        if version not in (2, 3):
            raise ValueError(f"GGUF version {version} is not supported (2 and 3 are)")
        n_tensors, n_kv = self._unpack("Q"), self._unpack("Q")
        fields: dict[str, object] = {}
        for _ in range(self._bounded(n_kv[0], 9)):
            key = self._string()
            (kind,) = self._unpack("I")
            fields[key] = self._value(kind)
        parameters = 0
        for _ in range(self._bounded(n_tensors[0], 8 + 4 + 4 + 8)):
            self._string()  # name
            (n_dims,) = self._unpack("I")
            if n_dims > _MAX_DIMS:
                raise ValueError(f"a tensor with {n_dims} dimensions")
            elements = 1
            for dim in self._unpack("Q" * n_dims):
                elements *= dim
            parameters += elements
            self._unpack("IQ")  # ggml type, data offset
        return fields, parameters

    def _value(self, kind: int):
        if kind in _SCALARS:
            return self._unpack(_SCALARS[kind])[0]
        if kind == _STRING:
            return self._string()
        if kind == _ARRAY:
            item_kind, count = self._unpack("IQ")
            if item_kind in _SCALARS:
                size = struct.calcsize(_SCALARS[item_kind])
                self._skip(self._bounded(count, size) * size)
            elif item_kind == _STRING:
                for _ in range(self._bounded(count, 8)):
                    self._skip(self._unpack("Q")[0])
            else:  # arrays of arrays: no model key uses them
                raise ValueError(f"an array of value type {item_kind}")
            return None
        raise ValueError(f"unknown value type {kind}")

    def _bounded(self, count: int, least_bytes_each: int) -> int:
        if count * least_bytes_each > len(self.view) - self.at:
            raise ValueError(f"{count} entries do not fit in the rest of the file")
        return count

    def _skip(self, n: int) -> None:
        if self.at + n > len(self.view):
            raise ValueError(f"truncated at byte {self.at}")
        self.at += n

    def _take(self, n: int) -> bytes:
        start = self.at
        self._skip(n)
        return self.view[start:self.at]

    def _unpack(self, fmt: str) -> tuple:
        fmt = self.order + fmt
        values = struct.unpack_from(fmt, self.view, self.at)  # struct.error past the end
        self.at += struct.calcsize(fmt)
        return values

    def _string(self) -> str:
        (n,) = self._unpack("Q")
        return self._take(n).decode("utf-8", errors="replace")


def read_chat_template(path: str | os.PathLike) -> str | None:
    """The chat template stored in the file, or None when it has none. A loader calls this before
    it spends time and memory on the weights."""
    try:
        return read(path).chat_template
    except (OSError, NotGguf) as exc:
        raise UnreadableModelFile(f"cannot read GGUF metadata from {path}: {exc}") from None


def _text_or_none(value) -> str | None:
    return value if isinstance(value, str) else None


# ggml's llama_ftype values (general.file_type) by name, as llama.cpp prints them.
_FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS",
    23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M",
    30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4_MOE", 39: "NVFP4",
    40: "Q1_0", 1024: "GUESSED",
}


def _quantization(file_type) -> str:
    if file_type is None or isinstance(file_type, (str, bool)):
        return ""
    return _FILE_TYPES.get(int(file_type), f"type {file_type}")


def size_label(parameters: int) -> str:
    """135M, 1.5B… the way model cards write parameter counts."""
    if parameters >= 1_000_000_000:
        return f"{parameters / 1e9:.1f}".rstrip("0").rstrip(".") + "B"
    if parameters >= 1_000_000:
        return f"{parameters / 1e6:.0f}M"
    return str(parameters)
