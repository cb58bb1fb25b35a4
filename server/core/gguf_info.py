"""What a GGUF file says about its model, read from its header with the `gguf` package.

Only the header and tensor table are read (the reader memory-maps the file), so describing a
multi-gigabyte model costs milliseconds of I/O. Results are cached by (path, size, mtime).
"""

from __future__ import annotations

import functools
import os
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
    import gguf  # imported on first use: numpy and the reader are not needed to serve requests

    if not is_gguf(Path(path)):
        raise NotGguf(f"{Path(path).name} is not a GGUF file")
    try:
        reader = gguf.GGUFReader(path)
    except Exception as exc:  # truncated or corrupt: the reader raises whatever numpy raises
        raise NotGguf(f"{Path(path).name} is not a readable GGUF file: {exc}") from None

    def field(key: str, default=None):
        f = reader.fields.get(key)
        if f is None:
            return default
        try:
            return f.contents()
        except Exception:
            return default

    arch = str(field("general.architecture", "") or "")
    parameters = sum(int(t.n_elements) for t in reader.tensors)
    file_type = field("general.file_type")
    return GgufInfo(
        architecture=arch,
        name=str(field("general.name", "") or ""),
        quantization=_quantization(gguf, file_type),
        parameters=parameters,
        size_label=str(field("general.size_label", "") or "") or size_label(parameters),
        context_length=int(field(f"{arch}.context_length", 0) or 0),
        n_layer=int(field(f"{arch}.block_count", 0) or 0),
        n_embd=int(field(f"{arch}.embedding_length", 0) or 0),
        n_head=int(field(f"{arch}.attention.head_count", 0) or 0),
        n_head_kv=int(field(f"{arch}.attention.head_count_kv", 0) or 0),
        chat_template=_text_or_none(field(CHAT_TEMPLATE_KEY)),
    )


def read_chat_template(path: str | os.PathLike) -> str | None:
    """The chat template stored in the file, or None when it has none. A loader calls this before
    it spends time and memory on the weights."""
    try:
        return read(path).chat_template
    except (OSError, NotGguf) as exc:
        raise UnreadableModelFile(f"cannot read GGUF metadata from {path}: {exc}") from None


def _text_or_none(value) -> str | None:
    return value if isinstance(value, str) else None


def _quantization(gguf, file_type) -> str:
    if file_type is None:
        return ""
    try:
        name = gguf.LlamaFileType(int(file_type)).name
    except ValueError:
        return f"type {file_type}"
    return name.removeprefix("MOSTLY_").removeprefix("ALL_")


def size_label(parameters: int) -> str:
    """135M, 1.5B… the way model cards write parameter counts."""
    if parameters >= 1_000_000_000:
        return f"{parameters / 1e9:.1f}".rstrip("0").rstrip(".") + "B"
    if parameters >= 1_000_000:
        return f"{parameters / 1e6:.0f}M"
    return str(parameters)
