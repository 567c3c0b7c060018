"""Validation of per-node Celery controls and cluster-wide limits (beyond Selinon's YAML).

Tasks: ``priority``, ``soft_time_limit``, ``time_limit``, ``acks_late``, ``rate_limit`` (Celery's
own, per worker), ``concurrency`` and ``keyed_rate_limit`` (selflow's, across the cluster).
Flows: ``concurrency``.
"""

from __future__ import annotations

import math
import re
from typing import Any

from selflow.codegen.issues import Issues, join_path, type_name
from selflow.codegen.model import KeyedRateLimit
from selflow.codegen.yamlsource import YList, YMap

TASK_LIMIT_KEYS = ("priority", "soft_time_limit", "time_limit", "acks_late", "rate_limit", "concurrency",
                   "keyed_rate_limit")
FLOW_LIMIT_KEYS = ("concurrency",)

#: Celery's rate-limit strings: "10", "10/s", "100/m", "1000/h"
RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*([smh]))?\s*$")
PERIOD_S = {"s": 1.0, "m": 60.0, "h": 3600.0}
#: RabbitMQ allows message priorities 0-255 (with x-max-priority); Redis maps them onto 0-9
MAX_PRIORITY = 255


def _positive_seconds(issues: Issues, data: YMap, key: str, path: str) -> float | None:
    if data.get(key) is None:
        return None
    value = data[key]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < math.inf:
        return float(value)
    issues.error(data.mark_of(key), join_path(path, key), f"must be a number of seconds > 0, not {value!r}")
    return None


def _positive_int(issues: Issues, data: YMap, key: str, path: str, *, low: int, high: int | None = None) -> int | None:
    if data.get(key) is None:
        return None
    value = data[key]
    if isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value <= high):
        return value
    bounds = f"between {low} and {high}" if high is not None else f">= {low}"
    issues.error(data.mark_of(key), join_path(path, key), f"must be a whole number {bounds}, not {value!r}")
    return None


def parse_rate(text: Any) -> float | None:
    """Seconds between two starts for a Celery-style rate ("10/m" -> 6.0), or None if malformed."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        text = str(text)
    match = RATE.match(text) if isinstance(text, str) else None
    if match is None or float(match.group(1)) <= 0:
        return None
    return PERIOD_S[match.group(2) or "s"] / float(match.group(1))


def read_task_limits(issues: Issues, data: YMap, path: str) -> dict[str, Any]:
    """The TaskSpec fields for the keys of ``TASK_LIMIT_KEYS`` present in ``data``."""
    limits: dict[str, Any] = {
        "priority": _positive_int(issues, data, "priority", path, low=0, high=MAX_PRIORITY),
        "soft_time_limit": _positive_seconds(issues, data, "soft_time_limit", path),
        "time_limit": _positive_seconds(issues, data, "time_limit", path),
        "acks_late": issues.boolean(data, "acks_late", path, True),
        "concurrency": _positive_int(issues, data, "concurrency", path, low=1),
    }
    soft, hard = limits["soft_time_limit"], limits["time_limit"]
    if soft is not None and hard is not None and soft >= hard:
        issues.error(data.mark_of("soft_time_limit"), join_path(path, "soft_time_limit"),
                     f"must be below time_limit ({hard:g} s): the soft limit warns the task before the hard one "
                     "kills it")
    if data.get("rate_limit") is not None:
        if parse_rate(data["rate_limit"]) is None:
            issues.error(data.mark_of("rate_limit"), join_path(path, "rate_limit"),
                         f"must be a rate like '10/s', '100/m' or '1000/h', not {data['rate_limit']!r}")
        else:
            limits["rate_limit"] = str(data["rate_limit"]).replace(" ", "")
    limits["keyed_rate_limit"] = _keyed_rate_limit(issues, data, path)
    return {key: value for key, value in limits.items() if value is not None}


def _keyed_rate_limit(issues: Issues, data: YMap, path: str) -> KeyedRateLimit | None:
    if data.get("keyed_rate_limit") is None:
        return None
    key_path = join_path(path, "keyed_rate_limit")
    spec = issues.mapping(data["keyed_rate_limit"], data.mark_of("keyed_rate_limit"), key_path, "keyed_rate_limit")
    if spec is None:
        return None
    issues.keys(spec, key_path, ("key", "rate"), required=("key", "rate"))
    key = spec.get("key")
    if isinstance(key, str) and key:
        keys: tuple[str, ...] = (key,)
    elif isinstance(key, YList) and key and all(isinstance(k, (str, int)) and k != "" for k in key):
        keys = tuple(str(k) for k in key)
    else:
        if "key" in spec:
            issues.error(spec.mark_of("key"), join_path(key_path, "key"),
                         f"must be a node_args key or a list of keys (a path), not {type_name(key)}")
        return None
    interval = parse_rate(spec.get("rate"))
    if interval is None:
        if "rate" in spec:
            issues.error(spec.mark_of("rate"), join_path(key_path, "rate"),
                         f"must be a rate like '1/s' or '30/m', not {spec.get('rate')!r}")
        return None
    return KeyedRateLimit(keys, interval)


def read_flow_limits(issues: Issues, data: YMap, path: str) -> dict[str, Any]:
    concurrency = _positive_int(issues, data, "concurrency", path, low=1)
    return {} if concurrency is None else {"concurrency": concurrency}
