"""The package's structure as a newcomer sees it in the folders: each folder is one layer with a stated
purpose, a lower layer never imports a higher one, and no module imports, directly or through others, a
module that imports it back. Every import counts, function-local and type-checking ones included, so
no circle can hide behind a local import.

Layers, lowest first: core < wire < reply < prompt < server < flows < integration < harness < cli, and
the package's own entry modules (`__init__`, `proxy`, the `python -m` shims) above them all.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "litellm_llamafile"
LAYERS = ("core", "wire", "reply", "prompt", "server", "flows", "integration", "harness", "cli")
TOP = len(LAYERS)  # the entry modules at the package's root


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    return TOP


def imported_modules(path: Path) -> Iterator[str]:
    """Every module of the package that `path` imports anywhere in its text."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("litellm_llamafile"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if not target.startswith("litellm_llamafile"):
                continue
            known = {module_name(p) for p in PACKAGE.rglob("*.py")}
            for alias in node.names:  # `from . import errors` imports a module, not a name
                yield f"{target}.{alias.name}" if f"{target}.{alias.name}" in known else target


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        graph[name] = {m for m in imported_modules(path) if m != name}
    return graph


GRAPH = import_graph()


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_module_imports_a_higher_layer(module: str) -> None:
    upward = sorted(m for m in GRAPH[module] if layer(m) > layer(module))
    assert not upward, f"{module} (layer {layer(module)}) imports {upward}"


def test_no_import_circle() -> None:
    """Depth-first search for a back edge over the whole import graph (packages import their
    `__init__`, which is included like any module)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = 1
        for target in sorted(GRAPH.get(module, ())):
            if state.get(target) == 1:
                return [*path, module, target]
            if target not in state and (found := visit(target, [*path, module])):
                return found
        state[module] = 2
        return None

    for module in sorted(GRAPH):
        if module not in state:
            circle = visit(module, [])
            assert circle is None, " -> ".join(circle)


@pytest.mark.parametrize("folder", LAYERS)
def test_every_layer_says_its_purpose(folder: str) -> None:
    docstring = ast.get_docstring(ast.parse((PACKAGE / folder / "__init__.py").read_text()))
    assert docstring and len(docstring.split()) >= 8


def test_every_module_lives_in_a_layer_or_is_an_entry_point() -> None:
    entry = {"litellm_llamafile", "litellm_llamafile.proxy", "litellm_llamafile.__main__"} | {
        f"litellm_llamafile.{shim}" for shim in ("proxy_config", "template_facts", "embedded_server")
    }
    stray = sorted(m for m in GRAPH if layer(m) == TOP and m not in entry)
    assert not stray, f"modules outside the layers: {stray}"
