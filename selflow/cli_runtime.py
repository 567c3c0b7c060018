"""``selflow run-flow`` (run a flow and show how it ended) and ``selflow worker``.

Without a broker the flow runs embedded, in this process, on the same engine and task envelope
as Celery workers use. With ``--broker`` it is submitted to workers started with ``selflow worker``
(or any Celery worker of an app set up with ``selflow.init``). Exit codes: 0 the flow succeeded,
1 it failed, 2 usage or configuration (an unknown flow, arguments that are not JSON, an
unreachable broker, a task module that does not import).
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any

import click

from selflow.cli import EXIT_USAGE, Definitions, _report_issues, cli, definition_options
from selflow.errors import ConfigError, SelflowError

if TYPE_CHECKING:
    from selflow.tables import SystemTables

EXIT_FLOW_FAILED = 1


def parse_node_args(node_args: str | None, node_args_file: str | None) -> Any:
    """The flow arguments from ``--node-args`` or ``--node-args-file``, as JSON."""
    if node_args is not None and node_args_file is not None:
        raise click.UsageError("give --node-args or --node-args-file, not both")
    source, text = "--node-args", node_args
    if node_args_file is not None:
        source = node_args_file
        try:
            with open(node_args_file, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            raise click.BadParameter(f"cannot read {node_args_file}: {exc.strerror}",
                                     param_hint="--node-args-file") from None
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON ({exc}); e.g. --node-args '{{\"site\": \"https://shop.acme.test\"}}'",
                                 param_hint="--node-args" if source == "--node-args" else "--node-args-file") \
            from None


class Progress:
    """A one-line progress display on a terminal, fed by trace events."""

    def __init__(self, flow: str, stream: Any = None):
        self.flow = flow
        self.stream = stream or sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = self.done = self.failed = 0
        self.last_draw = 0.0

    def __call__(self, event: str, details: dict[str, Any]) -> None:
        if event == "TASK_START":
            self.started += 1
        elif event == "TASK_END":
            self.done += 1
        elif event == "TASK_FAILURE":
            self.failed += 1
        else:
            return
        now = time.monotonic()
        if self.enabled and now - self.last_draw > 0.05:
            self.last_draw = now
            self.draw()

    def draw(self) -> None:
        running = max(self.started - self.done - self.failed, 0)
        self.stream.write(f"\r{self.flow}: {self.done} done, {running} running, {self.failed} failed ")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.started:
            self.draw()
            self.stream.write("\n")
            self.stream.flush()


def _print_summary(report: dict[str, Any], elapsed: float) -> None:
    verb = "succeeded" if report["status"] == "success" else "FAILED"
    tasks = [n for n in report["nodes"] if n["kind"] == "task"]
    failed = [n for n in tasks if n["status"] == "failure"]
    handled = " (handled by fallbacks)" if failed and report["status"] == "success" else ""
    click.echo(f"flow {report['flow']} {verb} in {elapsed:.2f} s: {len(tasks)} task runs, {len(failed)} failed"
               f"{handled} (flow id {report['flow_id']})")
    for node in report["nodes"]:
        indent = "  " * (node["depth"] + 1)
        mark = "ok " if node["status"] == "success" else "ERR"
        detail = ""
        if node["kind"] == "task" and node["status"] == "success":
            detail = json.dumps(node.get("result"), sort_keys=True)
            detail = detail if len(detail) <= 90 else detail[:87] + "..."
        elif node["status"] == "failure":
            detail = node.get("error", "")
        click.echo(f"{indent}{mark} {node['name']}  {detail}".rstrip())


def _compile(definitions: Definitions) -> SystemTables:
    from selflow.codegen.compiled import compile_tables

    try:
        return compile_tables(definitions.load())
    except ConfigError as exc:
        _report_issues(exc.issues)
        raise SystemExit(EXIT_USAGE) from None


def broker_options(required: bool) -> Any:
    """``--broker`` and ``--result-backend`` (with their environment variables), for run-flow and worker."""
    def decorate(command: Any) -> Any:
        command = click.option(
            "--result-backend", envvar="SELFLOW_RESULT_BACKEND", metavar="URL",
            help="Redis URL of the flow state store [env SELFLOW_RESULT_BACKEND; default: the broker, "
                 "when it is Redis].")(command)
        return click.option(
            "--broker", envvar="SELFLOW_BROKER_URL", metavar="URL", required=required,
            help="Celery broker URL, redis:// or amqp:// [env SELFLOW_BROKER_URL]"
                 + ("." if required else "; without it the flow runs embedded, in this process."))(command)
    return decorate


@cli.command("run-flow", epilog="""\b
Examples:
  selflow run-flow config --flow site_audit --node-args '{"site": "https://shop.acme.test"}'
  selflow run-flow config --flow analyze_page --node-args-file args.json --json
  selflow run-flow config --flow site_audit --node-args-file args.json --broker redis://localhost:6379/0

\b
Exit codes: 0 the flow succeeded, 1 the flow failed, 2 usage or configuration error.""")
@definition_options
@click.option("--flow", "--flow-name", "flow_name", required=True, metavar="NAME", help="The flow to run.")
@click.option("--node-args", metavar="JSON", help="The flow's arguments, as JSON.")
@click.option("--node-args-file", metavar="FILE", help="Read the flow's arguments (JSON) from FILE.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the outcome and every node.")
@click.option("--timeout", type=click.FloatRange(min=0), default=None, help="Give up after this many seconds.")
@broker_options(required=False)
@click.option("--no-wait", is_flag=True, help="With --broker: print the flow id and return at once.")
def run_flow(definitions: Definitions, flow_name: str, node_args: str | None, node_args_file: str | None,
             as_json: bool, timeout: float | None, broker: str | None, result_backend: str | None,
             no_wait: bool) -> None:
    """Run a flow, embedded or on Celery workers, and show how it ended."""
    from selflow.runtime.preflight import check_flow_runnable

    if no_wait and not broker:
        raise click.UsageError("--no-wait needs --broker (an embedded run ends with this command)")
    source = click.get_current_context().get_parameter_source("result_backend")
    if result_backend and not broker and source == click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError("--result-backend needs --broker (an embedded run keeps its state in memory)")
    args = parse_node_args(node_args, node_args_file)
    tables = _compile(definitions)
    check_flow_runnable(tables, flow_name)
    started = time.monotonic()
    if broker:
        from selflow.cli_celery import submit

        handle = submit(tables, flow_name, args, broker=broker, result_backend=result_backend)
        if no_wait:
            click.echo(handle.flow_id)
            return
        try:
            state = handle.wait(timeout)
        except TimeoutError as exc:
            raise SelflowError(f"{exc} (it goes on running on the workers)") from None
        store = handle.runtime.store
    else:
        state, store = _run_embedded(tables, flow_name, args, timeout)
    from selflow.runtime.report import flow_report

    report = flow_report(store, tables, state.flow_id)
    if as_json:
        click.echo(json.dumps(report, sort_keys=True))
    else:
        _print_summary(report, time.monotonic() - started)
    if state.status != "success":
        raise SystemExit(EXIT_FLOW_FAILED)


def _run_embedded(tables: SystemTables, flow_name: str, args: Any, timeout: float | None) -> tuple[Any, Any]:
    from selflow.runtime.embedded import EmbeddedRunner

    progress = Progress(flow_name)
    runner = EmbeddedRunner(tables, tracers=(progress,))
    try:
        state = runner.run_flow(flow_name, args, timeout=timeout)
    except TimeoutError as exc:
        raise SelflowError(str(exc)) from None
    finally:
        progress.close()
    return state, runner.store


@cli.command("worker", epilog="""\b
Examples:
  selflow worker config --broker redis://localhost:6379/0 -c 4
  selflow worker config --broker amqp://guest:guest@localhost:5672// --result-backend redis://localhost:6379/0
  selflow worker config --broker redis://localhost:6379/0 -Q acme_notify

\b
Exit codes: 0 the worker stopped normally, 2 usage or configuration error.""")
@definition_options
@broker_options(required=True)
@click.option("-c", "--concurrency", type=click.IntRange(min=1), default=None,
              help="Worker processes (or threads) [default: one per CPU].")
@click.option("-Q", "--queues", metavar="QUEUES",
              help="Comma-separated queues to consume [default: every task and dispatcher queue of the "
                   "configuration].")
@click.option("--hostname", metavar="NAME", help="The worker's node name, e.g. w1@%h [default: celery@%h].")
@click.option("-P", "--pool", type=click.Choice(["prefork", "threads", "solo"]), default="prefork",
              show_default=True, help="Celery worker pool.")
@click.option("-l", "--loglevel", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
              default="INFO", show_default=True)
@click.option("-E", "--events", is_flag=True,
              help="Send Celery task events and selflow's flow events (for `celery events` and Flower).")
def worker(definitions: Definitions, broker: str, result_backend: str | None, concurrency: int | None,
           queues: str | None, hostname: str | None, pool: str, loglevel: str, events: bool) -> None:
    """Start a Celery worker that runs the configuration's flows and tasks."""
    from selflow.cli_celery import run_worker

    tables = _compile(definitions)
    wanted = [name.strip() for name in queues.split(",") if name.strip()] if queues else None
    code = run_worker(tables, broker=broker, result_backend=result_backend, queues=wanted,
                      concurrency=concurrency, hostname=hostname, pool=pool, loglevel=loglevel.upper(),
                      events=events)
    raise SystemExit(code)
