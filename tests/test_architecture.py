"""The import rule of docs/architecture.md, read from the source with `ast`.

Imports run edges → store → domain and never back: the domain imports only itself, the store
imports only the domain, the catalog, errors, settings and itself, the companions
(`display_client`, `printer_agent`) and the server never import each other, and no two parts of
`queue_server` import each other in a loop. No module is over `MAX_LINES` lines.

Imports inside functions and under `TYPE_CHECKING` count like any other: a lazy import is still
a dependency, and a cycle through one is still a cycle. One exception: the composition root
(`queue_server.app`, which builds every service and hands the typed `Rigi` container to the
edges) may be named in annotations, imported under `TYPE_CHECKING` only; that gives the edges a
typed container without a dependency at run time. The domain may raise the project's error
classes (`queue_server.errors`, a leaf that imports nothing of the project).
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER = "queue_server"
COMPANIONS = ("display_client", "printer_agent")
# What the server and the companions both speak (languages, compact JSON, close codes, the coded
# error base, the spoken call): a leaf every layer may import, that imports none of them.
SHARED = "rigi_protocol"
CHECKED_PACKAGES = (SERVER, *COMPANIONS, SHARED)
DOMAIN = f"{SERVER}.domain"
STORE = f"{SERVER}.store"
STORE_MAY_IMPORT = tuple(
    f"{SERVER}.{part}" for part in ("domain", "catalog", "errors", "settings", "store")
)
MAX_LINES = 500
COMPOSITION_ROOT = f"{SERVER}.app"
LEAF_ERRORS = f"{SERVER}.errors"  # plain exception classes every layer may raise

# TEMPORARY: the violations on the day this test was written, being removed by other changes.
# The lead deletes each entry once its violation is gone (the last test below names the stale
# ones). Never add to it: a new violation is fixed, not listed.
KNOWN_VIOLATIONS: frozenset[str] = frozenset({})


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. queue_server.store.queue
    path: Path
    tree: ast.Module

    @property
    def relative_path(self) -> str:
        return self.path.relative_to(ROOT).as_posix()

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"


@functools.cache
def _modules() -> tuple[Module, ...]:
    """Every checked module parsed, once for the file's tests (they only read the trees)."""
    found = []
    for package in CHECKED_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            found.append(Module(".".join(parts), path, tree))
    return tuple(found)


def _first_party() -> set[str]:
    """Top-level packages and modules of this repository (anything else is a library)."""
    names = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    names |= {p.stem for p in ROOT.glob("*.py")}
    return names | set(CHECKED_PACKAGES)


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    """The ids of every node inside an `if TYPE_CHECKING:` block (annotation-only imports)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and (
            (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
            or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")
        ):
            for statement in node.body:
                inside.update(id(child) for child in ast.walk(statement))
    return inside


def imports_of(module: Module, *, type_only_root: bool = True) -> Iterator[str]:
    """Every module name `module` imports, relative imports resolved, at any depth of the code.

    `from a.b import c` yields `a.b.c` (c may be a module or a name: prefix rules hold either way).
    With `type_only_root=False`, imports of the composition root under `TYPE_CHECKING` are left
    out (they exist for annotations only).
    """
    type_only = set() if type_only_root else _type_checking_nodes(module.tree)
    for node in ast.walk(module.tree):
        if id(node) in type_only and _names_root(node, module):
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.name.split(".")
                if not module.is_package:
                    anchor.pop()
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield from (f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
            if any(alias.name == "*" for alias in node.names):
                yield base


def _names_root(node: ast.AST, module: Module) -> bool:
    """Whether an import statement imports from the composition root."""
    if isinstance(node, ast.ImportFrom) and not node.level:
        return _within(node.module or "", COMPOSITION_ROOT)
    if isinstance(node, ast.Import):
        return any(_within(alias.name, COMPOSITION_ROOT) for alias in node.names)
    return False


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _part(name: str) -> str | None:
    """The part of the server a module name belongs to: `store` for queue_server.store.queue,
    `errors` for queue_server.errors.CodedError; None for the package itself or outside it."""
    parts = name.split(".")
    if parts[0] != SERVER or len(parts) < 2:
        return None
    return parts[1] if (ROOT / SERVER / parts[1]).is_dir() or _is_module(parts[1]) else None


def _is_module(name: str) -> bool:
    return (ROOT / SERVER / f"{name}.py").is_file()


def layering_violations(modules: Iterable[Module]) -> set[str]:
    first_party = _first_party()
    found = set()
    for module in modules:
        for imported in set(imports_of(module)):
            if imported.split(".")[0] not in first_party:
                continue
            if _within(imported, SHARED):
                allowed = True  # every program may speak the shared protocol
            elif _within(module.name, SHARED):
                allowed = False  # the shared package imports nothing of the programs
            elif _within(module.name, DOMAIN):
                allowed = _within(imported, DOMAIN) or _within(imported, LEAF_ERRORS)
            elif _within(module.name, STORE):
                allowed = any(_within(imported, p) for p in STORE_MAY_IMPORT)
            elif _within(module.name, SERVER):
                allowed = not any(_within(imported, c) for c in COMPANIONS)
            else:  # a companion
                allowed = not _within(imported, SERVER)
            if not allowed:
                found.add(f"{module.name} imports {_owning_module(imported)}")
    return found


def _owning_module(imported: str) -> str:
    """`a.b.name` → `a.b` when `name` is not a module of its own, so messages name files."""
    parts = imported.split(".")
    while len(parts) > 1:
        path = ROOT.joinpath(*parts)
        if path.with_suffix(".py").is_file() or (path / "__init__.py").is_file():
            break
        parts.pop()
    return ".".join(parts)


def part_graph(modules: Iterable[Module]) -> dict[str, set[str]]:
    """Which parts of the server (its subpackages and top-level modules) import which."""
    graph: dict[str, set[str]] = {}
    for module in modules:
        source = _part(module.name)
        if source is None:
            continue
        targets = graph.setdefault(source, set())
        for imported in imports_of(module, type_only_root=False):
            target = _part(imported)
            if target is not None and target != source:
                targets.add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one part (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def cycle_violations(modules: Iterable[Module]) -> set[str]:
    return {
        f"import cycle between {SERVER} parts: {', '.join(component)}"
        for component in cycles(part_graph(modules))
    }


def size_violations(modules: Iterable[Module]) -> set[str]:
    return {
        f"{module.relative_path} has more than {MAX_LINES} lines"
        for module in modules
        if len(module.path.read_text(encoding="utf-8").splitlines()) > MAX_LINES
    }


def all_violations() -> set[str]:
    modules = _modules()
    return layering_violations(modules) | cycle_violations(modules) | size_violations(modules)


def test_imports_run_edges_to_store_to_domain_and_never_back() -> None:
    new = sorted(layering_violations(_modules()) - KNOWN_VIOLATIONS)
    assert not new, "imports across the layers (see docs/architecture.md):\n" + "\n".join(new)


def test_no_two_parts_of_the_server_import_each_other() -> None:
    new = sorted(cycle_violations(_modules()) - KNOWN_VIOLATIONS)
    assert not new, "\n".join(new)


def test_no_module_is_over_the_size_limit() -> None:
    new = sorted(size_violations(_modules()) - KNOWN_VIOLATIONS)
    assert not new, "split these modules by concern:\n" + "\n".join(new)


def test_the_allow_list_holds_only_violations_that_still_exist() -> None:
    gone = sorted(KNOWN_VIOLATIONS - all_violations())
    assert not gone, "fixed: delete from KNOWN_VIOLATIONS:\n" + "\n".join(gone)


# The checker itself, on small made-up sources: a rule that cannot fail guards nothing.


def _module(name: str, source: str, package: bool = False) -> Module:
    path = ROOT.joinpath(*name.split("."))
    path = path / "__init__.py" if package else path.with_suffix(".py")
    return Module(name, path, ast.parse(source))


def test_the_checker_catches_the_domain_importing_the_store() -> None:
    module = _module(
        "queue_server.domain.tickets",
        "from queue_server.domain.states import TicketStatus\n"
        "def f():\n    from queue_server.store.database import Database\n",
    )
    assert layering_violations([module]) == {
        "queue_server.domain.tickets imports queue_server.store.database"
    }


def test_the_checker_resolves_relative_imports_and_knows_libraries() -> None:
    store = _module(
        "queue_server.store.queue",
        "import sqlalchemy\nfrom ..domain import dispatch\nfrom ..api import routes\n",
    )
    assert layering_violations([store]) == {
        "queue_server.store.queue imports queue_server.api.routes"
    }


def test_the_checker_keeps_the_companions_and_the_server_apart() -> None:
    client = _module("display_client.board", "import queue_server.domain.public as public\n")
    server = _module("queue_server.web.pages", "from printer_agent import layout\n")
    assert layering_violations([client, server]) == {
        "display_client.board imports queue_server.domain.public",
        "queue_server.web.pages imports printer_agent.layout",
    }


def test_the_checker_finds_a_cycle_through_a_lazy_import() -> None:
    modules = [
        _module("queue_server.api.routes", "from queue_server.printing import jobs\n"),
        _module("queue_server.printing.jobs", "def f():\n    from queue_server.api import x\n"),
        _module("queue_server.store.queue", "from queue_server.domain import dispatch\n"),
    ]
    assert cycle_violations(modules) == {"import cycle between queue_server parts: api, printing"}


def test_the_checker_lets_edges_name_the_root_in_annotations_only() -> None:
    typed = [
        _module("queue_server.app", "from queue_server.realtime import feeds\n"),
        _module(
            "queue_server.realtime.feeds",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from queue_server.app import Rigi\n",
        ),
    ]
    assert cycle_violations(typed) == set()
    at_run_time = [
        typed[0],
        _module("queue_server.realtime.feeds", "from queue_server.app import Rigi\n"),
    ]
    assert cycle_violations(at_run_time) == {
        "import cycle between queue_server parts: app, realtime"
    }
    other = [
        _module("queue_server.api.routes", "from queue_server.realtime import feeds\n"),
        _module(
            "queue_server.realtime.feeds",
            "import typing\nif typing.TYPE_CHECKING:\n    from queue_server.api import routes\n",
        ),
    ]
    assert cycle_violations(other) == {"import cycle between queue_server parts: api, realtime"}


def test_the_errors_module_every_layer_raises_imports_only_the_shared_package() -> None:
    errors = next(m for m in _modules() if m.name == LEAF_ERRORS)
    first_party = _first_party()
    imported = [name for name in imports_of(errors) if name.split(".")[0] in first_party]
    assert all(_within(name, SHARED) for name in imported), imported


def test_the_checker_keeps_the_shared_package_a_leaf() -> None:
    shared = _module("rigi_protocol.wire", "from queue_server.store import events\n")
    store = _module("queue_server.store.events", "from rigi_protocol.wire import compact_json\n")
    assert layering_violations([shared, store]) == {
        "rigi_protocol.wire imports queue_server.store.events"
    }


def test_the_app_container_is_typed_wherever_it_is_passed() -> None:
    """`rigi: Any` hid a probe of an attribute that did not exist (and a lifespan part that
    listened on a list the container no longer has): no parameter or field named `rigi` is
    left untyped or `Any`, so mypy sees what it is used for."""
    untyped = []
    for module in _modules():
        for node in ast.walk(module.tree):
            if isinstance(node, ast.arg | ast.AnnAssign):
                name = node.arg if isinstance(node, ast.arg) else getattr(node.target, "id", "")
                annotation = node.annotation
                if name == "rigi" and (annotation is None or ast.unparse(annotation) == "Any"):
                    untyped.append(f"{module.relative_path}:{node.lineno}")
    assert not untyped, "annotate these with Rigi:\n" + "\n".join(untyped)
