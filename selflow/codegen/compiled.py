"""Get ``SystemTables`` from a model (in memory) or from a module written by ``selflow compile``.

Compiling in memory runs exactly the text that ``selflow compile`` writes to disk, so a worker
that imports the file and one that compiles the YAML at start-up walk equal tables, and a
problem in the generated code shows up the same way in both.
"""

from __future__ import annotations

import hashlib
import importlib
import linecache
import os
import types
from pathlib import Path

from selflow.codegen.emit import emit_module
from selflow.codegen.model import SystemSpec
from selflow.errors import SelflowError
from selflow.tables import SystemTables

__all__ = ["TablesError", "compile_tables", "load_tables"]


class TablesError(SelflowError):
    """Dispatch tables could not be built, found or loaded."""


def compile_tables(system: SystemSpec) -> SystemTables:
    """Emit the tables module for ``system`` and run it in a fresh, unregistered module object."""
    source = emit_module(system)
    digest = system.input_hash or hashlib.sha256(source.encode()).hexdigest()
    name = f"selflow_tables_{digest[:12]}"
    filename = f"<{name}>"
    # Let tracebacks through condition functions show their source lines.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return _run(source, name, filename)


def load_tables(target: str | os.PathLike[str]) -> SystemTables:
    """Load ``TABLES`` from a generated ``.py`` file or from an importable dotted module name."""
    text = os.fspath(target)
    if text.endswith(".py") or os.sep in text or "/" in text:
        return _load_file(Path(text))
    if not text or not all(part.isidentifier() for part in text.split(".")):
        raise TablesError(f"{text!r} is neither a path to a .py file nor a dotted module name")
    try:
        module = importlib.import_module(text)
    except Exception as exc:
        raise TablesError(f"cannot import tables module {text!r}: {exc}") from exc
    return _tables_of(module, text)


def _load_file(path: Path) -> SystemTables:
    # Read and run the source ourselves rather than importing it: a regenerated file must never
    # be shadowed by a stale __pycache__ entry, and the user's directory gets no cache files.
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TablesError(f"cannot read tables file {str(path)!r}: {exc}") from exc
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()
    return _run(source, f"selflow_tables_{digest[:12]}", str(path))


def _run(source: str, name: str, filename: str) -> SystemTables:
    module = types.ModuleType(name)
    module.__file__ = filename
    try:
        code = compile(source, filename, "exec")
        exec(code, module.__dict__)
    except Exception as exc:
        raise TablesError(f"running tables module {filename} failed: {type(exc).__name__}: {exc}") from exc
    return _tables_of(module, filename)


def _tables_of(module: types.ModuleType, where: str) -> SystemTables:
    tables = getattr(module, "TABLES", None)
    if tables is None:
        raise TablesError(f"{where} defines no TABLES; is it a module written by `selflow compile`?")
    if not isinstance(tables, SystemTables):
        raise TablesError(f"{where}: TABLES is a {type(tables).__name__}, not selflow.tables.SystemTables")
    return tables
