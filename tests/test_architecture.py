"""The import direction of the package, read from the source with ``ast`` (every import
statement, also those inside functions):

    cli -> experiments -> {runner, evaluation, detection} -> {proposals, data} -> core -> models

plus the utilities every layer may use (io, paths, profiling, progress, resources, registry, store,
visualize), which import nothing above them. Nothing imports the cli; the core imports only
``stl.models.base``, ``stl.io``, ``stl.profiling`` and ``stl.progress`` from the rest of the package;
no import cycles. See docs/architecture.md."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set


import stl

PACKAGE = Path(stl.__file__).resolve().parent

#: layer of each top-level part of the package (higher may import lower or equal, never higher)
LAYERS = {
    "__init__": 0, "errors": 0, "io": 0, "paths": 0, "profiling": 0, "progress": 0, "resources": 0, "registry": 0,
    "store": 0, "visualize": 0,
    "models": 1,
    "core": 2,
    "proposals": 3, "data": 3, "wsol": 3,
    "runner": 4, "evaluation": 4, "detection": 4, "executors": 4, "export": 4,
    "experiments": 5,
    "cli": 6,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> Dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(name: str, path: Path, modules) -> Set[str]:
    """The stl modules ``name`` imports (``from X import Y``: X.Y if that is a module, else X)."""
    is_pkg = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "stl"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                src = ".".join(base + ([node.module] if node.module else []))
            else:
                src = node.module or ""
            if src.split(".")[0] != "stl":
                continue
            for a in node.names:
                sub = f"{src}.{a.name}"
                out.add(sub if sub in modules else src)
    return out


def graph() -> Dict[str, Set[str]]:
    modules = all_modules()
    return {m: {t for t in imports_of(m, p, modules) if t != m} for m, p in modules.items()}


def part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer_violations(g) -> List[str]:
    bad = []
    for m, targets in g.items():
        for t in targets:
            if t not in g and t != "stl":
                bad.append(f"{m} imports {t}, which does not exist")
                continue
            if LAYERS[part(t)] > LAYERS[part(m)]:
                bad.append(f"{m} (layer {part(m)}) imports {t} (layer {part(t)})")
    return sorted(bad)


def cycles(g) -> List[List[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in g:
                continue
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


def test_every_module_belongs_to_a_layer():
    assert {part(m) for m in all_modules()} <= set(LAYERS), set(map(part, all_modules())) - set(LAYERS)


def test_imports_point_down_the_layers():
    assert layer_violations(graph()) == []


def test_nothing_imports_the_cli():
    g = graph()
    assert sorted(m for m, ts in g.items() if part(m) != "cli" and any(part(t) == "cli" for t in ts)) == []


def test_the_core_imports_only_the_model_interface_and_io():
    g = graph()
    allowed = {"stl.io", "stl.models.base", "stl.profiling", "stl.progress"}
    assert {m: sorted(t for t in ts if part(t) != "core" and t not in allowed)
            for m, ts in g.items() if part(m) == "core" and any(part(t) != "core" and t not in allowed for t in ts)
            } == {}


def test_no_import_cycles():
    assert cycles(graph()) == []


# -- the checker itself catches what it should (synthetic graphs) -----------------------------------
def test_checker_finds_an_upward_import_and_a_cycle():
    g = {"stl.core.boxes": {"stl.runner"}, "stl.runner": {"stl.core.boxes"}, "stl.models.base": set()}
    assert layer_violations(g) == ["stl.core.boxes (layer core) imports stl.runner (layer runner)"]
    assert cycles(g) == [["stl.core.boxes", "stl.runner"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_imports_are_resolved_relative_and_inside_functions(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("from ..core import boxes\nfrom ..io import read_image\n"
                   "def f():\n    from ..runner import run_method\n    import stl.cli\n")
    mods = {"stl.core.boxes": None, "stl.io": None, "stl.runner": None, "stl.cli": None}
    assert imports_of("stl.detection.m", src, mods) == {"stl.core.boxes", "stl.io", "stl.runner", "stl.cli"}


def test_run_files_are_named_by_the_model_spec_run_name():
    """Every command names its run files by ``ModelSpec.run_name`` (Lite0 on --engine onnx is
    ``efficientnet_lite0_onnx``: its windows differ from the torch engine's by float rounding, so
    the two must never share a run file); ``str(model)`` / ``model.name`` drop the engine."""
    import re

    from stl.models.spec import ModelSpec

    assert ModelSpec(engine="onnx").run_name == "efficientnet_lite0_onnx"
    assert ModelSpec().run_name == "efficientnet_lite0"
    bad = re.compile(r"(run_path|stored_run|run_method|run_ablation|run_gallery|run_fig4|variant_path)\(.*"
                     r"(str\(model\)|model\.name\b)|self\.model = opts\.model\.name")
    hits = [f"{p.relative_to(PACKAGE.parent)}:{k + 1}" for p in sorted(PACKAGE.rglob("*.py"))
            for k, line in enumerate(p.read_text().splitlines()) if bad.search(line)]
    assert not hits, hits
