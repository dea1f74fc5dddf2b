"""The TUI's own layers (issue 13): app on top; the palette and the change feed; the
screens and their flows; then what screens share (host, messages, widgets) and the
helpers.  Every import counts, inside functions and under ``TYPE_CHECKING`` too: no
module imports one above it, so no cycle can form (screens reach the app by messages)."""

from __future__ import annotations

import ast
from pathlib import Path

import mullui.tui

TUI = Path(mullui.tui.__file__).parent

#: Highest first; a module may import only modules of a lower layer (widgets also use
#: one another).
LAYERS: list[set[str]] = [
    {"__main__"},
    {"app"},
    {"commands", "feed", "focus"},
    {"screens.*"},
    {"host", "messages", "widgets.*"},
    {"adapter", "themes"},
    {"cells", "log_lines"},
    {"literal"},
]
SAME_LAYER_OK = {"widgets.*"}


def module_name(path: Path) -> str:
    rel = path.relative_to(TUI).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts) or "__init__"


def layer_of(name: str) -> tuple[int, str]:
    for i, layer in enumerate(LAYERS):
        for pattern in layer:
            if name == pattern or (pattern.endswith(".*") and name.startswith(pattern[:-1])):
                return i, pattern
    raise AssertionError(f"mullui.tui.{name} is in no layer: add it to LAYERS")


def tui_imports(path: Path) -> set[str]:
    """The mullui.tui modules ``path`` imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for n in names:
            if n.startswith("mullui.tui."):
                mod = n.removeprefix("mullui.tui.")
                if (TUI / f"{mod.replace('.', '/')}.py").exists():
                    found.add(mod)
    return found


def test_every_tui_import_points_down() -> None:
    modules = {module_name(p): p for p in TUI.rglob("*.py") if p.name != "__init__.py"}
    assert {"app", "commands", "feed", "host", "messages"} <= set(modules)
    wrong = []
    for name, path in sorted(modules.items()):
        mine, pattern = layer_of(name)
        for dep in sorted(tui_imports(path)):
            theirs, dep_pattern = layer_of(dep)
            same_ok = pattern in SAME_LAYER_OK and dep_pattern == pattern
            if theirs < mine or (theirs == mine and not same_ok):
                wrong.append(f"mullui.tui.{name} imports mullui.tui.{dep}")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle_in_the_tui() -> None:
    graph = {
        module_name(p): tui_imports(p) - {module_name(p)}
        for p in TUI.rglob("*.py")
        if p.name != "__init__.py"
    }
    seen: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            raise AssertionError("import cycle: " + " -> ".join([*path, node]))
        if node in seen:
            return
        for dep in graph.get(node, ()):
            visit(dep, [*path, node])
        seen.add(node)

    for node in graph:
        visit(node, [])
