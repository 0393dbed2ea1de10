"""The architecture's import rules, checked in fresh interpreters."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT


def loaded_after(statement: str, names: list[str]) -> list[str]:
    code = f"import sys, json; {statement}; print(json.dumps([n for n in {names!r} if n in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout)


def test_engine_knows_nothing_of_folders_queues_yaml_or_logging():
    from nstd.engine import Engine  # noqa: F401  (the engine really imports)
    banned = ["watchdog", "yaml", "sqlite3", "structlog", "pydantic", "nstd.config", "nstd.store",
              "nstd.daemon", "nstd.inbox", "nstd.outbox"]
    assert loaded_after("from nstd.engine import Engine, TransferParams, StyleImage", banned) == []


def test_daemon_knows_nothing_of_tensors():
    assert loaded_after("import nstd.daemon, nstd.cli", ["torch", "torchvision", "nstd.engine.transfer"]) == []


def test_watching_and_inspecting_need_no_config_stack():
    banned = ["pydantic", "yaml", "torch", "nstd.config", "nstd.store"]
    assert loaded_after("import nstd.inbox, nstd.walker, nstd.inspector, nstd.fileids", banned) == []


def test_the_worker_needs_neither_the_store_nor_the_gallery_nor_the_config_stack():
    statement = "import nstd.worker, nstd.thumbs, nstd.outbox, nstd.lossplot"
    assert loaded_after(statement, ["sqlite3", "nstd.store", "nstd.gallery", "nstd.stylize", "pydantic",
                                    "yaml", "watchdog"]) == []


def test_the_daemon_never_imports_the_web_stack():
    web = ["starlette", "uvicorn", "sse_starlette", "multipart", "python_multipart", "nstd.web.app"]
    assert loaded_after("import nstd.daemon, nstd.cli, nstd.status", web) == []


def test_the_web_app_never_imports_torch():
    assert loaded_after("import nstd.web.app, nstd.web.actions, nstd.web.events",
                        ["torch", "torchvision", "nstd.engine.transfer", "nstd.worker"]) == []
