"""The Celery app that ``selflow worker`` and ``selflow run-flow --broker`` build, and its checks.

selflow keeps flow state, node results and completion signals in its own state store (Redis), not
in Celery's result backend: the tasks ignore their Celery results. The store is ``--result-backend``
when given, else the broker when the broker is Redis; RabbitMQ cannot hold flow state.

Broker URLs in messages never show a password (``redact``).
"""

from __future__ import annotations

import json
import os
from typing import Any

from celery import Celery
from kombu import Connection
from kombu.utils.url import maybe_sanitize_url

from selflow.errors import SelflowError

__all__ = [
    "BROKER_ENVVAR", "BrokerError", "RESULT_BACKEND_ENVVAR", "TRANSPORT_OPTIONS_ENVVAR", "make_app",
    "probe_broker", "redact", "state_store_url",
]

#: where ``--broker`` comes from when it is not given
BROKER_ENVVAR = "SELFLOW_BROKER_URL"
#: where ``--result-backend`` (the state store's Redis URL) comes from when it is not given
RESULT_BACKEND_ENVVAR = "SELFLOW_RESULT_BACKEND"
#: a JSON object merged into Celery's ``broker_transport_options`` (e.g. ``{"visibility_timeout": 600}``)
TRANSPORT_OPTIONS_ENVVAR = "SELFLOW_BROKER_TRANSPORT_OPTIONS"
#: how long the up-front broker check waits before it calls the broker unreachable, in seconds
PROBE_TIMEOUT_S = 3.0

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class BrokerError(SelflowError):
    """The broker is unreachable, or its URL is unusable."""


def redact(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    return maybe_sanitize_url(url, mask="***")


def is_redis_url(url: str) -> bool:
    return url.startswith(_REDIS_SCHEMES)


def state_store_url(broker_url: str, result_backend: str | None = None) -> str:
    """The Redis URL of the flow state store: ``result_backend``, else a Redis broker's URL."""
    if result_backend:
        if not is_redis_url(result_backend):
            raise SelflowError(f"the result backend {redact(result_backend)} is not Redis: selflow keeps flow "
                               f"state in Redis, so pass a redis:// URL")
        return result_backend
    if is_redis_url(broker_url):
        return broker_url
    raise SelflowError(f"the broker {redact(broker_url)} cannot hold flow state: pass a redis:// "
                       f"--result-backend (or set {RESULT_BACKEND_ENVVAR})")


def transport_options_from_env(environ: dict[str, str] | None = None) -> dict[str, Any]:
    text = (os.environ if environ is None else environ).get(TRANSPORT_OPTIONS_ENVVAR, "").strip()
    if not text:
        return {}
    try:
        options = json.loads(text)
    except ValueError as exc:
        raise SelflowError(f"{TRANSPORT_OPTIONS_ENVVAR} is not JSON: {exc}") from None
    if not isinstance(options, dict):
        raise SelflowError(f"{TRANSPORT_OPTIONS_ENVVAR} must be a JSON object, not {type(options).__name__}")
    return options


def make_app(broker_url: str, *, store_url: str, main: str = "selflow") -> Celery:
    """A Celery app on ``broker_url`` set up for selflow; ``install`` registers the tasks on it.

    ``store_url`` is kept as ``app.conf.selflow_state_store`` so that ``selflow.init(app)`` finds it.
    """
    app = Celery(main, broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        # one message reserved per process: a killed worker takes little with it, and long
        # tasks do not hold back short ones (acks_late tasks; Celery's advice)
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        # a lost broker connection redelivers the messages of running acks_late tasks; stop those
        # tasks instead of running them twice at once
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_transport_options=transport_options_from_env(),
        selflow_state_store=store_url,
    )
    return app


def probe_broker(url: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Connect to the broker once, or raise ``BrokerError`` naming it (without its password)."""
    try:
        connection = Connection(url, connect_timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - kombu raises many kinds for a bad URL
        raise BrokerError(f"bad broker URL {redact(url)}: {exc}") from None
    try:
        connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - connection errors differ per transport
        raise BrokerError(f"cannot reach the broker at {redact(url)}: {_reason(exc)}") from None
    finally:
        connection.release()


def _reason(exc: BaseException) -> str:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = seen.__cause__ or seen.__context__
    return str(exc) or type(exc).__name__
