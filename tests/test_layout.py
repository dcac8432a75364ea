"""The package's layout holds: imports point one way (floors, as docs/layout.md draws them), no circles,
small packages whose ``__init__`` says what they hold, and no gradio below the page."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "resfpn"
# Lowest first; a module may import from its own floor and the floors below (docs/layout.md).
FLOORS = ["formatting", "model", "shapes", "weights", "serving", "share", "analysis", "figures", "cli"]
TOP = {"__init__", "__main__"}  # the package's front door re-exports names from every floor


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, text: str | None = None) -> set[str]:
    """Absolute names of the resfpn modules ``path`` (or ``text`` as if it were that file) imports."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    source = path.read_text(encoding="utf-8") if text is None else text
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("resfpn"):
                found.add(target)
                found.update(f"{target}.{a.name}" for a in node.names if is_module(f"{target}.{a.name}"))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("resfpn"))
    return found


def is_module(name: str) -> bool:
    where = ROOT.joinpath(*name.split("."))
    return where.with_suffix(".py").exists() or (where / "__init__.py").exists()


def upward_imports(path: Path, text: str | None = None) -> list[str]:
    here = floor(module_name(path))
    assert here is not None, f"{path} sits on no floor: add its package to FLOORS and docs/layout.md"
    return sorted(m for m in imported_modules(path, text) if floor(m) and FLOORS.index(floor(m)) > FLOORS.index(here))


def floor(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in FLOORS else None


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_imports_point_down(path):
    if path.stem in TOP and path.parent == PACKAGE:
        return
    above = upward_imports(path)
    assert not above, f"{module_name(path)} imports from higher floors: {above}"


def test_no_circles_between_modules():
    graph = {module_name(p): {m for m in imported_modules(p) if m != module_name(p)} for p in SOURCES
             if not (p.stem in TOP and p.parent == PACKAGE)}
    graph = {k: {m for m in v if m in graph and not m.endswith("resfpn")} for k, v in graph.items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path + [nxt]
            if nxt not in state and (cycle := visit(nxt, path + [nxt])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [start])
            assert cycle is None, f"import circle: {' -> '.join(cycle)}"


@pytest.mark.parametrize("package", sorted(p for p in PACKAGE.iterdir() if (p / "__init__.py").exists()),
                         ids=lambda p: p.name)
def test_packages_are_small_and_say_what_they_hold(package):
    modules = [p for p in package.glob("*.py") if p.name != "__init__.py"]
    assert len(modules) <= 12, f"{package.name}/ holds {len(modules)} modules: split it"
    init = ast.parse((package / "__init__.py").read_text(encoding="utf-8"))
    doc = ast.get_docstring(init)
    assert doc and len(doc.splitlines()) == 1, f"{package.name}/__init__.py: one line saying what it holds"
    assert package.name in FLOORS, f"{package.name}/ is on no floor: add it to FLOORS and docs/layout.md"
    assert f"`resfpn/{package.name}/`" in (ROOT / "docs" / "layout.md").read_text(encoding="utf-8")


def test_the_library_never_imports_gradio():
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not any(n.split(".")[0] in ("gradio", "gradio_client") for n in names), path


def test_the_checker_sees_an_upward_import_and_a_circle():
    """Both checks can fail: a model module importing the engine, and the old cli <-> compare_cli circle."""
    probe = PACKAGE / "model" / "probe.py"
    assert upward_imports(probe, "from ..serving.engine import Engine\n") == ["resfpn.serving.engine"]
    assert upward_imports(probe, "from . import add\nfrom ..formatting import format_shape\n") == []
