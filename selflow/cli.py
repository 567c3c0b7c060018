"""The ``selflow`` command line: check, compile, plot and inspect a Selinon-format configuration.

Every command names its configuration through one decorator, :func:`definition_options`, so
CONFIG paths, Selinon's ``-n``/``-f`` flags and ``SELFLOW_CONFIG`` mean the same thing
everywhere. User mistakes end in a message and a named exit code, never a traceback. The
codegen modules are imported inside the commands: ``selflow --help`` stays fast, and a broken
optional piece cannot stop the other commands from starting.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import click

from selflow import __version__
from selflow.errors import ConfigError, ConfigIssue, SelflowError

if TYPE_CHECKING:
    from selflow.codegen.model import SystemSpec

#: The command did what was asked.
EXIT_OK = 0
#: The configuration is invalid, or a configuration file it names does not exist.
EXIT_CONFIG = 1
#: The command line is wrong (click's own usage errors use the same code).
EXIT_USAGE = 2

#: Default CONFIG paths, separated by ``os.pathsep``, used when no path or -n/-f is given.
CONFIG_ENVVAR = "SELFLOW_CONFIG"

#: Output formats ``selflow plot`` accepts; ``dot`` writes the graphviz source itself.
PLOT_FORMATS = ("svg", "png", "pdf", "dot")

log = logging.getLogger(__name__)

HELP_EPILOG = """\b
CONFIG is any mix of YAML files (a nodes file, flow files, or one file with
both) and directories holding nodes.yml and flows/. Selinon's
-n/--nodes-definition and -f/--flow-definitions work too. Without either,
the paths in $SELFLOW_CONFIG (separated by ':') are used.

\b
Examples:
  selflow check config
  selflow compile config -o build/tables.py
  selflow plot config --format png --output-dir build/plots
  selflow plot config --flow crawl_site --format dot
  selflow inspect config --list-task-queues
  selflow check -n config/nodes.yml -f config/flows
  SELFLOW_CONFIG=config selflow inspect --list-dispatcher-queues

\b
Exit codes: 0 OK, 1 invalid configuration, 2 wrong usage.
"""


# --- where the configuration comes from -------------------------------------------------


@dataclass(frozen=True)
class Definitions:
    """The configuration a command was asked to read, as given on the command line."""

    configs: tuple[str, ...] = ()
    nodes: str | None = None
    flows: tuple[str, ...] = ()

    @property
    def paths(self) -> tuple[str, ...]:
        return (*self.configs, *((self.nodes,) if self.nodes else ()), *self.flows)

    @property
    def label(self) -> str:
        """How messages name this configuration: the paths as the user wrote them."""
        return ", ".join(self.paths)

    def load(self) -> SystemSpec:
        """Read and validate the configuration; raise ``ConfigError`` listing every mistake.

        A missing path is one of those mistakes (the loader reports it), so a typo on the command
        line exits 1 with the path, like any other configuration error.
        """
        from selflow.codegen import load_system

        return load_system(self.configs, nodes=self.nodes, flows=self.flows)


def _definitions_from(configs: tuple[str, ...], nodes: str | None, flows: tuple[str, ...]) -> Definitions:
    """Apply the ``SELFLOW_CONFIG`` default; no configuration at all is a usage error."""
    if not configs and nodes is None and not flows:
        configs = tuple(p for p in os.environ.get(CONFIG_ENVVAR, "").split(os.pathsep) if p)
        if not configs:
            raise click.UsageError(
                f"no configuration given: pass CONFIG paths, -n/-f, or set {CONFIG_ENVVAR}",
                ctx=click.get_current_context(silent=True),
            )
    return Definitions(configs=configs, nodes=nodes, flows=flows)


def definition_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command the CONFIG argument and Selinon's -n/-f options, as one ``definitions``."""

    @click.argument("config", nargs=-1, type=click.Path(path_type=str))
    @click.option("-n", "--nodes-definition", "nodes", metavar="FILE", type=click.Path(),
                  help="Selinon-style nodes file (tasks, flows, storages, global).")
    @click.option("-f", "--flow-definitions", "flows", metavar="PATH", multiple=True, type=click.Path(),
                  help="Selinon-style flow file or directory; repeatable.")
    @functools.wraps(command)
    def wrapper(config: tuple[str, ...], nodes: str | None, flows: tuple[str, ...], **kwargs: Any) -> Any:
        return command(definitions=_definitions_from(config, nodes, flows), **kwargs)

    return wrapper


# --- errors and output ------------------------------------------------------------------


class _SelflowGroup(click.Group):
    """Turns selflow's own errors into messages and exit codes, for every command at once."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            _report_issues(exc.issues)
            ctx.exit(EXIT_CONFIG)
        except SelflowError as exc:
            log.debug("command failed", exc_info=True)
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_USAGE)


def _report_issues(issues: Iterable[ConfigIssue]) -> None:
    """One ``path:line:col: key.path: message`` line per issue, then how many there were."""
    count = 0
    for issue in issues:
        click.echo(str(issue), err=True)
        count += 1
    click.echo(f"{_plural(count, 'issue')} found", err=True)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _counts(system: SystemSpec) -> str:
    return ", ".join((
        _plural(len(system.flows), "flow"),
        _plural(len(system.tasks), "task"),
        _plural(len(system.storages), "storage"),
    ))


class _EchoHandler(logging.Handler):
    """Log lines go through click, so they reach whatever stderr click is using (CliRunner too)."""

    _COLOURS = {logging.DEBUG: "cyan", logging.INFO: "green", logging.WARNING: "yellow"}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = click.style(record.levelname.lower(), fg=self._COLOURS.get(record.levelno, "red"))
            click.echo(f"{level}: {self.format(record)}", err=True)
        except Exception:  # noqa: BLE001 - logging must never break the command
            self.handleError(record)


_HANDLER = _EchoHandler()


def _configure_logging(verbosity: int) -> None:
    """Warnings always show; -v adds info, -vv debug (including tracebacks of reported errors)."""
    logger = logging.getLogger("selflow")
    logger.setLevel(logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG)
    if _HANDLER not in logger.handlers:
        logger.addHandler(_HANDLER)


def _write_atomically(path: Path, text: str) -> None:
    """Write via a temporary file and a rename, so readers never see half a module."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies, as for open()
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --- commands ---------------------------------------------------------------------------


@click.group(cls=_SelflowGroup, name="selflow", epilog=HELP_EPILOG,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="selflow", message="%(prog)s %(version)s")
@click.option("-v", "--verbose", count=True, help="More logging: -v for info, -vv for debug.")
def cli(verbose: int) -> None:
    """Check, compile and draw Selinon-format dataflow configurations."""
    _configure_logging(verbose)


@cli.command(epilog="\b\nExample:\n  selflow check config")
@definition_options
def check(definitions: Definitions) -> None:
    """Validate a configuration and report every mistake in one pass."""
    system = definitions.load()
    click.echo(f"OK: {_counts(system)} ({definitions.label})")


@cli.command("compile", epilog="\b\nExample:\n  selflow compile config -o build/tables.py")
@definition_options
@click.option("-o", "--output", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the module to FILE (atomically) instead of stdout.")
def compile_(definitions: Definitions, output: Path | None) -> None:
    """Compile a configuration into a Python module of dispatch tables."""
    from selflow.codegen.emit import emit_module

    source = emit_module(definitions.load())
    if output is None:
        click.echo(source, nl=not source.endswith("\n"))
        return
    try:
        _write_atomically(output, source)
    except OSError as exc:
        raise click.BadParameter(f"cannot write {output}: {exc.strerror or exc}", param_hint="'-o' / '--output'")
    click.echo(str(output))


@cli.command(epilog="\b\nExample:\n  selflow plot config --format png --output-dir build/plots")
@definition_options
@click.option("--flow", "flow_names", metavar="NAME", multiple=True,
              help="Draw only this flow; repeatable. Default: every flow.")
@click.option("--format", "fmt", type=click.Choice(PLOT_FORMATS), default="svg", show_default=True,
              help="Output format; 'dot' writes the graphviz source.")
@click.option("--output-dir", "-o", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Directory for the <flow>.<format> files (created if missing).")
@click.option("--style", metavar="FILE", type=click.Path(exists=True, dir_okay=False),
              help="YAML file whose 'style:' mapping overrides graphviz attributes.")
def plot(definitions: Definitions, flow_names: tuple[str, ...], fmt: str, output_dir: str,
         style: str | None) -> None:
    """Draw each flow as a graph and print the paths written."""
    from selflow.codegen.plot import load_style, plot_system

    style_attrs = load_style(style) if style else None
    system = definitions.load()
    for path in plot_system(system, flows=list(flow_names) or None, fmt=fmt, output_dir=output_dir,
                            style=style_attrs):
        click.echo(path)


@cli.command(epilog="\b\nExample:\n  selflow inspect config --list-task-queues")
@definition_options
@click.option("--list-task-queues", is_flag=True, help="Print 'task:queue' lines, sorted.")
@click.option("--list-dispatcher-queues", is_flag=True,
              help="Print 'flow:queue' lines (the queue of each flow's dispatcher), sorted.")
def inspect(definitions: Definitions, list_task_queues: bool, list_dispatcher_queues: bool) -> None:
    """Show what a configuration defines: a summary, or the queues workers must consume."""
    system = definitions.load()
    if list_task_queues:
        for line in sorted(f"{task.name}:{task.queue}" for task in system.tasks):
            click.echo(line)
    if list_dispatcher_queues:
        for line in sorted(f"{flow.name}:{flow.queue}" for flow in system.flows):
            click.echo(line)
    if list_task_queues or list_dispatcher_queues:
        return
    click.echo(f"{definitions.label}: {_counts(system)}")
    click.echo("flows: " + ", ".join(sorted(flow.name for flow in system.flows)))
    click.echo("task queues: " + ", ".join(sorted({task.queue for task in system.tasks})))
    click.echo("dispatcher queues: " + ", ".join(sorted({flow.queue for flow in system.flows})))
    if system.storages:
        click.echo("storages: " + ", ".join(sorted(storage.name for storage in system.storages)))


def main(argv: Sequence[str] | None = None) -> None:
    import selflow.cli_runtime  # noqa: F401 - registers run-flow (kept apart: it imports the runtime)

    """Console-script entry point; ``argv`` defaults to ``sys.argv[1:]``; exits with an EXIT_* code."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="selflow")
