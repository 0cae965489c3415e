"""flows stays pure: standard library and the few allowed libraries, no other package of ours."""

import ast
import sys
from pathlib import Path

import pytest

FLOWS_DIR = Path(__file__).resolve().parent.parent / "flows"
ALLOWED = set(sys.stdlib_module_names) | {"flows", "phonenumbers", "hijridate", "babel"}


@pytest.mark.parametrize("path", sorted(FLOWS_DIR.glob("*.py")), ids=lambda p: p.name)
def test_flows_imports_only_allowed_modules(path: Path) -> None:
    imported = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    assert imported - ALLOWED == set()
    assert "asyncio" not in imported  # every step is synchronous
