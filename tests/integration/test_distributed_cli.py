"""``selflow run-flow --broker`` and ``selflow worker`` as a shell runs them: real processes,
real workers, JSON output and exit codes (0 success, 1 flow failed, 2 usage or configuration).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest

from itest_support import DATA, ITEST_CONFIG, REFERENCE_CONFIG, REPO_ROOT, Cluster, tag, worker_env

SITE = '{"site": "https://shop.acme.test"}'
UNREACHABLE = "redis://127.0.0.1:6390/0"


def selflow(*args: str, env: dict[str, str] | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "selflow", *args], cwd=REPO_ROOT, env=env or worker_env(0),
                          capture_output=True, text=True, timeout=timeout)


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line that says what is wrong (click prints usage lines around its own errors)."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.lower().startswith("error")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_run_flow_on_workers_prints_json_and_exits_0(reference_redis_cluster: Cluster) -> None:
    # Given a worker for config/ on Redis
    # When site_audit is submitted with --broker and --json
    result = selflow("run-flow", REFERENCE_CONFIG, "--flow", "site_audit", "--node-args", SITE,
                     "--broker", reference_redis_cluster.broker, "--json")

    # Then it exits 0 and prints one JSON object: the same report as an embedded run
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "success" and report["flow"] == "site_audit"
    assert re.fullmatch(r"[0-9a-f]{32}", report["flow_id"])
    assert set(report["finished_nodes"]) == {"CheckRobots", "crawl_site", "ComposeReport"}
    embedded = json.loads(selflow("run-flow", REFERENCE_CONFIG, "--flow", "site_audit", "--node-args", SITE,
                                  "--json").stdout)
    assert _shape(report) == _shape(embedded)


def _shape(report: dict[str, Any]) -> list[str]:
    return sorted(json.dumps([n["depth"], n["name"], n["status"], n.get("result"), n.get("error")], sort_keys=True)
                  for n in report["nodes"])


def test_run_flow_failing_flow_exits_1(itest_cluster: Cluster) -> None:
    args = json.dumps({"tag": tag(), "fail_after_s": 0})
    result = selflow("run-flow", ITEST_CONFIG, "--flow", "boom", "--node-args", args, "--broker", itest_cluster.broker,
                     "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "failure"
    assert list(report["failed_nodes"]) == ["Fail"]


def test_run_flow_text_summary_and_env_broker(itest_cluster: Cluster) -> None:
    # --broker from SELFLOW_BROKER_URL; the text summary names every node
    env = worker_env(0, SELFLOW_BROKER_URL=itest_cluster.broker)
    args = json.dumps({"tag": tag(), "sleep_s": 0})
    result = selflow("run-flow", ITEST_CONFIG, "--flow", "sleepy", "--node-args", args, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("flow sleepy succeeded")
    assert "ok  Sleep" in result.stdout and "ok  Tail" in result.stdout


def test_run_flow_no_wait_prints_the_flow_id(itest_cluster: Cluster, tmp_path: Any) -> None:
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"tag": tag(), "sleep_s": 0.5}))
    result = selflow("run-flow", ITEST_CONFIG, "--flow", "sleepy", "--node-args-file", str(args_file),
                     "--broker", itest_cluster.broker, "--no-wait")
    assert result.returncode == 0, result.stderr
    flow_id = result.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{32}", flow_id)
    state = itest_cluster.store.wait_for_end(flow_id, 30)
    assert state is not None and state.status == "success"


@pytest.mark.parametrize("args, expected", [
    (["--flow", "site_audi", "--node-args", SITE, "--broker", "redis://127.0.0.1:6379/5"],
     "unknown flow 'site_audi' (did you mean 'site_audit'?)"),
    (["--flow", "site_audit", "--node-args", "{not json", "--broker", "redis://127.0.0.1:6379/5"],
     "Invalid value for --node-args: not JSON"),
    (["--flow", "site_audit", "--node-args", SITE, "--broker", UNREACHABLE],
     f"cannot reach the broker at {UNREACHABLE}: Connection refused"),
    (["--flow", "site_audit", "--node-args", SITE, "--broker", "amqp://guest:s3cret@127.0.0.1:5679//",
      "--result-backend", "redis://127.0.0.1:6379/5"],
     "cannot reach the broker at amqp://guest:***@127.0.0.1:5679//: Connection refused"),
    (["--flow", "site_audit", "--node-args", SITE, "--broker", "amqp://guest:s3cret@127.0.0.1:5672//"],
     "the broker amqp://guest:***@127.0.0.1:5672// cannot hold flow state: pass a redis:// --result-backend"),
    (["--flow", "site_audit", "--no-wait"], "--no-wait needs --broker"),
], ids=["unknown-flow", "bad-json", "unreachable-redis", "unreachable-amqp", "amqp-without-store", "no-wait-alone"])
def test_run_flow_usage_errors_exit_2(redis_up: None, args: list[str], expected: str) -> None:
    result = selflow("run-flow", REFERENCE_CONFIG, *args, timeout=30)
    assert result.returncode == 2, result.stderr
    assert expected in error_line(result)
    assert "s3cret" not in result.stderr


def test_run_flow_task_module_that_does_not_import_exits_2(redis_up: None) -> None:
    result = selflow("run-flow", str(DATA / "broken_import"), "--flow", "haunted", "--broker",
                     "redis://127.0.0.1:6379/5", timeout=30)
    assert result.returncode == 2, result.stderr
    assert "cannot import module 'selflow_itest_no_such_module' (for 'Ghost')" in error_line(result)


def test_worker_refuses_bad_input_with_exit_2(redis_up: None) -> None:
    unreachable = selflow("worker", REFERENCE_CONFIG, "--broker", UNREACHABLE, timeout=30)
    assert unreachable.returncode == 2
    assert f"cannot reach the broker at {UNREACHABLE}" in error_line(unreachable)
    broken = selflow("worker", str(DATA / "broken_import"), "--broker", "redis://127.0.0.1:6379/5", timeout=30)
    assert broken.returncode == 2
    assert "selflow_itest_no_such_module" in error_line(broken)
    no_store = selflow("worker", REFERENCE_CONFIG, "--broker", "amqp://guest:guest@127.0.0.1:5672//", timeout=30)
    assert no_store.returncode == 2
    assert "cannot hold flow state" in error_line(no_store)


def test_worker_and_run_flow_help() -> None:
    for command in ("worker", "run-flow"):
        result = selflow(command, "--help", env=dict(os.environ))
        assert result.returncode == 0
        assert "--broker" in result.stdout and "--result-backend" in result.stdout
