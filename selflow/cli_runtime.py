"""``selflow run-flow``: run a flow and show how it ended.

Without a broker the flow runs embedded, in this process, on the same engine and task envelope
as Celery workers use. Exit codes: 0 the flow succeeded, 1 it failed, 2 usage or configuration.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from selflow.cli import EXIT_USAGE, Definitions, _report_issues, cli, definition_options
from selflow.errors import ConfigError, SelflowError

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
    click.echo(f"flow {report['flow']} {verb} in {elapsed:.2f} s: {len(tasks)} task runs, {len(failed)} failed "
               f"(flow id {report['flow_id']})")
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


@cli.command("run-flow", epilog="""\b
Examples:
  selflow run-flow config --flow site_audit --node-args '{"site": "https://shop.acme.test"}'
  selflow run-flow config --flow analyze_page --node-args-file args.json --json

\b
Exit codes: 0 the flow succeeded, 1 the flow failed, 2 usage or configuration error.""")
@definition_options
@click.option("--flow", "--flow-name", "flow_name", required=True, metavar="NAME", help="The flow to run.")
@click.option("--node-args", metavar="JSON", help="The flow's arguments, as JSON.")
@click.option("--node-args-file", metavar="FILE", help="Read the flow's arguments (JSON) from FILE.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the outcome and every node.")
@click.option("--timeout", type=click.FloatRange(min=0), default=None, help="Give up after this many seconds.")
def run_flow(definitions: Definitions, flow_name: str, node_args: str | None, node_args_file: str | None,
             as_json: bool, timeout: float | None) -> None:
    from selflow.codegen.compiled import compile_tables
    from selflow.runtime.embedded import EmbeddedRunner
    from selflow.runtime.preflight import check_flow_runnable
    from selflow.runtime.report import flow_report

    args = parse_node_args(node_args, node_args_file)
    try:
        tables = compile_tables(definitions.load())
    except ConfigError as exc:
        _report_issues(exc.issues)
        raise SystemExit(EXIT_USAGE) from None
    check_flow_runnable(tables, flow_name)
    progress = Progress(flow_name)
    runner = EmbeddedRunner(tables, tracers=(progress,))
    started = time.monotonic()
    try:
        state = runner.run_flow(flow_name, args, timeout=timeout)
    except TimeoutError as exc:
        raise SelflowError(str(exc)) from None
    finally:
        progress.close()
    report = flow_report(runner.store, tables, state.flow_id)
    if as_json:
        click.echo(json.dumps(report, sort_keys=True))
    else:
        _print_summary(report, time.monotonic() - started)
    if state.status != "success":
        raise SystemExit(EXIT_FLOW_FAILED)
