"""llama.cpp's C API, through llama-cpp-python's ctypes bindings, without the package's high half.

`import llama_cpp` runs the package's `__init__`, which also imports its high-level `Llama` class and,
with it, numpy, diskcache and a chat-format module: about 12 MiB resident in a server that calls
only the C API. The bindings module (`llama_cpp.llama_cpp`) needs none of them. So, unless some
other code has already imported the package, it is set up here with its `__init__` not yet run.
Anything else asked of the package (`llama_cpp.Llama`, `from llama_cpp import __version__`) runs
that `__init__` on first use, so other users of llama-cpp-python in the process see the whole
package as usual.

Import the C API from here: `from server.backends.llama_bindings import llama_cpp`.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types

PACKAGE = "llama_cpp"

_completing = threading.Lock()


def _package_without_init() -> types.ModuleType:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.loader is None:
        raise ImportError(f"{PACKAGE} (llama-cpp-python) is not installed")
    package = importlib.util.module_from_spec(spec)

    def complete(name: str):
        # Python calls a module's __getattr__ only for names it lacks, so this runs until the
        # package's own __init__ has defined everything it defines.
        with _completing:
            if "__getattr__" in package.__dict__:
                del package.__getattr__
                spec.loader.exec_module(package)
        try:
            return package.__dict__[name]
        except KeyError:
            raise AttributeError(f"module {PACKAGE!r} has no attribute {name!r}") from None

    package.__getattr__ = complete
    return package


def _export_c_api(package: types.ModuleType, bindings: types.ModuleType) -> None:
    """What the package's __init__ does first (`from .llama_cpp import *`): the package's own
    modules, such as its logger, reach the C API as `llama_cpp.<name>`."""
    names = getattr(bindings, "__all__", None) or [n for n in vars(bindings) if not n.startswith("_")]
    for name in names:
        package.__dict__.setdefault(name, getattr(bindings, name))


if PACKAGE not in sys.modules:
    sys.modules[PACKAGE] = _package_without_init()
    llama_cpp = importlib.import_module(f"{PACKAGE}.llama_cpp")
    _export_c_api(sys.modules[PACKAGE], llama_cpp)
else:
    llama_cpp = importlib.import_module(f"{PACKAGE}.llama_cpp")
llama_logger = importlib.import_module(f"{PACKAGE}._logger")
