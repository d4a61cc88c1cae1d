"""DESIGN §2, enforced: imports go one way, and private modules stay private.

Layers, lowest first: the core (``que``, ``que.job``, ``que.errors``,
``que._core``) < ``que.worker`` < ``que.cli`` < ``que_testing``. Every import
statement that runs counts (top level or in a function); ``if TYPE_CHECKING:``
blocks do not. A private module (a name part starting with ``_``) is imported
only from within its own package, except ``que._core``, which is private to
que as a whole; ``que_testing`` uses public names only.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("que", "que_testing")


def module_files() -> dict[str, Path]:
    files = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            files[name.removesuffix(".__init__")] = path
    return files


MODULES = module_files()


def is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def runtime_imports(module: str) -> set[str]:
    """The project's modules that ``module`` imports when it runs."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package(module) else module.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, base] if base else package)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(MODULES[module].read_text()))
    # A package's __init__ re-exporting its children is not an edge back into it.
    return {
        name
        for name in found & MODULES.keys()
        if name != module and not (module.startswith(f"{name}.") and is_package(name))
    }


GRAPH = {module: runtime_imports(module) for module in MODULES}


def layer(module: str) -> int:
    for depth, prefix in ((3, "que_testing"), (2, "que.cli"), (1, "que.worker")):
        if module == prefix or module.startswith(f"{prefix}."):
            return depth
    return 0


def cycles() -> list[list[str]]:
    """The import cycles (strongly connected components of more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in GRAPH[node]:
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in GRAPH:
        if node not in index:
            connect(node)
    return found


def owner(module: str) -> str | None:
    """The package a private module belongs to (``None``: the module is public)."""
    parts = module.split(".")
    for depth, part in enumerate(parts):
        if part.startswith("_") and part != "__main__":
            return "que" if parts[: depth + 1] == ["que", "_core"] else ".".join(parts[:depth])
    return None


def test_the_layers_import_downwards_only():
    upward = sorted(
        (module, target)
        for module, targets in GRAPH.items()
        for target in targets
        if layer(target) > layer(module)
    )
    assert upward == []


def test_no_module_imports_itself_back_through_others():
    assert cycles() == []


def test_private_modules_are_imported_only_by_their_own_package():
    trespassing = sorted(
        (module, target)
        for module, targets in GRAPH.items()
        for target in targets
        if (package := owner(target)) is not None
        and not (module == package or module.startswith(f"{package}."))
    )
    assert trespassing == []


def test_the_checks_see_the_imports():
    """The graph is not empty by mistake: a few edges every version of que has."""
    assert "que._core.db" in GRAPH["que._core.facade"]
    assert "que.worker" in GRAPH["que.cli._process"]
    assert "que" in GRAPH["que_testing.fixtures"]
