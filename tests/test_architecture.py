"""The package's dependency order, checked over the import graph (every import, also the ones inside
functions: a lazy import still couples two modules).

Layers, lowest first; a module may import its own layer and the ones below it:

0. the base: ``guienv``'s own modules (actions, frames, spaces, errors, types, geometry, io,
   config, draw, parsing, prompts, chat, vlm, registration)
1. ``emulator``   2. ``tasks``   3. ``rewards``
4. ``agents`` and ``guienv.envs``, siblings that never import each other
5. ``guienv.run``, the application (CLI, training loop, evaluation, report, scoring CLI)

No import cycle remains between modules, at any layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("guienv", "emulator", "tasks", "rewards", "agents")


def layer(module: str) -> int:
    if module == "guienv.__main__":  # ``python -m guienv`` runs the CLI
        return 5
    if module == "guienv.run" or module.startswith("guienv.run."):
        return 5
    if module == "guienv.envs" or module.startswith("guienv.envs."):
        return 4
    top = module.split(".")[0]
    return {"guienv": 0, "emulator": 1, "tasks": 2, "rewards": 3, "agents": 4}[top]


def sibling(module: str) -> str:
    return "envs" if module.startswith("guienv.envs") else module.split(".")[0]


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
            for t in targets:
                # the deepest project module the import names
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != name:
                    graph[name].add(t)
    return graph


def test_every_import_goes_down_the_layers():
    bad = []
    for a, targets in import_graph().items():
        for b in targets:
            la, lb = layer(a), layer(b)
            if b == "guienv" and la > 0:
                continue  # the package root (``import guienv`` registers env ids) is not a layer of its own
            if lb > la or (la == lb == 4 and sibling(a) != sibling(b)):
                bad.append(f"{a} (layer {la}) imports {b} (layer {lb})")
    assert not bad, "imports against the layer order:\n" + "\n".join(sorted(bad))


def test_no_import_cycles():
    graph = import_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
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
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("pkg", PACKAGES + ("guienv.envs", "guienv.run"))
def test_packages_declare_public_api(pkg):
    init = ROOT.joinpath(*pkg.split("."), "__init__.py")
    tree = ast.parse(init.read_text(encoding="utf-8"))
    names = [t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)]
    assert "__all__" in names, f"{init.relative_to(ROOT)} declares no __all__"


def test_tests_mirror_the_package_tree():
    """Each test file sits in the folder of the package it tests (``tests/guienv/envs/`` for
    ``guienv/envs/``); only this whole-tree check lives at the top."""
    stray = []
    for path in (ROOT / "tests").rglob("test_*.py"):
        rel = path.relative_to(ROOT / "tests").parent
        if rel == Path("."):
            if path.name != "test_architecture.py":
                stray.append(str(path.relative_to(ROOT)))
        elif not (ROOT / rel / "__init__.py").exists():
            stray.append(str(path.relative_to(ROOT)))
    assert not stray, f"test files outside the mirrored tree: {stray}"
