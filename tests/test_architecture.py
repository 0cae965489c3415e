"""The house rules of the layout: who may import whom, module by module, and no circles."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"bot", "flows", "handlers", "storage"}
# What each package may import of ours; flows also stays free of platform and web libraries.
ALLOWED = {
    "flows": {"flows"},
    "handlers": {"handlers", "flows"},
    "storage": {"storage", "flows"},
    "bot": OURS,
}
PLATFORM = {"telegram", "twilio", "aiohttp", "sqlalchemy", "sqlmodel", "alembic", "apscheduler"}
# Of flows, a channel or a table may know only the neutral types (a channel also how a
# message is drawn as plain text), never the package itself, which loads every flow.
# Storage keeps the lifecycle's statuses and folded text as its callers give them.
FLOWS_FOR = {
    "handlers": {"flows.types", "flows.render"},
    "storage": {"flows.types"},
}
# The platform libraries a channel module may use, by channel; anything else of these is
# another channel's.
CHANNEL_LIBRARIES = {"telegram": {"telegram"}, "twilio": {"twilio"}}
HTTP_LIBRARIES = {"aiohttp"}  # every channel with a webhook serves it


def _modules() -> dict[str, Path]:
    """Every module of ours by dotted name (``bot.dashboard.app``), migrations aside."""
    found = {}
    for package in sorted(OURS):
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imported(path: Path) -> Iterator[tuple[str, str | None]]:
    """(module, name) for every import in ``path``, anywhere in it (TYPE_CHECKING too)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                yield node.module, alias.name


def _our_targets(path: Path) -> set[str]:
    """The modules of ours that ``path`` imports (``from flows import rating`` is
    ``flows.rating``; ``from flows import text`` the package, as ``text`` is a function)."""
    targets = set()
    for module, name in _imported(path):
        if module.split(".")[0] not in OURS:
            continue
        submodule = f"{module}.{name}" if name else None
        targets.add(submodule if submodule in MODULES else module)
    return targets


def _libraries(path: Path) -> set[str]:
    return {module.split(".")[0] for module, _ in _imported(path)}


def _channel(module: str) -> str:
    """The channel a handlers module belongs to: ``handlers.telegram_http`` -> telegram."""
    return module.split(".")[1].split("_")[0]


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_it_may(package: str) -> None:
    files = list((ROOT / package).rglob("*.py"))
    assert files
    for path in files:
        imported = _libraries(path)
        forbidden = (imported & OURS) - ALLOWED[package]
        if package == "flows":
            forbidden |= imported & PLATFORM
        assert not forbidden, f"{path.relative_to(ROOT)} imports {sorted(forbidden)}"


@pytest.mark.parametrize("package", sorted(FLOWS_FOR))
def test_channels_and_storage_know_only_the_neutral_types_of_flows(package: str) -> None:
    for module, path in MODULES.items():
        if module.split(".")[0] != package:
            continue
        of_flows = {target for target in _our_targets(path) if target.split(".")[0] == "flows"}
        beyond = of_flows - FLOWS_FOR[package]
        assert not beyond, f"{module} imports {sorted(beyond)} of flows"


def test_no_channel_imports_a_sibling_channel() -> None:
    channels = {_channel(m) for m in MODULES if m.startswith("handlers.") and m != "handlers.base"}
    for module, path in MODULES.items():
        if not module.startswith("handlers.") or module == "handlers.base":
            continue
        own = _channel(module)
        siblings = {
            target
            for target in _our_targets(path)
            if target.startswith("handlers.") and target != "handlers.base"
        }
        foreign = {target for target in siblings if _channel(target) != own}
        assert not foreign, f"{module} imports another channel: {sorted(foreign)}"
        others = set().union(*(CHANNEL_LIBRARIES.get(c, set()) for c in channels - {own}))
        libraries = _libraries(path) & (others - CHANNEL_LIBRARIES.get(own, set()))
        assert not libraries, f"{module} uses another channel's library: {sorted(libraries)}"
    # What every channel shares knows no platform.
    assert not _libraries(MODULES["handlers.base"]) & (PLATFORM - HTTP_LIBRARIES)


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle a depth-first walk of ``graph`` meets, as the path around it."""
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                circles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return circles


def test_no_import_circle_anywhere() -> None:
    # Every import counts, inside functions and under TYPE_CHECKING too.
    graph = {module: _our_targets(path) - {module} for module, path in MODULES.items()}
    assert len(graph) > 50 and "bot.followups" in graph["bot.scheduler"]
    circles = _circles(graph)
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)


def test_the_circle_check_can_fail() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _circles(graph) == [["a", "b", "c", "a"]]


def test_every_module_has_a_docstring() -> None:
    for package in ALLOWED:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts and "versions" in path.parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            assert ast.get_docstring(tree), f"{path.relative_to(ROOT)} has no module docstring"


def _page_groups() -> set[str]:
    """The dashboard modules that define a page group (a ``PageGroup`` subclass)."""
    found = set()
    for module, path in MODULES.items():
        if module.startswith("bot.dashboard."):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            bases = {
                base.id
                for node in ast.walk(tree)
                if isinstance(node, ast.ClassDef)
                for base in node.bases
                if isinstance(base, ast.Name)
            }
            if "PageGroup" in bases:
                found.add(module)
    return found


def test_dashboard_page_groups_stand_alone() -> None:
    # A page group knows the shared machinery (site, views, auth...), never another group;
    # only app.py, which mounts them, imports the groups.
    groups = _page_groups()
    assert {"bot.dashboard.cases", "bot.dashboard.login", "bot.dashboard.knowledge"} <= groups
    for module, path in MODULES.items():
        reached = _our_targets(path) & groups - {module}
        if module != "bot.dashboard.app":
            assert not reached, f"{module} imports page groups {sorted(reached)}"
