"""The architecture's import rules: one table of packages in the flow's order, no import cycle, and
the heavy stacks kept out of the processes that must not load them (checked in fresh interpreters)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

# The packages in the order data flows through nstd, each with what it is for. A package may import
# the root `nstd` (its version), itself and the packages above it, never one below: imports run one way.
LAYERS = [
    ("nstd.engine", "the painting maths: tensors and PIL images in, an image and a loss trace out"),
    ("nstd.core", "the shared vocabulary: errors, job types, names, images, safe opens, logs"),
    ("nstd.samples", "generated pictures: the demo's photos and style, `nstd init`'s styles"),
    ("nstd.config", "YAML -> a validated, resolved Config"),
    ("nstd.store", "the SQLite state: queue, inputs, results, reports"),
    ("nstd.ops", "the daemon's instruments: metrics, notifications, health, sd_notify, pause and hours"),
    ("nstd.outbox", "what lands in the folders: results, thumbnails, plots, filed inputs"),
    ("nstd.intake", "inbox -> jobs: walking, watching, settling, inspecting, rules"),
    ("nstd.work", "jobs -> paintings: the worker child, its supervisor, the redis backend"),
    ("nstd.review", "what people see and ask for: gallery, web app, status, re-runs"),
    ("nstd.daemon", "composes intake, work, filing, ops and the gallery"),
    ("nstd.stylize", "`nstd stylize`: one picture, no daemon"),
    ("nstd.starter", "`nstd init`: a folder laid out as config.example.yaml says"),
    ("nstd.demo", "`nstd demo`: a workspace with generated pictures"),
    ("nstd.cli", "the commands; the only place that turns errors into exit codes"),
    ("nstd.reference", "the docs' reference pages, generated from the config schema and the parser"),
    ("nstd.__main__", "python -m nstd"),
]
NSTD = ROOT / "nstd"


def layer_of(module: str) -> int:
    for i, (name, _) in enumerate(LAYERS):
        if module == name or module.startswith(name + "."):
            return i
    raise AssertionError(f"{module} belongs to no layer: add its package to LAYERS")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str, root: Path = ROOT) -> bool:
    base = root / name.replace(".", "/")
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(path: Path, root: Path = ROOT) -> set[str]:
    """Every nstd module this file imports, at any depth of the code (type-checking imports too)."""
    me = module_name(path, root)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "nstd"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "nstd":
                continue
            subs = [f"{target}.{a.name}" for a in node.names if is_module(f"{target}.{a.name}", root)]
            found |= set(subs) if subs and len(subs) == len(node.names) else {target, *subs}
    return {m for m in found if m != me}


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(NSTD.rglob("*.py"))}


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    return [f"{m} ({LAYERS[layer_of(m)][0]}) imports {d} ({LAYERS[layer_of(d)][0]})"
            for m, deps in edges.items() if m != "nstd"
            for d in sorted(deps) if d != "nstd" and layer_of(d) > layer_of(m)]


def cycles_in(edges: dict[str, set[str]]) -> list[list[str]]:
    cycles, state = [], {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = "open"
        for d in sorted(edges.get(m, ())):
            if state.get(d) == "open":
                cycles.append(path[path.index(d):] + [d])
            elif d not in state:
                visit(d, path + [d])
        state[m] = "done"

    for m in edges:
        if m not in state:
            visit(m, [m])
    return cycles


def test_every_package_imports_only_the_layers_above_it():
    edges = graph()
    assert edges["nstd.daemon"] & {"nstd.store", "nstd.intake.intake"}  # the graph sees real imports
    assert upward_imports(edges) == []


def test_no_import_cycle_anywhere():
    assert cycles_in(graph()) == []


def test_the_table_knows_every_package():
    for path in NSTD.rglob("*.py"):
        if module_name(path) != "nstd":
            layer_of(module_name(path))


def test_the_checks_catch_what_they_are_for(tmp_path):
    # Checks that cannot fail are no checks: an upward import and a cycle must be reported.
    fake = tmp_path / "nstd" / "store"
    fake.mkdir(parents=True)
    (fake / "bad.py").write_text("from nstd.daemon import Daemon\n")
    assert "nstd.daemon" in imports_of(fake / "bad.py", root=tmp_path)
    assert upward_imports({"nstd.store.bad": {"nstd.daemon"}}) == [
        "nstd.store.bad (nstd.store) imports nstd.daemon (nstd.daemon)"]
    assert cycles_in({"nstd.engine.a": {"nstd.engine.b"}, "nstd.engine.b": {"nstd.engine.a"}}) == [
        ["nstd.engine.a", "nstd.engine.b", "nstd.engine.a"]]


def loaded_after(statement: str, names: list[str]) -> list[str]:
    code = f"import sys, json; {statement}; print(json.dumps([n for n in {names!r} if n in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout)


def test_engine_knows_nothing_of_folders_queues_yaml_or_logging():
    from nstd.engine import Engine  # noqa: F401  (the engine really imports)
    banned = ["watchdog", "yaml", "sqlite3", "structlog", "pydantic", "nstd.config", "nstd.store",
              "nstd.daemon", "nstd.intake", "nstd.outbox", "nstd.core"]
    assert loaded_after("from nstd.engine import Engine, TransferParams, StyleImage", banned) == []


def test_daemon_knows_nothing_of_tensors():
    assert loaded_after("import nstd.daemon, nstd.cli", ["torch", "torchvision", "nstd.engine.transfer"]) == []


def test_watching_and_inspecting_need_no_config_stack():
    banned = ["pydantic", "yaml", "torch", "nstd.config", "nstd.store"]
    assert loaded_after("import nstd.intake.inbox, nstd.intake.walker, nstd.intake.inspector, nstd.core.fileids",
                        banned) == []


def test_the_worker_needs_neither_the_store_nor_the_gallery_nor_the_config_stack():
    statement = "import nstd.work.worker, nstd.outbox.thumbs, nstd.outbox.files, nstd.outbox.lossplot"
    assert loaded_after(statement, ["sqlite3", "nstd.store", "nstd.review", "nstd.stylize", "pydantic",
                                    "yaml", "watchdog"]) == []


def test_the_daemon_never_imports_the_web_stack():
    web = ["starlette", "uvicorn", "sse_starlette", "multipart", "python_multipart", "nstd.review.web.app"]
    assert loaded_after("import nstd.daemon, nstd.cli, nstd.review.status", web) == []


def test_the_web_app_and_the_metrics_never_import_torch():
    assert loaded_after("import nstd.review.web.app, nstd.review.web.actions, nstd.review.web.events, nstd.ops.metrics",
                        ["torch", "torchvision", "nstd.engine.transfer", "nstd.work.worker"]) == []


def test_no_import_cycle_among_the_benchmarks():
    """bench/ scripts share code through bench/judge.py; none imports one that imports it back
    (quality.py and varied.py once did)."""
    bench = ROOT / "bench"
    names = {p.stem for p in bench.glob("*.py")}
    edges = {}
    for path in bench.glob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):  # imports inside functions count too
            if isinstance(node, ast.ImportFrom) and node.module in names and node.level == 0:
                found.add(f"nstd.bench.{node.module}")
            elif isinstance(node, ast.Import):
                found |= {f"nstd.bench.{a.name}" for a in node.names if a.name in names}
        edges[f"nstd.bench.{path.stem}"] = found
    assert edges["nstd.bench.varied"] == {"nstd.bench.judge"}  # the graph sees real imports
    assert cycles_in(edges) == []


def test_no_class_is_over_250_lines():
    """Small modules with one owner each: a class past this has more than one job (Daemon and Intake were)."""
    long = []
    for path in NSTD.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > 250:
                long.append(f"{module_name(path)}.{node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert long == []
