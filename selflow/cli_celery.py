"""The Celery side of the CLI: submit a flow to workers (``run-flow --broker``) and run a worker.

Kept apart from ``cli_runtime`` so that the embedded ``run-flow`` never imports Celery. Every
check that can fail on the user's input (the store URL, the broker, the state store, the task
modules) runs before anything is published or started, and fails with one line and exit code 2.
"""

from __future__ import annotations

from typing import Any, Sequence

import click

from selflow.api import FlowHandle, init, run_flow
from selflow.runtime.celery_app import CeleryRuntime, queues_of
from selflow.runtime.celery_config import make_app, probe_broker, redact, state_store_url
from selflow.tables import SystemTables

#: how long ``run-flow --broker`` waits for any worker to answer a ping before it warns, in seconds
PING_TIMEOUT_S = 1.0


def connect(tables: SystemTables, *, broker: str, result_backend: str | None) -> CeleryRuntime:
    """A Celery app on ``broker`` with selflow installed, after checking the broker and the store."""
    store_url = state_store_url(broker, result_backend)
    probe_broker(broker)
    app = make_app(broker, store_url=store_url)
    runtime = init(app, tables=tables, store_url=store_url)
    runtime.store.load_state("selflow-connection-check")  # StorageError (exit 2) when Redis is down
    return runtime


def submit(tables: SystemTables, flow_name: str, node_args: Any, *, broker: str,
           result_backend: str | None) -> FlowHandle:
    """Start ``flow_name`` on the workers behind ``broker``; warn when no worker answers."""
    runtime = connect(tables, broker=broker, result_backend=result_backend)
    handle = run_flow(flow_name, node_args)
    if not _any_worker(runtime):
        click.echo(f"warning: no worker answered on {redact(broker)}; flow {handle.flow_id} waits for one "
                   f"(start one with: selflow worker CONFIG --broker URL)", err=True)
    return handle


def _any_worker(runtime: CeleryRuntime) -> bool:
    try:
        return bool(runtime.app.control.ping(timeout=PING_TIMEOUT_S, limit=1))
    except Exception:  # noqa: BLE001 - a failed ping only decides whether to warn
        return True


def run_worker(tables: SystemTables, *, broker: str, result_backend: str | None, queues: Sequence[str] | None,
               concurrency: int | None, hostname: str | None, pool: str, loglevel: str,
               events: bool = False) -> int:
    """Start a Celery worker for ``tables`` in this process; returns its exit code."""
    from selflow.refs import resolve

    known = queues_of(tables)
    if queues:
        unknown = sorted(set(queues) - set(known))
        if unknown:
            click.echo(f"warning: no task or flow of this configuration uses queue(s) {', '.join(unknown)} "
                       f"(its queues: {', '.join(known)})", err=True)
    consumed = set(queues or known)
    for spec in tables.tasks.values():
        if spec.queue in consumed:
            resolve(spec.ref)  # ImportRefError (exit 2) now rather than a failed node later
    runtime = connect(tables, broker=broker, result_backend=result_backend)
    if events:  # task events and selflow's flow-level events, for `celery events` and Flower
        runtime.app.conf.worker_send_task_events = True
    options: dict[str, Any] = dict(queues=list(queues or known), loglevel=loglevel, pool_cls=pool,
                                   send_events=events)
    if concurrency is not None:
        options["concurrency"] = concurrency
    if hostname is not None:
        from celery.utils.nodenames import default_nodename, host_format

        options["hostname"] = host_format(default_nodename(hostname))
    worker = runtime.app.Worker(**options)
    worker.start()
    return int(worker.exitcode or 0)
