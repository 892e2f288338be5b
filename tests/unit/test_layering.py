"""Imports run down the layers only, and no module imports itself back through others.

Every package and top-level module of ``tierserve`` has a rank; a module may import its own
package and anything ranked below it. Imports inside functions count: they are still a
dependency, only a later one.
"""

import ast
from collections import defaultdict
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2] / "src" / "tierserve"

LAYERS = [
    "errors",
    "limits",
    "hardware",
    "model_names",
    "pii",
    "config",
    "signals",
    "validate",
    "structured",
    "models",
    "engine",
    "policy",
    "prompt_models",
    "cache",
    "quota",
    "observe",
    "review",
    "api",
    "serve",
    "bench",
    "evaluate",
    "launch",
    "cli",
    "",  # tierserve/__init__.py: the public API, on top of everything
]
"""Lowest first."""


def _modules() -> dict[str, Path]:
    found = {}
    for path in SOURCE.rglob("*.py"):
        parts = path.relative_to(SOURCE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(module: str, path: Path) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}
    return {name for name in names if name == "tierserve" or name.startswith("tierserve.")}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        for name in _imports(module, path):
            while name not in modules:  # `from pkg.mod import Class` names the class
                name = name.rpartition(".")[0]
            if name != module:
                graph[module].add(name)
    return graph


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_package_has_a_layer() -> None:
    assert {_layer(m) for m in _modules()} <= set(LAYERS)


def test_no_module_imports_a_higher_layer() -> None:
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in _graph().items()
        for target in targets
        if _layer(target) != _layer(module)
        and LAYERS.index(_layer(target)) > LAYERS.index(_layer(module))
    )
    assert not upward, "imports up the layers:\n" + "\n".join(upward)


def test_no_import_cycle() -> None:
    graph = _graph()
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            # A package's __init__ importing its own modules is how a package works.
            if module != "tierserve" and target.startswith(module + "."):
                continue
            if state.get(target) == 1:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(_modules()):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
