"""Models as users name them: files, local models, catalog entries and URLs, and what uses them.

The library joins the model store (files on disk), the catalog (files that can be downloaded) and
the engine manager (what is loaded), so that every API answers "is it downloaded? is it loaded?"
the same way, and a model reference means the same thing everywhere.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from server.core import gguf_info
from server.core.catalog import Catalog, CatalogEntry
from server.core.engines import EngineManager, EngineState
from server.core.model_store import LocalModel, ModelStore, check_file_name
from server.errors import InvalidArgument, NotFound, PreconditionFailed

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
ENGINE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")


def _existing_file(reference: str) -> Path | None:
    """The file `reference` names as a path, if there is one. A name that cannot be a path here
    (too long for the file system, "~user" of no user) names no file: the caller goes on to say
    the model is not found, as for any other name."""
    try:
        path = Path(reference).expanduser()
        return path if path.is_file() else None
    except (OSError, RuntimeError, ValueError):
        return None


@dataclass(frozen=True)
class ResolvedModel:
    """What a model reference points at. Exactly one of `path` and `url` is set."""

    reference: str
    path: Path | None = None  # on disk: loadable now
    url: str | None = None  # must be downloaded first
    entry: CatalogEntry | None = None
    local: LocalModel | None = None

    @property
    def suggested_engine_id(self) -> str:
        """The id an engine for this model gets when the caller names none."""
        if self.entry is not None:
            return self.entry.model_id
        if self.local is not None:
            return self.local.name
        if self.path is not None:
            return self.path.name.removesuffix(".gguf")
        return self.reference.rsplit("/", 1)[-1].split("?", 1)[0].removesuffix(".gguf")


@dataclass(frozen=True)
class LocalModelState:
    model: LocalModel
    engine_ids: list[str]
    loaded: bool
    entry: CatalogEntry | None


@dataclass(frozen=True)
class CatalogModelState:
    entry: CatalogEntry
    local: LocalModel | None
    loaded: bool


class ModelLibrary:
    def __init__(self, store: ModelStore, catalog: Catalog, engines: EngineManager):
        self.store = store
        self.catalog = catalog
        self.engines = engines

    # -- references ------------------------------------------------------------------------------

    def resolve(self, reference: str, *, field: str = "model") -> ResolvedModel:
        if not reference or not reference.strip():
            raise InvalidArgument.single(field, "name a model: a file path, a local model, a catalog "
                                                "name or an http(s) URL", reason="MISSING_MODEL")
        scheme = _SCHEME.match(reference)
        if scheme:
            if scheme.group(1).lower() not in ("http", "https"):
                raise InvalidArgument.single(field, f"unsupported URL scheme '{scheme.group(1)}'; "
                                                    "only http and https", reason="UNSUPPORTED_URL")
            # Downloaded before (by Kolosal's POST /engines or a config preload): use that file.
            filename = urllib.parse.urlsplit(reference).path.rsplit("/", 1)[-1]
            local = self.store.find(filename) if filename.lower().endswith(".gguf") else None
            if local is not None:
                return ResolvedModel(reference, path=local.path, local=local,
                                     entry=self.catalog_entry_for(local))
            return ResolvedModel(reference, url=reference)
        if "\0" in reference:
            raise InvalidArgument.single(field, "the model name contains a NUL character",
                                         reason="INVALID_MODEL_NAME")
        local = self.store.find(reference)
        if local is not None:
            return ResolvedModel(reference, path=local.path, local=local,
                                 entry=self.catalog_entry_for(local))
        entry = self.catalog.find(reference)
        if entry is not None:
            local = self.local_for(entry)
            if local is not None:
                return ResolvedModel(reference, path=local.path, local=local, entry=entry)
            return ResolvedModel(reference, url=entry.url, entry=entry)
        path = _existing_file(reference)
        if path is not None:
            if not gguf_info.is_gguf(path):
                raise InvalidArgument.single(field, f"{reference} is not a GGUF model file",
                                             reason="NOT_GGUF")
            return ResolvedModel(reference, path=path.resolve())
        raise NotFound(f"model '{reference}' is not a file, a local model or a catalog entry",
                       reason="MODEL_NOT_FOUND", metadata={"model": reference})

    def local_for(self, entry: CatalogEntry) -> LocalModel | None:
        return self.store.find(entry.filename)

    def catalog_entry_for(self, model: LocalModel) -> CatalogEntry | None:
        filename = model.path.name.lower()
        return next((e for e in self.catalog.entries() if e.filename.lower() == filename), None)

    @staticmethod
    def check_engine_id(engine_id: str, *, field: str = "engine_id") -> None:
        if not ENGINE_ID.match(engine_id) or ".." in engine_id:
            raise InvalidArgument.single(field, f"invalid engine id {engine_id!r}: 1-128 letters, "
                                                "digits and . _ : / -, starting with a letter or digit",
                                         reason="INVALID_ENGINE_ID")

    # -- listings ---------------------------------------------------------------------------------

    def local_models(self) -> list[LocalModelState]:
        states = []
        for model in self.store.list():
            users = self.engines.using_path(str(model.path))
            states.append(LocalModelState(
                model, [e.id for e in users],
                any(e.state is EngineState.LOADED for e in users), self.catalog_entry_for(model)))
        return states

    def catalog_models(self, *, category: str = "", max_size_bytes: int = 0) -> list[CatalogModelState]:
        states = []
        for entry in self.catalog.discover(category=category, max_size_bytes=max_size_bytes):
            local = self.local_for(entry)
            loaded = local is not None and any(
                e.state is EngineState.LOADED for e in self.engines.using_path(str(local.path)))
            states.append(CatalogModelState(entry, local, loaded))
        return states

    # -- changes ----------------------------------------------------------------------------------

    async def delete(self, name: str, *, force: bool) -> tuple[LocalModel, list[str]]:
        """Deletes a local model; refused while an engine uses it unless `force` (which removes
        those engines first). Returns the model and the removed engines' ids."""
        # A catalog id may hold a "/" (HuggingFaceTB/…): looked up before the name is judged as
        # a file name, which is what it must be otherwise.
        entry = self.catalog.find(name)
        if entry is not None:
            name = entry.filename  # a catalog model not downloaded yet: NOT_FOUND names its file
            model = self.local_for(entry)
        else:
            check_file_name(name)
            model = self.store.find(name)
        if model is None:
            self.store.delete(name)  # raises the store's NOT_FOUND
        users = self.engines.using_path(str(model.path))
        if model.embedded:
            self.store.delete(model.name)  # raises MODEL_EMBEDDED
        if users and not force:
            raise PreconditionFailed(
                f"model '{model.name}' is used by engine(s) {', '.join(e.id for e in users)}; "
                "remove them first or delete with force", reason="MODEL_IN_USE",
                metadata={"engine_ids": ",".join(e.id for e in users)})
        removed = []
        for engine in users:
            if engine.id == self.engines.default_id:
                await self.engines.unload(engine.id, force=True)
            else:
                await self.engines.remove(engine.id, force=True)
                removed.append(engine.id)
        self.store.delete(model.name)
        return model, removed
