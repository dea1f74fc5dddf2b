"""The layers of mullui, written once, and the proof that imports follow them.

Every module under ``mullui/`` is read as source (its AST: imports inside functions and
under ``TYPE_CHECKING`` count too) and placed in one layer.  A module may import its own
layer and the layers below it, never one above, and no chain of imports may lead back to
where it started.  docs/architecture.md explains the picture.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "mullui"

#: Top to bottom.  A module belongs to the layer of the longest prefix naming it.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "face",
        (
            "mullui.__main__",
            "mullui.cli",
            "mullui.tui",
            "mullui.demo",
            "mullui.workspace",
            "mullui.remote.cli",
        ),
    ),
    ("loop", ("mullui.supervisor", "mullui.watch", "mullui.loop", "mullui.config_follow")),
    (
        "work",
        (
            "mullui.queue",
            "mullui.review",
            "mullui.report",
            "mullui.ledger",
            "mullui.radar",
            "mullui.remote.mirror",
        ),
    ),
    ("operations", ("mullui.operations", "mullui.remote.dispatch", "mullui.logs")),
    ("context", ("mullui.context",)),
    (
        "parts",
        (
            "mullui.runtime",
            "mullui.agents",
            "mullui.notify",
            "mullui.collisions",
            "mullui.guard",
            "mullui.remote",
            "mullui.hook",
            "mullui.rawspool",
            "mullui.fasthook",
            "mullui.autostart",
            "mullui.presence",
            "mullui.journal",
            "mullui.history",
            "mullui.events",
            "mullui.store",
            "mullui.reducer",
            "mullui.usage",
        ),
    ),
    (
        "core",
        (
            "mullui",
            "mullui.model",
            "mullui.config",
            "mullui.paths",
            "mullui.errors",
            "mullui.files",
            "mullui.placeholders",
            "mullui.textsafe",
        ),
    ),
)
RANK = {name: i for i, (name, _) in enumerate(LAYERS)}  # 0 = top


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py")) if "__pycache__" not in p.parts}


def layer_of(module: str) -> str:
    best, best_len = None, -1
    for name, prefixes in LAYERS:
        for prefix in prefixes:
            # "mullui" names the package's own __init__, not everything in it.
            hit = module == prefix or (prefix != "mullui" and module.startswith(prefix + "."))
            if hit and len(prefix) > best_len:
                best, best_len = name, len(prefix)
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")
    return best


def imports_of(module: str, path: Path, known: set[str]) -> dict[str, int]:
    """The mullui modules ``module`` imports, each with the line of its first import."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: dict[str, int] = {}

    def add(target: str, line: int) -> None:
        if target in known and target != module:
            found.setdefault(target, line)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:
                # `from mullui import radar` imports the module mullui.radar, `from
                # mullui.model import Agent` the module mullui.model.
                sub = f"{source}.{alias.name}"
                add(sub if sub in known else source, node.lineno)
    return found


def graph() -> dict[str, dict[str, int]]:
    mods = all_modules()
    known = set(mods)
    return {m: imports_of(m, p, known) for m, p in mods.items()}


def cycles(g: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, {}):
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

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_every_module_is_in_a_layer() -> None:
    for m in all_modules():
        layer_of(m)


def test_no_import_points_up_a_layer() -> None:
    g = graph()
    up = [
        f"{m} ({layer_of(m)}) line {line} imports {t} ({layer_of(t)})"
        for m, targets in sorted(g.items())
        for t, line in sorted(targets.items())
        if RANK[layer_of(t)] < RANK[layer_of(m)]
    ]
    assert not up, "imports pointing up a layer:\n" + "\n".join(up)


#: None: the store's raw-spool translation lives in mullui.rawspool, below the store.
KNOWN_CYCLES: list[list[str]] = []


def test_no_import_cycle_among_mullui_modules() -> None:
    found = [c for c in cycles(graph()) if c not in KNOWN_CYCLES]
    assert not found, "import cycles (function-level imports count):\n" + "\n".join(
        " <-> ".join(c) for c in found
    )


def test_the_checker_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "mullui" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from mullui.pkg import b\n")
    (pkg / "b.py").write_text("from . import a\n")
    known = {"mullui.pkg", "mullui.pkg.a", "mullui.pkg.b"}
    g = {
        "mullui.pkg.a": imports_of("mullui.pkg.a", pkg / "a.py", known),
        "mullui.pkg.b": imports_of("mullui.pkg.b", pkg / "b.py", known),
    }
    assert g == {"mullui.pkg.a": {"mullui.pkg.b": 2}, "mullui.pkg.b": {"mullui.pkg.a": 1}}
    assert cycles(g) == [["mullui.pkg.a", "mullui.pkg.b"]]


def test_only_the_tui_imports_textual() -> None:
    def textual(path: Path) -> list[int]:
        lines = []
        for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in n.names] if isinstance(n, ast.Import) else []
            if isinstance(n, ast.ImportFrom) and not n.level:
                names = [n.module or ""]
            if any(x == "textual" or x.startswith("textual.") for x in names):
                lines.append(n.lineno)
        return lines

    wrong = [
        f"{m} line {line}"
        for m, p in all_modules().items()
        if not (m == "mullui.tui" or m.startswith("mullui.tui."))
        for line in textual(p)
    ]
    assert not wrong, "Textual outside mullui.tui: " + ", ".join(wrong)
