"""The layers of `server`, read from its imports: no cycle between its packages, and each layer
imports only what it may.

Every module under server/ is parsed (nothing is imported), and each import, wherever it sits
(module level, inside a function, under `if TYPE_CHECKING:`), becomes an edge between the
top-level units of `server`: a sub-package (server.core, server.downloads, ...) or a top-level
module (server.config, server.convert, ...). `server` itself is the root package (__version__).
"""

from __future__ import annotations

import ast
import itertools
import pathlib
from dataclasses import dataclass

import pytest

SERVER = pathlib.Path(__file__).resolve().parents[2] / "server"

#: The version and the error types: every layer may use them; they use no other unit.
FOUNDATION = frozenset({"server", "server.errors"})

#: What each unit may import, bottom layer first. A new unit must say where it stands here.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "server": frozenset(),
    "server.errors": frozenset(),
    # The domain: types (LoadParams included), the Backend interface, engines, sessions, models.
    "server.core": FOUNDATION,
    # Model downloads, and the engines they create: on top of the domain.
    "server.downloads": FOUNDATION | {"server.core"},
    # Settings: built from the domain's types and the downloads' URL rules, handed to the layers
    # below by server.app (they never import it).
    "server.config": FOUNDATION | {"server.core", "server.downloads"},
    # Backends implement server.core.backend.Backend; each reads its own settings section.
    "server.backends": FOUNDATION | {"server.core", "server.config"},
    # protobuf <-> domain.
    "server.convert": FOUNDATION | {"server.core", "server.downloads"},
    "server.interceptors": FOUNDATION,
    "server.monitoring": FOUNDATION | {"server.core", "server.config"},
    "server.security": FOUNDATION | {"server.core", "server.config", "server.interceptors"},
    "server.log_config": FOUNDATION | {"server.config", "server.monitoring"},
    # The gRPC surface: protobuf in, domain call, protobuf out.
    "server.servicers": FOUNDATION | {"server.core", "server.downloads", "server.config",
                                      "server.backends", "server.convert", "server.interceptors",
                                      "server.monitoring", "server.security"},
    # The composition root: builds every layer and hands each its settings.
    "server.app": FOUNDATION | {"server.core", "server.downloads", "server.config",
                                "server.backends", "server.convert", "server.interceptors",
                                "server.monitoring", "server.security", "server.log_config",
                                "server.servicers"},
    # Command-line clients of the gRPC API (generated stubs only).
    "server.cli_models": FOUNDATION,
    "server.cli_pull": FOUNDATION,
    "server.cli": FOUNDATION | {"server.app", "server.config", "server.log_config",
                                "server.monitoring", "server.cli_models", "server.cli_pull"},
}

#: The rules this layering exists for, each with its reason (MAY_IMPORT implies them; they are
#: spelled out so that a failure says which one broke).
FORBIDDEN: list[tuple[str, str, str]] = [
    ("server.core", "server.config", "the domain gets its settings handed in, as domain types"),
    ("server.core", "server.servicers", "the domain knows nothing of gRPC"),
    ("server.core", "server.convert", "the domain knows nothing of protobuf"),
    ("server.core", "server.downloads", "downloads build on the domain, not the other way"),
    ("server.core", "server.backends", "backends implement server.core.backend.Backend"),
    ("server.downloads", "server.config", "downloads get their settings handed in"),
    ("server.downloads", "server.servicers", "downloads know nothing of gRPC"),
    ("server.downloads", "server.convert", "downloads know nothing of protobuf"),
    ("server.config", "server.backends", "settings sit below the backends they configure"),
]

PROTOBUF = ("tokenwire", "google.protobuf", "google.rpc")
TRANSPORT = PROTOBUF + ("grpc", "grpc_health", "grpc_reflection", "grpc_status")
#: Units that take domain types only: no generated stubs, no gRPC.
TRANSPORT_FREE = ("server.core", "server.downloads")
#: Units that may use gRPC (status codes, interceptors) but no protobuf messages.
PROTOBUF_FREE = TRANSPORT_FREE + ("server.errors", "server.config", "server.backends",
                                  "server.monitoring", "server.log_config")


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (or, for a name that is no module, its module)
    where: str  # path:line, for messages

    def __str__(self) -> str:
        return f"{self.where}: {self.source} imports {self.target}"


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(SERVER.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_server(module: str) -> bool:
    return module == "server" or module.startswith("server.")


def unit_of(module: str) -> str:
    return ".".join(module.split(".")[:2])


def read_imports(root: pathlib.Path = SERVER) -> tuple[set[str], list[Import]]:
    files = sorted(root.rglob("*.py"))
    modules = {module_name(p) for p in files}
    found: list[Import] = []
    for path in files:
        source = module_name(path)
        is_package = path.name == "__init__.py"
        where = str(path.relative_to(root.parent))
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolved against the importing package
                    package = source.split(".")
                    package = package[:len(package) - node.level + (1 if is_package else 0)]
                    base = ".".join(package + ([base] if base else []))
                # `from a import b` imports the module a.b when there is one, else a name of a
                # (outside server, both are kept: `from tokenwire import v1` is tokenwire.v1).
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names
                                    if f"{base}.{alias.name}" in modules or not is_server(base)]
            else:
                continue
            found.extend(Import(source, t, f"{where}:{node.lineno}") for t in set(targets))
    return modules, found


def internal_edges(imports: list[Import]) -> dict[tuple[str, str], list[Import]]:
    edges: dict[tuple[str, str], list[Import]] = {}
    for imp in imports:
        if is_server(imp.target):
            a, b = unit_of(imp.source), unit_of(imp.target)
            if a != b:
                edges.setdefault((a, b), []).append(imp)
    return edges


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


MODULES, IMPORTS = read_imports()
EDGES = internal_edges(IMPORTS)


def test_the_reader_sees_the_imports():
    # Guards the guards: an empty or mis-resolved graph would pass every rule below.
    assert "server.core.engines" in MODULES and "server.downloads.manager" in MODULES
    assert ("server.servicers", "server.core") in EDGES
    assert ("server.servicers", "server.convert") in EDGES  # `from server import convert`
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_every_unit_has_a_place_in_the_layers():
    units = {unit_of(m) for m in MODULES}
    assert not units - set(MAY_IMPORT), "say in MAY_IMPORT what these may import"


def test_no_import_cycle_between_the_packages_of_server():
    graph: dict[str, set[str]] = {}
    for a, b in EDGES:
        graph.setdefault(a, set()).add(b)
    cycle = find_cycle(graph)
    if cycle:
        hops = [str(EDGES[(a, b)][0]) for a, b in itertools.pairwise(cycle)]
        pytest.fail("import cycle " + " -> ".join(cycle) + ":\n  " + "\n  ".join(hops))


def test_each_layer_imports_only_what_it_may():
    wrong = [str(imp) for (a, b), imps in sorted(EDGES.items())
             if b not in MAY_IMPORT.get(a, frozenset()) for imp in imps]
    assert not wrong, "imports across the layers:\n" + "\n".join(wrong)


@pytest.mark.parametrize("importer, imported, why", FORBIDDEN,
                         ids=[f"{a}-{b}" for a, b, _ in FORBIDDEN])
def test_layering_rule(importer, imported, why):
    assert imported not in MAY_IMPORT[importer]
    found = [str(imp) for imp in EDGES.get((importer, imported), [])]
    assert not found, f"{importer} must not import {imported} ({why}):\n" + "\n".join(found)


def _imports_of(units: tuple[str, ...], prefixes: tuple[str, ...]) -> list[str]:
    return [str(imp) for imp in IMPORTS if unit_of(imp.source) in units
            and any(imp.target == p or imp.target.startswith(p + ".") for p in prefixes)]


def test_core_and_downloads_take_domain_types_only():
    found = _imports_of(TRANSPORT_FREE, TRANSPORT)
    assert not found, "protobuf or gRPC in the domain:\n" + "\n".join(found)


def test_protobuf_stays_with_convert_the_servicers_and_the_edges():
    found = _imports_of(PROTOBUF_FREE, PROTOBUF)
    assert not found, "protobuf below the servicers:\n" + "\n".join(found)
