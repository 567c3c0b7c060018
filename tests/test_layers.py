"""The import direction: codegen and the dispatcher engine never import Celery; only the runtime does.

Each check runs in a fresh interpreter, so modules imported by other tests cannot hide a leak.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _celery_loaded_after(code: str) -> bool:
    script = textwrap.dedent(code) + "\nimport sys\nprint('celery' in sys.modules or any(m.startswith('celery.') for m in sys.modules))\n"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1] == "True"


@pytest.mark.parametrize("code", [
    # the whole compiler, used end to end
    """
    from selflow.codegen import load_system
    from selflow.codegen.compiled import compile_tables
    from selflow.codegen.emit import emit_module
    from selflow.codegen import plot
    compile_tables(load_system(["config"]))
    """,
    # the engine, stepping a reference flow
    """
    from selflow.codegen import load_system
    from selflow.codegen.compiled import compile_tables
    from selflow.dispatcher.engine import StepContext, step
    from selflow.dispatcher.records import FlowState
    tables = compile_tables(load_system(["config"]))
    step(tables, FlowState.new("f", "site_audit", {"site": "https://shop.acme.test"}), [],
         StepContext(results=type("R", (), {"result": lambda self, node_id: None})()))
    """,
    # the embedded run: a whole reference flow in one process
    """
    from selflow.codegen import load_system
    from selflow.codegen.compiled import compile_tables
    from selflow.runtime.embedded import EmbeddedRunner
    state = EmbeddedRunner(compile_tables(load_system(["config"]))).run_flow(
        "site_audit", {"site": "https://shop.acme.test"})
    assert state.status == "success", state
    """,
    # the package itself
    "import selflow",
], ids=["codegen", "engine", "embedded-run", "package"])
def test_celery_is_not_imported(code: str) -> None:
    assert not _celery_loaded_after(code)


def test_the_celery_runtime_does_import_celery() -> None:
    # the check above would pass vacuously if it could not see celery at all
    assert _celery_loaded_after("import selflow.runtime.celery_app")
