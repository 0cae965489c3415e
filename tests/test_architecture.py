"""The house rules of the layout: who may import whom."""

from __future__ import annotations

import ast
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


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_it_may(package: str) -> None:
    files = list((ROOT / package).rglob("*.py"))
    assert files
    for path in files:
        imported = _imports(path)
        forbidden = (imported & OURS) - ALLOWED[package]
        if package == "flows":
            forbidden |= imported & PLATFORM
        assert not forbidden, f"{path.relative_to(ROOT)} imports {sorted(forbidden)}"


def test_every_module_has_a_docstring() -> None:
    for package in ALLOWED:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts and "versions" in path.parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            assert ast.get_docstring(tree), f"{path.relative_to(ROOT)} has no module docstring"
