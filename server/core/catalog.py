"""The curated catalog of downloadable models (server/data/catalog.yaml, plus an optional file).

Users name catalog models either way the documents do: the simple name Foundry uses
("Qwen2.5-0.5B-Instruct-Q8_0-GGUF") or the publisher-style id ("Qwen/Qwen2.5-0.5B-Instruct-Q8_0-GGUF");
lookups are case-insensitive. An extra catalog file (settings: models.catalog_path) adds entries or
replaces built-in ones by name, which is also how tests point an entry at a local server.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

BUILTIN_CATALOG = Path(__file__).resolve().parent.parent / "data" / "catalog.yaml"


class CatalogEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    model_id: str = Field(min_length=1, max_length=200)
    description: str = ""
    url: str = Field(pattern=r"^https?://")
    filename: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*\.gguf$")
    size_bytes: int = Field(ge=0)
    quantization: str = ""
    parameters: str = ""
    architecture: str = ""
    sha256: str | None = None
    recommended_memory_mb: int = Field(default=0, ge=0)
    tags: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str | None) -> str | None:
        if value is not None and (len(value) != 64 or any(c not in "0123456789abcdef" for c in value)):
            raise ValueError("sha256 must be 64 lowercase hex digits")
        return value


class CatalogError(ValueError):
    """A catalog file is missing or malformed."""


class Catalog:
    def __init__(self, entries: list[CatalogEntry]):
        self._entries = {e.name.lower(): e for e in entries}
        self._by_model_id = {e.model_id.lower(): e for e in entries}

    @classmethod
    def load(cls, extra: str | Path | None = None) -> "Catalog":
        entries = {e.name.lower(): e for e in _read(BUILTIN_CATALOG)}
        if extra:
            entries.update({e.name.lower(): e for e in _read(Path(extra))})
        return cls(list(entries.values()))

    def entries(self) -> list[CatalogEntry]:
        return list(self._entries.values())

    def find(self, name: str) -> CatalogEntry | None:
        key = name.lower()
        return self._entries.get(key) or self._by_model_id.get(key)

    def categories(self) -> list[str]:
        return sorted({c for e in self._entries.values() for c in e.categories})

    def discover(self, *, category: str = "", max_size_bytes: int = 0) -> list[CatalogEntry]:
        """Entries in a category (any, if empty) no larger than max_size_bytes (any, if 0)."""
        return [e for e in self._entries.values()
                if (not category or category.lower() in (c.lower() for c in e.categories))
                and (not max_size_bytes or e.size_bytes <= max_size_bytes)]


def _read(path: Path) -> list[CatalogEntry]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise CatalogError(f"cannot read catalog {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise CatalogError(f"catalog {path} is not valid YAML: {exc}") from None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, list):
        raise CatalogError(f"catalog {path} must have a `models` list")
    entries = []
    for index, raw in enumerate(models):
        try:
            entries.append(CatalogEntry.model_validate(raw))
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(p) for p in problem["loc"])
            raise CatalogError(f"catalog {path}: models[{index}].{where}: {problem['msg']}") from None
    return entries
