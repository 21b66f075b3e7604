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
            targets = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module for a in node.names
            ]
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
#: Third-party packages whose import is expensive (or starts thread pools): importing them lazily is a choice.
HEAVY = (
    "torch",
    "onnxruntime",
    "openvino",
    "nncf",
    "neural_compressor",
    "torchao",
    "tensorrt",
    "kornia",
    "pytorch_lightning",
    "lightning",
    "scipy",
    "cv2",
    "skimage",
    "corrupt_tta",
    "matplotlib",
    "fastapi",
    "uvicorn",
    "starlette",
    "prometheus_client",
    "aiohttp",
    "onnx",
    "polygraphy",
    "hydra",
    "pydantic",
)

#: In-function imports of light fishopt modules that are there by design (module -> imported module, why).
LATE_BY_DESIGN = {
    ("fishopt.artifacts.registry", "fishopt.backends"): "plugin discovery: the backends register themselves in the "
    "registry, so the registry finds them at first use",
}


def _heavy_modules() -> set[str]:
    """fishopt modules whose import (module-level, transitively) imports a :data:`HEAVY` package."""
    modules = _modules()
    known = set(modules)
    direct: dict[str, bool] = {}
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_lines(tree)
        heavy = False
        for node in tree.body:
            if getattr(node, "lineno", None) in skip or not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            heavy |= any(n.split(".")[0] in HEAVY for n in names)
        direct[name] = heavy
        edges[name] = {t for t, inside in _imports(path, known) if not inside and t != name}
    heavy_set = {n for n, h in direct.items() if h}
    changed = True
    while changed:
        changed = False
        for name, targets in edges.items():
            if name not in heavy_set and targets & heavy_set:
                heavy_set.add(name)
                changed = True
    return heavy_set


def test_light_modules_are_imported_at_module_level() -> None:
    """fishopt's own light modules are imported at module level (readers see the dependencies). Importing a fishopt
    module that pulls a heavy package (torch, a runtime, a web stack) inside a function is a choice that keeps the
    importer lean (the CLI's ``--help``, a server or benchmark worker of an ONNX Runtime/OpenVINO artifact that must
    not start torch's threads); :data:`LATE_BY_DESIGN` lists the other exceptions with their reason."""
    modules = _modules()
    known = set(modules)
    heavy = _heavy_modules()
    packages = {p for p in known if any(m.startswith(p + ".") for m in known)}  # their leaves are what is imported
    late = sorted(
        {
            f"{name} -> {target}"
            for name, path in modules.items()
            if not name.startswith("fishopt.cli")
            for target, inside in _imports(path, known)
            if inside and target not in heavy and target not in packages and (name, target) not in LATE_BY_DESIGN
        }
    )
    assert not late, f"light fishopt modules imported inside functions outside the CLI: {late}"


def test_heavy_module_detection() -> None:
    heavy = _heavy_modules()
    assert "fishopt.checkpoint" in heavy and "fishopt.backends.torch.runtime" in heavy
    assert "fishopt.errors" not in heavy and "fishopt.io" not in heavy
