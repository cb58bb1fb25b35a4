"""The model store: GGUF files in the models directory, described from their own metadata.

The directory is flat: one `<name>.gguf` per model, where downloads finish with an atomic rename
(their `.part` files are not models and are never listed). The embedded default model is listed
too, read-only, so that users see every model the server can load.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from server.core import gguf_info
from server.core.gguf_info import GgufInfo
from server.errors import InvalidArgument, ModelFileNotFound, PreconditionFailed

MODEL_SUFFIX = ".gguf"


@dataclass(frozen=True)
class LocalModel:
    name: str  # the file name without .gguf
    path: Path
    size_bytes: int
    modified_unix: int  # when the download finished (the file's mtime)
    info: GgufInfo | None  # None when the file is not a readable GGUF
    problem: str = ""  # why info is None
    embedded: bool = False


class ModelStore:
    def __init__(self, directory: str | os.PathLike, *, embedded: Path | None = None):
        self.directory = Path(directory).expanduser()
        self.embedded = embedded

    def list(self) -> list[LocalModel]:
        models = []
        if self.embedded is not None and self.embedded.is_file():
            models.append(self._describe(self.embedded, embedded=True))
        if self.directory.is_dir():
            for path in sorted(self.directory.iterdir()):
                if path.suffix.lower() == MODEL_SUFFIX and path.is_file():
                    models.append(self._describe(path))
        return models

    def find(self, name: str) -> LocalModel | None:
        """A model by its name or file name (case-insensitive), or None."""
        key = name.lower().removesuffix(MODEL_SUFFIX)
        return next((m for m in self.list() if m.name.lower() == key), None)

    def delete(self, name: str) -> LocalModel:
        """Deletes a model file; the caller has made sure no engine still uses it."""
        model = self.find(name)
        if model is None:
            raise ModelFileNotFound(name)
        if model.embedded:
            raise PreconditionFailed(f"'{model.name}' is the embedded default model, installed with "
                                     "the server; it cannot be deleted", reason="MODEL_EMBEDDED")
        model.path.unlink(missing_ok=True)
        return model

    def _describe(self, path: Path, *, embedded: bool = False) -> LocalModel:
        stat = path.stat()
        info, problem = None, ""
        try:
            info = gguf_info.read(path)
        except gguf_info.NotGguf as exc:
            problem = str(exc)
        return LocalModel(name=path.name[: -len(MODEL_SUFFIX)], path=path, size_bytes=stat.st_size,
                          modified_unix=int(stat.st_mtime), info=info, problem=problem,
                          embedded=embedded)


def check_file_name(name: str, *, field: str = "name") -> None:
    """Refuses names that could leave the models directory or confuse the file system."""
    bad = ("/" in name or "\\" in name or "\0" in name or name in ("", ".", "..")
           or name.startswith(".") or len(name) > 200 or "%" in name)
    if bad:
        raise InvalidArgument.single(field, f"invalid model file name {name!r}: use letters, "
                                     "digits, '.', '_' and '-' only, not starting with '.'",
                                     reason="INVALID_MODEL_NAME")
