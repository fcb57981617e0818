"""The package's parts (``unpaired/<part>``: a sub-package or a root-level module) import each other without
cycles, counting imports inside functions; files stay short."""

import ast
from pathlib import Path
from typing import Dict, List, Set

PACKAGE = Path(__file__).resolve().parents[1] / "unpaired"
MAX_LINES = 400


def _module_name(path: Path) -> List[str]:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _part(module: List[str]) -> str:
    """``unpaired.training.trainer`` -> ``training``; ``unpaired.cli`` -> ``cli``; ``unpaired`` -> ``unpaired``."""
    return module[1] if len(module) > 1 else "unpaired"


def _is_module(name: List[str]) -> bool:
    path = PACKAGE.parent.joinpath(*name)
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports(path: Path):
    """(imported module as a list of names, the names taken from it) for every import in the file, at any depth."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name.split("."), []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                target = package[:len(package) - node.level + 1] + (node.module.split(".") if node.module else [])
            else:
                target = node.module.split(".")
            for a in node.names:  # ``from . import x``: x may be a module of that package
                yield (target + [a.name], []) if _is_module(target + [a.name]) else (target, [a.name])


def module_graph() -> Dict[str, Set[str]]:
    """module -> the package's modules it imports (a sub-module importing its own package's ``__init__``, the
    registry pattern, is left out)."""
    graph: Dict[str, Set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        src = _module_name(path)
        edges = graph.setdefault(".".join(src), set())
        for target, _ in _imports(path):
            if target[0] == "unpaired" and target != src and src[:len(target)] != target:
                edges.add(".".join(target))
    return graph


def part_graph() -> Dict[str, Dict[str, Set[str]]]:
    """part -> imported part -> the importing modules; the root package (the public façade, which re-exports
    Translator lazily and is imported only for ``__version__``) is left out."""
    graph: Dict[str, Dict[str, Set[str]]] = {}
    for src, targets in module_graph().items():
        a = _part(src.split("."))
        if a == "unpaired":
            continue
        graph.setdefault(a, {})
        for target in targets:
            b = _part(target.split("."))
            if b not in (a, "unpaired"):
                graph[a].setdefault(b, set()).add(src)
    return graph


def cycles(graph) -> List[List[str]]:
    """Strongly connected components with more than one part (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_root_package_is_only_imported_for_its_version():
    for path in PACKAGE.rglob("*.py"):
        for target, names in _imports(path):
            if target == ["unpaired"]:
                assert set(names) <= {"__version__"}, f"{path}: takes {names} from the root package"


def test_no_import_cycles_between_parts():
    found = cycles(part_graph())
    assert not found, "import cycles between parts: " + "; ".join(" ⇄ ".join(c) for c in found)


def test_no_import_cycles_between_modules():
    found = cycles(module_graph())
    assert not found, "import cycles between modules: " + "; ".join(" ⇄ ".join(c) for c in found)


def test_files_are_short():
    long = {str(p.relative_to(PACKAGE.parent)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"files over {MAX_LINES} lines: {long}"


if __name__ == "__main__":  # print the graph and its cycles
    g = part_graph()
    for src in sorted(g):
        print(src, "->", ", ".join(sorted(g[src])))
    print("part cycles:", cycles(g))
    print("module cycles:", cycles(module_graph()))
