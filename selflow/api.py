"""The Python API for distributed runs: ``init`` selflow on a Celery app, then start flows.

    app = Celery("shop", broker="redis://localhost:6379/0")
    selflow.init(app, config="config")            # registers selflow's tasks on the app
    handle = selflow.run_flow("site_audit", {"site": "https://shop.acme.test"})
    state = handle.wait(timeout=60)                # the flow's FlowState once it has ended

The runtime ``init`` builds is this module's one piece of state (``get_runtime``/``set_runtime``);
everything else is passed explicitly. Workers run the same app: ``celery -A shop worker`` (or
``selflow worker``) with ``init`` called when the app module is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from selflow.dispatcher.records import RUNNING, FlowState
from selflow.errors import SelflowError

if TYPE_CHECKING:
    from celery import Celery

    from selflow.runtime.celery_app import CeleryRuntime
    from selflow.tables import SystemTables

__all__ = ["FlowHandle", "get_runtime", "init", "run_flow", "run_flow_selective", "set_runtime"]

_current: "CeleryRuntime | None" = None


def get_runtime() -> "CeleryRuntime":
    """The runtime of the last ``init`` (or ``set_runtime``) in this process."""
    if _current is None:
        raise SelflowError("selflow is not initialised: call selflow.init(app, config=...) first")
    return _current


def set_runtime(runtime: "CeleryRuntime | None") -> None:
    """Make ``runtime`` the one ``run_flow`` uses (``None`` forgets it)."""
    global _current
    _current = runtime


def init(app: "Celery", *, config: str | Sequence[str] | None = None, tables: "SystemTables | None" = None,
         store_url: str | None = None) -> "CeleryRuntime":
    """Register selflow on ``app`` and make it the current runtime.

    Parameters:
        config: configuration paths (a directory like ``config/``, YAML files), compiled in memory.
        tables: already compiled dispatch tables, instead of ``config``.
        store_url: the Redis URL of the state store. Default: ``app.conf.selflow_state_store``,
            else the app's result backend or broker when it is Redis.

    Raises:
        ConfigError: the configuration is invalid. SelflowError: no configuration, or no Redis.
    """
    from selflow.runtime.celery_app import install
    from selflow.runtime.redis_store import RedisStore

    if (config is None) == (tables is None):
        raise SelflowError("selflow.init needs exactly one of config=... or tables=...")
    if tables is None:
        tables = _compile(config)
    store = RedisStore.from_url(store_url or _store_url_of(app))
    runtime = install(app, tables, store)
    set_runtime(runtime)
    return runtime


def _compile(config: str | Sequence[str] | None) -> "SystemTables":
    from selflow.codegen import load_system
    from selflow.codegen.compiled import compile_tables

    paths = (config,) if isinstance(config, str) else tuple(config or ())
    return compile_tables(load_system(paths))


def _store_url_of(app: "Celery") -> str:
    from selflow.runtime.celery_config import is_redis_url, state_store_url

    conf = app.conf
    explicit = conf.get("selflow_state_store")
    if explicit:
        return str(explicit)
    backend = conf.result_backend
    return state_store_url(str(conf.broker_url or ""),
                           backend if isinstance(backend, str) and is_redis_url(backend) else None)


def run_flow(name: str, node_args: Any = None) -> "FlowHandle":
    """Start flow ``name`` on the workers; returns at once with a handle to wait on."""
    runtime = get_runtime()
    flow_id = runtime.runtime.start_flow(name, node_args)
    return FlowHandle(flow_id, name, runtime=runtime)


def run_flow_selective(name: str, task_names: Sequence[str], node_args: Any = None, *,
                       follow_subflows: bool = False, run_subsequent: bool = False) -> "FlowHandle":
    """Start only the parts of flow ``name`` that lead to ``task_names`` (and, with
    ``run_subsequent``, what follows them); with ``follow_subflows`` the tasks may sit in sub-flows.
    """
    from selflow.dispatcher.selective import compute_plan

    runtime = get_runtime()
    plan = compute_plan(runtime.tables, name, list(task_names), follow_subflows=follow_subflows,
                        run_subsequent=run_subsequent)
    flow_id = runtime.runtime.start_flow(name, node_args, selective=plan)
    return FlowHandle(flow_id, name, runtime=runtime)


class FlowHandle:
    """A flow started on the workers: its id, and its state in the store."""

    def __init__(self, flow_id: str, flow_name: str, *, runtime: "CeleryRuntime | None" = None):
        self.flow_id = flow_id
        self.flow_name = flow_name
        self._runtime = runtime

    def __repr__(self) -> str:
        return f"FlowHandle({self.flow_id!r}, {self.flow_name!r})"

    @property
    def runtime(self) -> "CeleryRuntime":
        return self._runtime or get_runtime()

    def state(self) -> FlowState | None:
        """The flow's state now (``None`` if the store does not know it)."""
        return self.runtime.store.load_state(self.flow_id)

    def wait(self, timeout: float | None = None) -> FlowState:
        """Block until the flow has ended and return its final state; ``TimeoutError`` after ``timeout`` s."""
        state = self.runtime.store.wait_for_end(self.flow_id, timeout)
        if state is None or state.status == RUNNING:
            raise TimeoutError(f"flow {self.flow_name} ({self.flow_id}) did not end within {timeout} s")
        return state

    def report(self) -> dict[str, Any]:
        """``flow_id``, ``flow``, ``status``, ``finished_nodes``, ``failed_nodes`` and every node (``flow_report``)."""
        from selflow.runtime.report import flow_report

        return flow_report(self.runtime.store, self.runtime.tables, self.flow_id)
