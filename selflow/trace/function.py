"""The ``function: {name, import}`` trace backend: your function, called as ``func(event, details)``."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from selflow.codegen.model import ImportRef
from selflow.refs import ImportRefError, resolve
from selflow.trace.dispatch import TraceBackendError

__all__ = ["FunctionTracer"]


class FunctionTracer:
    """Call ``func(event, details)`` for each event.

    ``from_options`` imports the function when the tracers are built, so a wrong module or name is
    reported when a worker starts rather than on every event.
    """

    def __init__(self, func: Callable[[str, dict[str, Any]], Any], *, name: str | None = None):
        if not callable(func):
            raise TraceBackendError(f"trace function {name or func!r} is not callable")
        self.func = func
        self.name = name or getattr(func, "__qualname__", repr(func))

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> FunctionTracer:
        """From a ``TraceSpec``'s options: ``import`` (a module) and ``name`` (a function in it)."""
        ref = ImportRef(options["import"], options["name"])
        try:
            func = resolve(ref)
        except ImportRefError as exc:
            raise TraceBackendError(f"trace function {ref}: {exc}") from exc
        return cls(func, name=str(ref))

    def __call__(self, event: str, details: dict[str, Any]) -> None:
        self.func(event, details)

    def __repr__(self) -> str:
        return f"FunctionTracer({self.name})"
