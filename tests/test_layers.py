"""The house's import graph: no cycles, and no arrow pointing up.

Read from the source (every ``import`` of a ``liveblog`` module, those under
``TYPE_CHECKING`` too), so a new module that breaks a rule fails here, not in a review.
The layers, bottom up: the data layer (models, the log, queries); the services (hub,
newsroom, the reader stream in ``liveblog.live``); the views; the app that wires them;
the CLI. ``docs/architecture.md`` draws the same picture.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "liveblog"

# Modules that hold data and the queries on it: they know nothing above them.
DATA_LAYER = {
    "liveblog.models",
    "liveblog.store",
    "liveblog.search",
    "liveblog.articles",
    "liveblog.workflow",
    "liveblog.audit",
    "liveblog.db",
    "liveblog.schema",
    "liveblog.revisions",
    "liveblog.events",
}
# What the data layer must never import.
ABOVE_DATA = (
    "liveblog.views",
    "liveblog.live",
    "liveblog.app",
    "liveblog.policy",
    "liveblog.state",
    "liveblog.loaders",
    "liveblog.newsroom",
    "liveblog.cli",
)
# The reader stream gets its reads handed over and takes nothing from the app container.
NOT_FOR_LIVE = (
    "liveblog.views",
    "liveblog.app",
    "liveblog.state",
    "liveblog.db",
    "liveblog.store",
    "liveblog.loaders",
    "liveblog.policy",
    "liveblog.cli",
)
# Who may reach into the live package from outside: the app wires it, the container
# names its type, and the CORS rule reads its path.
LIVE_USERS = {"liveblog.app", "liveblog.state", "liveblog.cors"}
LIVE = ("liveblog.live",)
VIEWS = ("liveblog.views",)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    files = {
        module_name(path): path
        for path in PACKAGE.rglob("*.py")
        if "migrations" not in path.relative_to(PACKAGE).parts
    }
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    found.add(full if full in files else node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = {target for target in found if target in files and target != name}
    return graph


def under(module: str, prefixes: tuple[str, ...] | set[str]) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle, as the path that closes it (depth-first, three colours)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                found.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return found


def test_the_graph_is_read() -> None:
    graph = import_graph()
    # A reader that found nothing would pass every rule below.
    assert "liveblog.store" in graph["liveblog.views.api"]
    assert "liveblog.live.service" in graph["liveblog.app"]
    assert len(graph) > 50


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]


def arrows(source: Callable[[str], bool], target: Callable[[str], bool]) -> set[tuple[str, str]]:
    """Every import from a module ``source`` accepts of a module ``target`` accepts."""
    return {
        (module, imported)
        for module, imports in import_graph().items()
        if source(module)
        for imported in imports
        if target(imported)
    }


def test_the_data_layer_imports_nothing_above_it() -> None:
    assert arrows(lambda m: m in DATA_LAYER, lambda t: under(t, ABOVE_DATA)) == set()


def test_the_live_package_is_handed_what_it_reads() -> None:
    assert arrows(lambda m: under(m, LIVE), lambda t: under(t, NOT_FOR_LIVE)) == set()


def test_only_the_app_reaches_into_the_live_package() -> None:
    outside = lambda m: not under(m, LIVE) and m not in LIVE_USERS  # noqa: E731
    assert arrows(outside, lambda t: under(t, LIVE)) == set()


def test_views_are_imported_by_the_app_and_views_only() -> None:
    outside = lambda m: m != "liveblog.app" and not under(m, VIEWS)  # noqa: E731
    assert arrows(outside, lambda t: under(t, VIEWS)) == set()


def test_nothing_imports_the_app_but_the_cli() -> None:
    top = {"liveblog.app", "liveblog.cli", "liveblog.demo"}
    assert arrows(lambda m: m != "liveblog.cli", lambda t: t in top) == set()
