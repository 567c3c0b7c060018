"""The compiler: Selinon-format YAML -> validated model -> dispatch tables. Never imports Celery."""

from __future__ import annotations

from typing import Sequence

from selflow.codegen.issues import Issues
from selflow.codegen.loader import read_config
from selflow.codegen.model import SystemSpec
from selflow.codegen.validate_conditions import PredicateCatalog
from selflow.codegen.validate_flows import FlowReader, read_flow_listing
from selflow.codegen.validate_nodes import read_global, read_storages, read_tasks

__all__ = ["load_system"]


def load_system(configs: Sequence[str] = (), *, nodes: str | None = None, flows: Sequence[str] = ()) -> SystemSpec:
    """Read, check and normalise a configuration; raises ``ConfigError`` listing every mistake.

    Parameters:
        configs: files or directories, each a nodes file, a flow file, both in one, or a directory
            holding ``nodes.yaml`` and ``flows/``.
        nodes: Selinon's ``-n/--nodes-definition`` file.
        flows: Selinon's ``-f/--flow-definitions`` files or directories.
    """
    issues = Issues()
    raw = read_config(configs, nodes=nodes, flows=flows, issues=issues)
    storages = read_storages(issues, raw.storages)
    global_spec = read_global(issues, raw.global_, storages)
    tasks = read_tasks(issues, raw.tasks, storages, global_spec.default_task_queue)
    listed = read_flow_listing(issues, raw.flows, tasks)
    catalog = PredicateCatalog(issues, global_spec, raw.global_)
    flow_specs = FlowReader(issues, tasks, storages, listed, global_spec, catalog).read_all(raw.flow_definitions)
    issues.raise_if_any()
    return SystemSpec(
        tasks=tuple(tasks[name] for name in sorted(tasks)),
        flows=tuple(flow_specs[name] for name in sorted(flow_specs)),
        storages=tuple(storages[name] for name in sorted(storages)),
        global_=global_spec,
        input_hash=raw.input_hash,
    )
