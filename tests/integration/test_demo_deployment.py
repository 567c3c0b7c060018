"""demo-deployment/local.sh runs the reference site_audit flow on two real worker processes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[2]
BROKER = "redis://127.0.0.1:6379/4"


def test_local_deployment_script_runs_site_audit_on_workers(redis_up: None) -> None:
    # Given an empty Redis database for the broker and the flow state
    redis.Redis.from_url(BROKER).flushdb()
    try:
        # When the demo script starts its workers and submits site_audit
        result = subprocess.run(["bash", "demo-deployment/local.sh", BROKER], cwd=ROOT, capture_output=True,
                                text=True, timeout=240)
    finally:
        redis.Redis.from_url(BROKER).flushdb()
    # Then the flow succeeded on the workers and the report shows the fallback that handled /broken
    assert result.returncode == 0, result.stdout + result.stderr
    assert "flow site_audit succeeded" in result.stdout
    assert "RecordDeadLink" in result.stdout
