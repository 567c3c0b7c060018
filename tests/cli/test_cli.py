"""The ``selflow`` command line, driven through its entry points as a user would.

Most tests use click's CliRunner on the real group; a few start a real process, so the console
script, ``python -m selflow`` and the exit codes are checked as a shell sees them. The YAML is
written per test, so these tests do not depend on the reference configuration in ``config/``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from click.testing import CliRunner

from selflow import __version__
from selflow.cli import EXIT_CONFIG, EXIT_OK, EXIT_USAGE, Definitions, cli
from selflow.errors import ConfigError, ConfigIssue, SelflowError

REPO_ROOT = Path(__file__).resolve().parents[2]

#: ``path:line:col: `` at the start of an issue line, as ConfigIssue prints it.
LOCATED = re.compile(r"^\S+:\d+:\d+: ")
COUNT_LINE = re.compile(r"^\d+ issues? found$")

NODES_YML = """\
tasks:
  - name: Hello
    import: greeting
    queue: hello_q
flows:
  - greet
"""

FLOW_YML = """\
flow-definitions:
  - name: greet
    queue: greet_q
    edges:
      - from:
        to: {target}
"""

#: The module the task names; plain Python, so nothing here needs Celery.
GREETING_PY = """\
class Hello:
    def run(self, node_args):
        return "hello"
"""


def write_config(root: Path, target: str = "Hello") -> Path:
    """A config directory laid out like ``config/``: nodes.yml plus flows/greet.yml."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "nodes.yml").write_text(NODES_YML)
    (root / "flows").mkdir(exist_ok=True)
    (root / "flows" / "greet.yml").write_text(FLOW_YML.format(target=target))
    return root


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No SELFLOW_CONFIG from the outer shell; the task module is importable, should anyone look."""
    monkeypatch.delenv("SELFLOW_CONFIG", raising=False)
    (tmp_path / "greeting.py").write_text(GREETING_PY)
    monkeypatch.syspath_prepend(str(tmp_path))


@pytest.fixture
def runner() -> CliRunner:
    try:
        return CliRunner(mix_stderr=False)  # click 8.1 mixes the streams unless told not to
    except TypeError:
        return CliRunner()  # click >= 8.2 keeps them apart by itself


@pytest.fixture
def valid(tmp_path: Path) -> Path:
    return write_config(tmp_path / "valid")


@pytest.fixture
def invalid(tmp_path: Path) -> Path:
    return write_config(tmp_path / "invalid", target="Helo")


def stderr_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


# --- check ------------------------------------------------------------------------------


def test_check_valid_config_prints_one_ok_line(runner: CliRunner, valid: Path) -> None:
    # When
    result = runner.invoke(cli, ["check", str(valid)])
    # Then
    assert result.exit_code == EXIT_OK, result.stderr
    assert result.stdout.splitlines() == [f"OK: 1 flow, 1 task, 0 storages ({valid})"]


def test_check_invalid_config_lists_located_issues_then_a_count(runner: CliRunner, invalid: Path) -> None:
    # Given a flow whose edge goes to 'Helo', which is not a node
    # When
    result = runner.invoke(cli, ["check", str(invalid)])
    # Then every issue line starts with path:line:col, and the last line counts them
    assert result.exit_code == EXIT_CONFIG
    *issues, count = stderr_lines(result)
    assert issues, result.stderr
    assert all(LOCATED.match(line) for line in issues), issues
    assert COUNT_LINE.match(count), count
    assert int(count.split()[0]) == len(issues)
    assert any("greet.yml" in line and "Helo" in line for line in issues), issues
    assert result.stdout == ""
    assert "Traceback" not in result.output


def test_selinon_flags_name_the_same_configuration(runner: CliRunner, valid: Path) -> None:
    result = runner.invoke(cli, ["check", "-n", str(valid / "nodes.yml"), "-f", str(valid / "flows")])
    assert result.exit_code == EXIT_OK, result.stderr
    assert result.stdout.startswith("OK: 1 flow, 1 task")


def test_missing_nodes_file_is_a_config_error_naming_the_path(runner: CliRunner, tmp_path: Path) -> None:
    # Given
    missing = tmp_path / "nope.yml"
    # When
    result = runner.invoke(cli, ["check", "-n", str(missing), "-f", str(tmp_path)])
    # Then
    assert result.exit_code == EXIT_CONFIG
    assert str(missing) in result.stderr
    assert "Traceback" not in result.output


def test_no_configuration_at_all_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["check"])
    assert result.exit_code == EXIT_USAGE
    assert "SELFLOW_CONFIG" in result.stderr


def test_selflow_config_gives_the_default_paths(runner: CliRunner, valid: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # Given two paths in the variable, separated as PATH is
    flow_file = valid / "flows" / "greet.yml"
    monkeypatch.setenv("SELFLOW_CONFIG", os.pathsep.join([str(valid / "nodes.yml"), str(flow_file)]))
    # When no path is given on the command line
    result = runner.invoke(cli, ["check"])
    # Then both are read
    assert result.exit_code == EXIT_OK, result.stderr
    assert result.stdout.startswith("OK: 1 flow, 1 task")
    assert str(flow_file) in result.stdout


def test_command_line_paths_win_over_selflow_config(runner: CliRunner, valid: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELFLOW_CONFIG", str(tmp_path / "does-not-exist"))
    result = runner.invoke(cli, ["check", str(valid)])
    assert result.exit_code == EXIT_OK, result.stderr


# --- how errors become exit codes (independent of the loader) ---------------------------


def test_config_error_prints_each_issue_and_exits_1(runner: CliRunner, monkeypatch: pytest.MonkeyPatch,
                                                    valid: Path) -> None:
    # Given a loader that finds two mistakes
    issues = [ConfigIssue("a.yml", 3, 5, "flows.f.edges[0].to", "unknown node 'X'"),
              ConfigIssue("b.yml", 1, 1, "tasks", "must be a list")]

    def load(self: Definitions):
        raise ConfigError(issues)

    monkeypatch.setattr(Definitions, "load", load)
    # When
    result = runner.invoke(cli, ["inspect", str(valid)])
    # Then
    assert result.exit_code == EXIT_CONFIG
    assert stderr_lines(result) == [
        "a.yml:3:5: flows.f.edges[0].to: unknown node 'X'",
        "b.yml:1:1: tasks: must be a list",
        "2 issues found",
    ]


def test_other_selflow_errors_are_one_line_and_exit_2(runner: CliRunner, monkeypatch: pytest.MonkeyPatch,
                                                     valid: Path) -> None:
    def load(self: Definitions):
        raise SelflowError("the 'dot' program is not installed")

    monkeypatch.setattr(Definitions, "load", load)
    result = runner.invoke(cli, ["check", str(valid)])
    assert result.exit_code == EXIT_USAGE
    assert stderr_lines(result) == ["error: the 'dot' program is not installed"]


# --- compile ----------------------------------------------------------------------------


def test_compile_writes_a_module_that_imports(runner: CliRunner, valid: Path, tmp_path: Path) -> None:
    # Given an output directory that does not exist yet
    out = tmp_path / "build" / "tables.py"
    # When
    result = runner.invoke(cli, ["compile", str(valid), "-o", str(out)])
    # Then the module is there, whole, and imports
    assert result.exit_code == EXIT_OK, result.stderr
    assert result.stdout.strip() == str(out)
    assert [p.name for p in out.parent.iterdir()] == ["tables.py"]  # no temporary file left behind
    spec = importlib.util.spec_from_file_location("compiled_tables", out)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert hasattr(module, "TABLES")


def test_compile_without_output_prints_the_same_module(runner: CliRunner, valid: Path, tmp_path: Path) -> None:
    out = tmp_path / "tables.py"
    assert runner.invoke(cli, ["compile", str(valid), "-o", str(out)]).exit_code == EXIT_OK
    result = runner.invoke(cli, ["compile", str(valid)])
    assert result.exit_code == EXIT_OK, result.stderr
    assert result.stdout == out.read_text()


def test_compile_output_onto_a_directory_is_a_usage_error(runner: CliRunner, valid: Path,
                                                          tmp_path: Path) -> None:
    result = runner.invoke(cli, ["compile", str(valid), "-o", str(tmp_path)])
    assert result.exit_code == EXIT_USAGE


# --- plot -------------------------------------------------------------------------------


def test_plot_dot_writes_one_file_per_flow(runner: CliRunner, valid: Path, tmp_path: Path) -> None:
    out = tmp_path / "plots"
    result = runner.invoke(cli, ["plot", str(valid), "--format", "dot", "--output-dir", str(out)])
    assert result.exit_code == EXIT_OK, result.stderr
    assert (out / "greet.dot").is_file()
    assert "digraph" in (out / "greet.dot").read_text()
    assert [Path(line).name for line in result.stdout.splitlines()] == ["greet.dot"]


def test_plot_rejects_an_unknown_format(runner: CliRunner, valid: Path) -> None:
    result = runner.invoke(cli, ["plot", str(valid), "--format", "gif"])
    assert result.exit_code == EXIT_USAGE
    assert "gif" in result.stderr


def test_plot_unknown_flow_is_a_usage_error(runner: CliRunner, valid: Path, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["plot", str(valid), "--flow", "nope", "--format", "dot",
                                 "--output-dir", str(tmp_path / "plots")])
    assert result.exit_code == EXIT_USAGE
    assert result.stderr.startswith("error: ")
    assert "nope" in result.stderr
    assert "Traceback" not in result.output


# --- inspect ----------------------------------------------------------------------------


def test_inspect_lists_task_queues(runner: CliRunner, valid: Path) -> None:
    result = runner.invoke(cli, ["inspect", str(valid), "--list-task-queues"])
    assert result.exit_code == EXIT_OK, result.stderr
    assert result.stdout.splitlines() == ["Hello:hello_q"]


def test_inspect_lists_dispatcher_queues(runner: CliRunner, valid: Path) -> None:
    result = runner.invoke(cli, ["inspect", str(valid), "--list-dispatcher-queues"])
    assert result.exit_code == EXIT_OK, result.stderr
    assert result.stdout.splitlines() == ["greet:greet_q"]


def test_inspect_without_flags_summarises(runner: CliRunner, valid: Path) -> None:
    result = runner.invoke(cli, ["inspect", str(valid)])
    assert result.exit_code == EXIT_OK, result.stderr
    assert result.stdout.splitlines()[0] == f"{valid}: 1 flow, 1 task, 0 storages"
    assert "task queues: hello_q" in result.stdout
    assert "dispatcher queues: greet_q" in result.stdout


# --- the group --------------------------------------------------------------------------


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == EXIT_OK
    assert result.stdout.strip() == f"selflow {__version__}"


def test_help_has_real_examples(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == EXIT_OK
    assert "selflow compile config -o build/tables.py" in result.stdout
    for command in ("check", "compile", "plot", "inspect"):
        assert command in result.stdout


def test_every_command_takes_the_shared_config_options(runner: CliRunner) -> None:
    for command in ("check", "compile", "plot", "inspect"):
        result = runner.invoke(cli, [command, "--help"])
        assert result.exit_code == EXIT_OK
        assert "--nodes-definition" in result.stdout and "--flow-definitions" in result.stdout


# --- real processes ---------------------------------------------------------------------


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SELFLOW_CONFIG"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(cwd), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_python_m_selflow_checks_a_valid_config(valid: Path, tmp_path: Path) -> None:
    proc = run([sys.executable, "-m", "selflow", "check", str(valid)], cwd=tmp_path)
    assert proc.returncode == EXIT_OK, proc.stderr
    assert proc.stdout.startswith("OK: 1 flow, 1 task")


def test_python_m_selflow_exit_codes_without_tracebacks(invalid: Path, tmp_path: Path) -> None:
    bad_config = run([sys.executable, "-m", "selflow", "check", str(invalid)], cwd=tmp_path)
    no_config = run([sys.executable, "-m", "selflow", "check"], cwd=tmp_path)
    assert (bad_config.returncode, no_config.returncode) == (EXIT_CONFIG, EXIT_USAGE)
    assert "Traceback" not in bad_config.stderr + no_config.stderr
    assert LOCATED.match(bad_config.stderr.splitlines()[0])


def test_console_script_is_declared_and_runs(tmp_path: Path) -> None:
    # The entry point is part of the package metadata once selflow is installed (make install/test)
    (script,) = [ep for ep in entry_points(group="console_scripts") if ep.name == "selflow"]
    assert script.value == "selflow.cli:main"
    executable = shutil.which("selflow") or str(Path(sys.executable).parent / "selflow")
    proc = run([executable, "--version"], cwd=tmp_path)
    assert proc.returncode == EXIT_OK, proc.stderr
    assert proc.stdout.strip() == f"selflow {__version__}"
