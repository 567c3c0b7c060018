"""The reference flows in config/ on real workers: Redis as broker and store, and RabbitMQ as
broker with Redis as store. Each distributed run must end like the embedded run of the same flow:
the same nodes, with the same results, in the same sub-flows.
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterator

import pytest

from itest_support import DB_RABBIT_STATE, REFERENCE_CONFIG, Cluster, compile_config, flush, start_cluster

SITE = {"site": "https://shop.acme.test"}
GOOD_PAGE = {"site": "https://shop.acme.test", "url": "https://shop.acme.test/products/widget"}
BROKEN_PAGE = {"site": "https://shop.acme.test", "url": "https://shop.acme.test/broken"}


@pytest.fixture(scope="module", params=["redis", "rabbitmq"])
def reference_cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """``selflow worker config`` (2 processes) on Redis, or on RabbitMQ with its store in Redis."""
    if request.param == "redis":
        yield request.getfixturevalue("reference_redis_cluster")
        return
    request.getfixturevalue("redis_up")
    cluster = start_cluster([REFERENCE_CONFIG], broker=request.getfixturevalue("rabbit_vhost"),
                            store_db=DB_RABBIT_STATE, tmp_dir=tmp_path_factory.mktemp("reference-rabbitmq"),
                            name="reference-rabbitmq")
    yield cluster
    cluster.stop()
    flush(DB_RABBIT_STATE)


def embedded_report(flow: str, node_args: Any) -> dict[str, Any]:
    from selflow.runtime.embedded import EmbeddedRunner
    from selflow.runtime.report import flow_report

    tables = compile_config([REFERENCE_CONFIG])
    runner = EmbeddedRunner(tables)
    state = runner.run_flow(flow, node_args, timeout=30)
    return flow_report(runner.store, tables, state.flow_id)


def shape(report: dict[str, Any]) -> list[str]:
    """Every node of a report without its ids: what ran where and what it returned, sorted."""
    rows = []
    for node in report["nodes"]:
        detail = node.get("result") if node["status"] == "success" else node.get("error")
        rows.append(json.dumps([node["depth"], node["flow"], node["name"], node["status"], detail], sort_keys=True))
    return sorted(rows)


def assert_each_id_once(report: dict[str, Any]) -> None:
    ids = [node["id"] for node in report["nodes"]]
    assert len(ids) == len(set(ids)), "a node was recorded twice"


@pytest.mark.parametrize("flow, node_args", [
    ("site_audit", SITE),
    ("crawl_site", SITE),
    ("analyze_page", GOOD_PAGE),
], ids=["site_audit", "crawl_site", "analyze_page"])
def test_reference_flow_succeeds_like_embedded(reference_cluster: Cluster, flow: str, node_args: Any) -> None:
    # Given workers for config/ and the embedded run of the same flow
    expected = embedded_report(flow, node_args)

    # When the flow runs on the workers
    state, report = reference_cluster.run(flow, node_args)

    # Then it succeeds with the same nodes and results, each node recorded once
    assert state.status == "success", report
    assert shape(report) == shape(expected)
    assert_each_id_once(report)


def test_site_audit_with_notify_uses_the_custom_queue(reference_cluster: Cluster) -> None:
    # Given NotifyTeam, a nowait node on the acme_notify queue, which a plain `selflow worker config` consumes
    args = {**SITE, "notify": "#web-audit"}

    # When site_audit runs with a channel to notify
    state, report = reference_cluster.run("site_audit", args)

    # Then the flow succeeds, and NotifyTeam (not waited for, so not in the flow's state) runs soon after
    assert state.status == "success", report
    assert "NotifyTeam" not in report["finished_nodes"]
    wanted = {"channel": "#web-audit", "text": "Audit of https://shop.acme.test is ready."}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if wanted in stored_results(reference_cluster):
            break
        time.sleep(0.2)
    assert wanted in stored_results(reference_cluster)


def stored_results(cluster: Cluster) -> list[Any]:
    client = cluster.redis.client
    return [json.loads(client.get(key) or "null") for key in client.scan_iter("selflow:result:*")]


def test_failing_task_runs_its_fallback(reference_cluster: Cluster) -> None:
    # Given analyze_page on the /broken page: FetchPage fails twice (max_retry: 1)
    # When it runs on the workers
    state, report = reference_cluster.run("analyze_page", BROKEN_PAGE)

    # Then RecordDeadLink (the fallback) runs and the flow succeeds, the failure kept in the result
    assert state.status == "success", report
    assert set(report["finished_nodes"]) == {"RecordDeadLink"}
    assert list(report["failed_nodes"]) == ["FetchPage"]
    dead = [n for n in report["nodes"] if n["name"] == "RecordDeadLink"]
    assert dead[0]["result"] == {"url": BROKEN_PAGE["url"], "dead": True,
                                 "reason": "https://shop.acme.test/broken: connection reset by peer"}
    assert shape(report) == shape(embedded_report("analyze_page", BROKEN_PAGE))


def test_worker_log_names_its_queues(reference_cluster: Cluster) -> None:
    # A plain `selflow worker config` consumes every queue of the configuration
    log = reference_cluster.worker.log()
    assert ".> acme_notify" in log and ".> celery" in log
