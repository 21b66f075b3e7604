"""The import graph of fishopt's own modules has no cycle (module-level and in-function imports alike)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "fishopt"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py") if "templates" not in p.parts}


def _type_checking_lines(tree: ast.AST) -> set[int]:
    """Lines inside ``if TYPE_CHECKING:`` blocks (not imported at run time)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _imports(path: Path, known: set[str]) -> list[tuple[str, bool]]:
    """(imported fishopt module, inside a function) for every import statement of ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_lines(tree)
    in_function: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            in_function.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    out = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module for a in node.names]
        for target in targets:
            if target.split(".")[0] != "fishopt":
                continue
            # importing a.b.c runs a/__init__ and a/b/__init__ too
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                name = ".".join(parts[:i])
                if name in known:
                    out.append((name, node.lineno in in_function))
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for target, _ in _imports(path, known):
            if target != name and not name.startswith(target + "."):  # a package's own __init__ is not an edge
                graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle() -> None:
    cycles = _cycles(_graph())
    assert not cycles, f"import cycles between fishopt modules: {cycles}"


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


#: In-function imports of fishopt modules that are there by design (module -> imported module, why).
_NO_TORCH = "a server of an ONNX Runtime or OpenVINO artifact never imports torch (its threads would compete)"
LATE_BY_DESIGN = {
    ("fishopt.artifacts.registry", "fishopt.backends"): "plugin discovery: the backends register themselves in the "
                                                        "registry, so the registry finds them at first use",
    ("fishopt.serve.model", "fishopt.artifacts"): _NO_TORCH,
    ("fishopt.serve.model", "fishopt.artifacts.registry"): _NO_TORCH,
    ("fishopt.serve.model", "fishopt.data"): _NO_TORCH,
    ("fishopt.serve.model", "fishopt.data.preprocess"): _NO_TORCH,
    ("fishopt.serve.model", "fishopt.deploy"): _NO_TORCH,
    ("fishopt.serve.model", "fishopt.deploy.targets"): _NO_TORCH,
}
_WORKER = ("a benchmark worker of an ONNX Runtime or OpenVINO variant never imports torch (its OpenMP threads would "
           "compete with the runtime's): what needs torch is imported where it is used")
LATE_BY_DESIGN.update({(module, target): _WORKER for module in ("fishopt.benchmarks.workers", "fishopt.benchmarks.camera")
                       for target in ("fishopt.artifacts", "fishopt.artifacts.registry", "fishopt.benchmarks",
                                      "fishopt.benchmarks.profile", "fishopt.benchmarks.roofline", "fishopt.data",
                                      "fishopt.data.decode", "fishopt.data.preprocess")})


def test_light_modules_are_imported_at_module_level() -> None:
    """fishopt's own modules are imported at module level (readers see the dependencies), except in the CLI
    (lazy commands keep ``--help`` instant) and where :data:`LATE_BY_DESIGN` says why."""
    modules = _modules()
    known = set(modules)
    late = sorted({f"{name} -> {target}" for name, path in modules.items() if not name.startswith("fishopt.cli")
                   for target, inside in _imports(path, known)
                   if inside and target != "fishopt" and (name, target) not in LATE_BY_DESIGN})
    assert not late, f"fishopt modules imported inside functions outside the CLI: {late}"
