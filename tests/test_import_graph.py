"""The package has no import circles (issue 17), counting every import.

The graph is read from the source with `ast`, so it holds the imports inside
functions too (a lazy import hides a circle from Python's loader, not from the
design): `sed_meltingpot` must be layered. Only the imports inside a
module-level `def __getattr__` are left out: a module's lazily served names
(`game/__init__.py` serves `SEDGame` from `game/sed_game.py`) may point
anywhere. Pure `ast`, no heavy imports, so it runs in the default test run.
"""

from __future__ import annotations

import ast
import pathlib
from collections.abc import Iterator

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sed_meltingpot"

#: module -> {imported module of the same package: line numbers of the imports}
Graph = dict[str, dict[str, list[int]]]


def package_modules(package_dir: pathlib.Path) -> dict[str, pathlib.Path]:
    """Dotted module name -> file, for every .py file under `package_dir`."""
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = (package_dir.name, *path.relative_to(package_dir).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement at any depth, except inside a module-level `__getattr__`."""
    stack: list[ast.AST] = [node for node in tree.body
                            if not (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                                    and node.name == "__getattr__")]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _known_prefix(name: str, modules: dict[str, pathlib.Path]) -> str | None:
    """The longest prefix of `name` that is a module of the package (`a.b.X` -> `a.b`)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def import_graph(package_dir: pathlib.Path) -> Graph:
    """The package's import graph: relative imports resolved, `from pkg import sub`
    resolved to the submodule `pkg.sub`, `from pkg.mod import name` to `pkg.mod`.

    An import names its module, not the parent packages Python also initialises
    (`import pkg.a.b` -> `pkg.a.b`), so an `__init__` is a node only where it is
    imported itself.
    """
    modules = package_modules(package_dir)
    graph: Graph = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        edges: dict[str, list[int]] = {}
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str | None] = []
            if isinstance(node, ast.Import):
                targets = [_known_prefix(alias.name, modules) for alias in node.names]
            else:
                if node.level:
                    base_parts = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    targets.append(submodule if submodule in modules
                                   else _known_prefix(base, modules))
            for target in targets:
                if target is not None and target != module:
                    edges.setdefault(target, []).append(node.lineno)
        graph[module] = {target: sorted(set(lines)) for target, lines in edges.items()}
    return graph


def find_cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, {})):
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
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(components)


def describe(cycles: list[list[str]], graph: Graph) -> str:
    """Each cycle's modules and the edges among them, with the import lines."""
    lines = []
    for cycle in cycles:
        lines.append(f"cycle of {len(cycle)}: {', '.join(cycle)}")
        for a in cycle:
            for b, linenos in sorted(graph[a].items()):
                if b in cycle:
                    lines.append(f"    {a} -> {b} (line {', '.join(map(str, linenos))})")
    return "\n".join(lines)


def test_sed_meltingpot_has_no_import_cycle():
    graph = import_graph(PACKAGE)
    assert "sed_meltingpot.core.tax" in graph and "sed_meltingpot.runs.train_config" in graph
    cycles = find_cycles(graph)
    assert not cycles, "import cycles in sed_meltingpot:\n" + describe(cycles, graph)


def _write_package(root: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
    package = root / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, source in files.items():
        (package / name).write_text(source)
    return package


def test_the_detector_finds_cycles_through_function_and_submodule_imports(tmp_path):
    package = _write_package(tmp_path, {
        # a -> b through `from pkg import b` (the submodule, not pkg/__init__) ...
        "a.py": "from pkg import b\n",
        # ... and b -> a through a relative import inside a function.
        "b.py": "def later():\n    from . import a\n    return a\n",
        # c -> d inside a method, d -> c through `from pkg.c import NAME`.
        "c.py": "NAME = 1\n\nclass K:\n    def m(self):\n        import pkg.d\n",
        "d.py": "from pkg.c import NAME\n",
    })
    graph = import_graph(package)
    assert graph["pkg.a"] == {"pkg.b": [1]}
    assert graph["pkg.b"] == {"pkg.a": [2]}
    cycles = find_cycles(graph)
    assert cycles == [["pkg.a", "pkg.b"], ["pkg.c", "pkg.d"]]
    message = describe(cycles, graph)
    assert "pkg.b -> pkg.a (line 2)" in message and "pkg.c -> pkg.d (line 5)" in message


def test_the_detector_passes_a_layered_package_and_skips_getattr_shims(tmp_path):
    package = _write_package(tmp_path, {
        "low.py": "VALUE = 1\n",
        "mid.py": "from .low import VALUE\n\ndef f():\n    from pkg import low\n    return low\n",
        # top -> mid -> low; a name (not a submodule) from the package's __init__.
        "top.py": "import pkg.mid\nfrom pkg import mid, low\nfrom pkg import __doc__\n",
        # A compat shim pointing up: low2 -> shim is real, shim -> low2 is skipped.
        "low2.py": "from pkg import shim\n",
        "shim.py": "def __getattr__(name):\n    from pkg import low2\n    return low2\n",
    })
    graph = import_graph(package)
    assert graph["pkg.top"] == {"pkg.mid": [1, 2], "pkg.low": [2], "pkg": [3]}
    assert graph["pkg.mid"] == {"pkg.low": [1, 4]}
    assert graph["pkg.shim"] == {}
    assert find_cycles(graph) == []


# ------------------------------------------------------------------ layers
#: The package's folders from the bottom up (README Layout), a subpackage by its path
#: (`training/jax`). A module may import its own folder and the folders of lower ranks;
#: folders of one rank are siblings that do not import each other: the Lua game's envs/,
#: the JAX game world twin/ and the engine-neutral runs/; the two engines, training/jax
#: and training/rllib, which share only runs/ (and training/'s own __init__, which
#: imports nothing). design/ (the principal's algorithms above a trainer, issue 30) sits
#: above the engines and below evaluation: it drives a trainer, and the experiment
#: drives it. perf/ (the GPU check, the benchmarks) times everything below it.
LAYERS = {"core": 0, "game": 1, "envs": 2, "twin": 2, "runs": 2,
          "training": 3, "training/jax": 3, "training/rllib": 3, "design": 4,
          "evaluation": 5, "analysis": 6, "experiment": 7, "perf": 8}
TOP = 9  # the package's own top-level modules (cli.py, __init__)


def folder_of(module: str, layers: dict[str, int]) -> str:
    """The deepest folder of `layers` that holds `module`: `sed_meltingpot.game.kernel`
    -> `game`, `sed_meltingpot.training.jax.ppo` -> `training/jax`; a top-level module
    (or one in no listed folder) -> its own path."""
    parts = module.split(".")[1:]
    for end in range(len(parts), 0, -1):
        folder = "/".join(parts[:end])
        if folder in layers:
            return folder
    return "/".join(parts)


def layer_violations(graph: Graph, layers: dict[str, int], top: int) -> list[str]:
    """Every edge to a higher rank, or to a sibling folder of the same rank. Modules
    outside the folders (cli.py, the package's __init__) rank `top`; an import of the
    package's __init__ (or of `lua`/`substrates`, which live outside the package folder
    and resolve to it) is no edge: Python initialises it first."""
    found = []
    for module, edges in sorted(graph.items()):
        here = folder_of(module, layers)
        rank = layers.get(here, top)
        for target, lines in sorted(edges.items()):
            if "." not in target:
                continue
            there = folder_of(target, layers)
            target_rank = layers.get(there, top)
            sideways = target_rank == rank and there != here and rank != top
            if target_rank > rank or sideways:
                found.append(f"{module} (layer {here}) -> {target} (layer {there}), "
                             f"line {', '.join(map(str, lines))}")
    return found


def test_every_import_points_down_the_layers():
    graph = import_graph(PACKAGE)
    folders = {init.parent.relative_to(PACKAGE).as_posix()
               for init in PACKAGE.rglob("__init__.py") if init.parent != PACKAGE}
    assert folders == set(LAYERS), "a folder without a layer (or a layer without a folder)"
    found = layer_violations(graph, LAYERS, TOP)
    assert not found, "imports that point up or sideways:\n" + "\n".join(found)


def test_the_layer_check_catches_an_upward_and_a_sideways_import(tmp_path):
    package = tmp_path / "pkg"
    for folder, files in {"low": {"a.py": "from pkg.high import b\n"},
                          "high": {"b.py": "from pkg.low import a\n"},
                          "side": {"c.py": "from pkg.high import b\n"},
                          # Two sibling subpackages of one rank: x imports its
                          # sibling y (sideways), y imports low (down).
                          "high/x": {"d.py": "from pkg.high.y import e\n"},
                          "high/y": {"e.py": "from pkg.low import a\n"}}.items():
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("")
        for name, source in files.items():
            (package / folder / name).write_text(source)
    (package / "__init__.py").write_text("")
    graph = import_graph(package)
    layers = {"low": 0, "high": 1, "side": 1, "high/x": 1, "high/y": 1}
    assert folder_of("pkg.high.x.d", layers) == "high/x"
    assert folder_of("pkg.high.b", layers) == "high"
    found = layer_violations(graph, layers, 2)
    assert found == ["pkg.high.x.d (layer high/x) -> pkg.high.y.e (layer high/y), line 1",
                     "pkg.low.a (layer low) -> pkg.high.b (layer high), line 1",
                     "pkg.side.c (layer side) -> pkg.high.b (layer high), line 1"]
