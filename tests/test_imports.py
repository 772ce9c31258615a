"""Imports inside helpers/ flow one way: no module imports one that imports it back.

Every import counts, a function-level (lazy) one too: a lazy import that closes a circle
is still a circle, only hidden until the call.
"""
import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "helpers"

# Lowest first. A module may import from its own layer or any lower one, never a higher one.
LAYERS = [
    {"errors", "files", "config", "stats", "provenance"},
    {"model", "data", "augment", "schedule", "checkpoint"},
    {"loaders", "train", "lr_finder", "loop"},
    {"plots", "gradcam", "report"},
    {"run", "sweep", "compare"},
    {"notebook", "cli", "__main__", "__init__"},
]


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:  # from .x import y
                found.add(node.module.split(".")[0])
            elif node.level == 1:  # from . import x, y
                found.update(a.name for a in node.names)
            elif node.module and node.module.split(".")[0] == "helpers":
                parts = node.module.split(".")
                found.update([parts[1]] if len(parts) > 1 else [a.name for a in node.names])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names
                         if a.name.startswith("helpers.") and a.name.count(".") >= 1)
    return found


def graph() -> dict[str, set[str]]:
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    return {p.stem: imports_of(p) & modules - {p.stem} for p in PACKAGE.glob("*.py")}


def find_cycle(g: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str]:
        state[m] = 1
        stack.append(m)
        for n in sorted(g.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (c := visit(n)):
                return c
        state[m] = 2
        stack.pop()
        return []

    for m in sorted(g):
        if m not in state and (c := visit(m)):
            return c
    return []


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_in_helpers():
    cycle = find_cycle(graph())
    assert not cycle, " -> ".join(cycle)


def test_every_module_has_a_layer_and_imports_only_downwards():
    layer = {m: i for i, ms in enumerate(LAYERS) for m in ms}
    g = graph()
    assert set(g) <= set(layer), f"give these modules a layer: {sorted(set(g) - set(layer))}"
    upward = [f"{m} -> {n}" for m, deps in g.items() for n in deps if layer[n] > layer[m]]
    assert not upward, upward


def test_the_product_never_imports_the_lab_and_nothing_edits_sys_path():
    """helpers/ (the product) never imports benchmarks/ (the lab, run as python -m benchmarks.NAME),
    and neither reaches the other through sys.path edits."""
    root = PACKAGE.parent
    for p in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom) else
                     [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            assert not any(n.split(".")[0] == "benchmarks" for n in names), f"{p.name} imports benchmarks"
    for p in [*PACKAGE.glob("*.py"), *(root / "benchmarks").glob("*.py")]:
        assert "sys.path" not in p.read_text(), f"{p.relative_to(root)} edits sys.path"


def test_the_design_docs_module_table_names_every_module():
    root = Path(__file__).parents[1]
    design = (root / "docs" / "DESIGN.md").read_text()
    table = design[design.index("## What is in the package"):design.index("## Design notes")]
    missing = [p.name for p in (root / "helpers").glob("*.py")
               if not p.name.startswith("__") and f"`{p.name}`" not in table]
    assert not missing, f"docs/DESIGN.md's module table lacks {missing}"
