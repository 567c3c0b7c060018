"""A team's existing Celery app, with selflow added by ``selflow.init`` (the integration tests
start ``celery -A selflow_itest_user_app worker`` on it).

``USER_APP_BROKER`` and ``USER_APP_BACKEND`` (Redis) come from the test.
"""

from __future__ import annotations

import os

from celery import Celery

import selflow

app = Celery("selflow_itest_user_app", broker=os.environ["USER_APP_BROKER"],
             backend=os.environ["USER_APP_BACKEND"])
app.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json")


@app.task(name="user_app.add")
def add(x: int, y: int) -> int:
    """The team's own task: it keeps working beside selflow's."""
    return x + y


selflow.init(app, config=os.environ.get("USER_APP_CONFIG", "config"))
