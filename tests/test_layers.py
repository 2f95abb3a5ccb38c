"""The house's import direction: ragsite -> chat -> accounts -> knowledge -> core.

Every import in the apps' code, at the top of a file or inside a function, is read from the
source: a lower layer never imports a higher one, and no modules import each other in a circle.
"""

import ast
import graphlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["core", "knowledge", "accounts", "chat", "ragsite"]  # lowest first
RANK = {name: rank for rank, name in enumerate(LAYERS)}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def app_modules() -> dict[str, Path]:
    found = {}
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            if "migrations" not in path.parts:
                found[module_name(path)] = path
    return found


def imported(tree: ast.AST, module: str, is_package: bool, known) -> set[str]:
    """The modules of this tree that `module` imports (a name taken from a package counts as
    its submodule when there is one, else as the package)."""
    package = module if is_package else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                names.add(sub if sub in known else base)
    return {name for name in names if name in known and name != module}


def import_graph() -> dict[str, set[str]]:
    modules = app_modules()
    graph = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        graph[module] = imported(tree, module, path.name == "__init__.py", modules)
    return graph


def layer(module: str) -> str:
    return module.partition(".")[0]


def test_the_reader_sees_every_kind_of_import():
    known = {
        "chat",
        "chat.llm",
        "chat.llm.base",
        "core",
        "core.db",
        "knowledge",
        "knowledge.access",
    }
    source = (
        "import core.db\nfrom chat.llm import base\nfrom knowledge import access as a\n"
        "def f():\n    from . import base\n    from ..llm import base as b\n"
    )
    assert imported(ast.parse(source), "chat.llm.local", False, known) == {
        "core.db",
        "chat.llm.base",
        "knowledge.access",
    }


def upward_imports(graph) -> list[str]:
    return sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        for target in targets
        if RANK[layer(target)] > RANK[layer(module)]
    )


def circle(graph) -> list[str]:
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        return exc.args[1]
    return []


def test_the_checks_catch_an_upward_import_and_a_circle():
    graph = {"core.a": {"knowledge.b"}, "knowledge.b": {"knowledge.c"}, "knowledge.c": set()}
    assert upward_imports(graph) == ["core.a imports knowledge.b"]
    assert circle(graph) == []
    graph["knowledge.c"] = {"knowledge.b"}
    assert set(circle(graph)) == {"knowledge.b", "knowledge.c"}


def test_no_layer_imports_a_higher_one():
    graph = import_graph()
    assert {"core.per_loop", "knowledge.access", "chat.pipeline", "ragsite.asgi"} <= set(graph)
    assert upward_imports(graph) == []


def test_no_modules_import_each_other():
    assert circle(import_graph()) == []


def private_imports(tree: ast.AST) -> list[str]:
    """`from module import _name` statements taking a private name from another of the apps'
    modules (a library's private names are that library's business and its pin's)."""
    return [
        f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.level or layer(node.module or "") in RANK)
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    ]


def test_no_module_imports_another_modules_private_names():
    found = {}
    for module, path in app_modules().items():
        names = private_imports(ast.parse(path.read_text(), filename=str(path)))
        if names:
            found[module] = names
    assert found == {}


def test_a_private_import_is_reported():
    tree = ast.parse("from knowledge.search.embedded import _grow, EmbeddedSearchBackend")
    assert private_imports(tree) == ["knowledge.search.embedded._grow"]
