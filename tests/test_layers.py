"""Layers depend downward only: api → security → query → engine / crypto. Checked on the imports
of every module, so a shortcut from a route to the engine cannot land unnoticed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "src" / "strongroom"
LAYERS = ["api", "security", "query", "engine", "crypto"]
# What each layer may import from the project (besides the shared base modules below).
ALLOWED = {
    "api": {"security", "query"},
    "security": {"query", "engine", "crypto"},
    "query": {"engine"},
    "engine": set(),
    "crypto": set(),
}
BASE = {"errors", "jsonio", "settings", "pii", "runtime", "__init__",
        "demo"}  # demo: the pure synthetic-resident generator (canaries look like its residents)


def project_imports(path: Path) -> set[str]:
    """Top-level strongroom modules/packages this file imports."""
    relative = path.relative_to(PACKAGE)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(relative.parts[:-1])[: len(relative.parts) - 1 - (node.level - 1)]
                target = base + (node.module.split(".") if node.module else [])
                if not target:  # `from .. import x`: x is a module of the package, or a name in __init__
                    found.update(alias.name if (PACKAGE / alias.name).exists()
                                 or (PACKAGE / f"{alias.name}.py").exists() else "__init__"
                                 for alias in node.names)
                else:
                    found.add(target[0])
            elif node.module and node.module.startswith("strongroom"):
                parts = node.module.split(".")
                found.add(parts[1] if len(parts) > 1 else node.names[0].name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("strongroom."):
                    found.add(alias.name.split(".")[1])
    return found


@pytest.mark.parametrize("layer", LAYERS)
def test_layer_imports_only_downward(layer: str) -> None:
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        imported = project_imports(path) - BASE - {layer}
        forbidden = imported - ALLOWED[layer]
        assert not forbidden, f"{path.relative_to(PACKAGE)} imports {sorted(forbidden)}"


def test_the_checker_sees_relative_imports() -> None:
    # The checker itself must work: the api's app module does import the security gate.
    assert "security" in project_imports(PACKAGE / "api" / "app.py")
    assert "engine" in project_imports(PACKAGE / "security" / "gate.py")


def test_routes_hold_sessions_never_the_engine() -> None:
    from strongroom.security.session import Session
    public = [name for name in vars(Session) if not name.startswith("_")]
    assert public, "Session has methods"
    # The engine is reachable only through name-mangled private attributes.
    import inspect
    source = inspect.getsource(Session)
    assert "self.engine" not in source and "self.__engine = engine" in source
