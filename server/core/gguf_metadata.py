"""Reading a GGUF file's metadata without loading the model (the `gguf` package, llama.cpp's own
reader): what a loader must check before it spends time and memory on the weights."""

from __future__ import annotations

from server.errors import TokenwireError

CHAT_TEMPLATE_KEY = "tokenizer.chat_template"


class UnreadableModelFile(TokenwireError):
    reason = "UNREADABLE_MODEL_FILE"


def read_chat_template(path: str) -> str | None:
    """The chat template stored in the file, or None when it has none."""
    import gguf

    try:
        reader = gguf.GGUFReader(path, "r")
    except (OSError, ValueError) as exc:
        raise UnreadableModelFile(f"cannot read GGUF metadata from {path}: {exc}") from None
    field = reader.get_field(CHAT_TEMPLATE_KEY)
    if field is None:
        return None
    value = field.contents()
    return value if isinstance(value, str) else None
