"""Selective-run functions: may a task on a selective run's path reuse an earlier result?

In a selective run (``run_flow_selective``) the requested tasks always run. A task that is only
on the path to them asks its ``selective_run_function`` first. The function gets
``(flow_name, node_name, node_args, task_names, results)``, where ``task_names`` are the
requested tasks and ``results`` reads stored results. It returns ``None`` to run the task, or
the task id of an earlier run whose stored result should be used instead. A custom function can,
for example, look up the last successful run for the same ``node_args``.
"""

from __future__ import annotations

from typing import Any, Sequence


def always_run(
    flow_name: str, node_name: str, node_args: Any, task_names: Sequence[str], results: Any
) -> None:
    """The default: never reuse, always run the task again."""
    return None


__all__ = ["always_run"]
