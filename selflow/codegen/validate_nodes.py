"""Validation of the nodes file: tasks, storages, caches, global settings, sampling, throttling."""

from __future__ import annotations

import datetime
import importlib
import inspect
import json
import math
import os
import sys
from types import ModuleType
from typing import Any

from selflow.codegen.issues import MODULE_PATH, NODE_NAME, Issues, first_at, join_path, suggestion, type_name
from selflow.codegen.model import CacheSpec, GlobalSpec, ImportRef, SamplingSpec, StorageSpec, TaskSpec, TraceSpec
from selflow.codegen.validate_limits import TASK_LIMIT_KEYS, read_task_limits
from selflow.codegen.yamlsource import Mark, YList, YMap
from selflow.modulepaths import map_import

TASK_KEYS = ("name", "import", "classname", "storage", "storage_readonly", "storage_task_name", "output_schema",
             "max_retry", "retry_countdown", "queue", "throttling", "selective_run_function") + TASK_LIMIT_KEYS
STORAGE_KEYS = ("name", "import", "classname", "configuration", "cache")
CACHE_KEYS = ("name", "import", "configuration")
GLOBAL_KEYS = ("predicates_module", "default_task_queue", "default_dispatcher_queue", "migration_dir", "trace")
TRACE_KEYS = ("logging", "json", "function", "storage", "sentry")
THROTTLING_KEYS = ("days", "seconds", "microseconds", "milliseconds", "minutes", "hours", "weeks")
BUILTIN_CACHES = ("FIFO", "LIFO", "LRU", "MRU", "RR")
CACHES_MODULE = "selflow.caches"
STRATEGIES_MODULE = "selflow.strategies"
ROUTINES_MODULE = "selflow.routines"
DEFAULT_QUEUE = "celery"
#: stands in for an import that was reported as wrong; never reaches a returned ``SystemSpec``
UNRESOLVED = ImportRef("", "")


def import_user_module(module: str) -> ModuleType:
    """Import a module named in YAML, from the current directory first, as Selinon users expect."""
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    return importlib.import_module(module)


def describe_import_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def read_ref(issues: Issues, data: YMap, key_path: str, *, name_key: str, default_name: str | None,
             default_module: str | None) -> ImportRef | None:
    """A ``{name, import}`` pair (or ``import`` + ``classname``), mapped from Selinon's paths.

    Returns None only after reporting why.
    """
    found = len(issues.found)
    name = issues.string(data, name_key, key_path, default_name, required=default_name is None)
    module = issues.string(data, "import", key_path, default_module, required=default_module is None)
    if module is not None and not MODULE_PATH.match(module):
        issues.error(data.mark_of("import"), join_path(key_path, "import"),
                     f"'{module}' is not a Python module path")
        return None
    if name is not None and not name.isidentifier():
        issues.error(data.mark_of(name_key), join_path(key_path, name_key), f"'{name}' is not a Python name")
        return None
    if name is None or module is None:
        if len(issues.found) == found:  # the caller did not list the key as required
            missing = name_key if name is None else "import"
            issues.error(data.mark, key_path, f"missing required key '{missing}'")
        return None
    return ImportRef(*map_import(module, name))


def read_throttling(issues: Issues, data: YMap, key: str, key_path: str) -> float | None:
    """Selinon's timedelta keyword mapping, as seconds."""
    if key not in data or data[key] is None:
        return None
    path = join_path(key_path, key)
    value = issues.mapping(data[key], data.mark_of(key), path, "throttling")
    if value is None:
        return None
    issues.keys(value, path, THROTTLING_KEYS, what="throttling unit")
    kwargs = {}
    for unit in THROTTLING_KEYS:
        if unit in value:
            amount = value[unit]
            if isinstance(amount, (int, float)) and not isinstance(amount, bool) and 0 <= amount < math.inf:
                kwargs[unit] = amount
            else:
                issues.error(value.mark_of(unit), join_path(path, unit), f"must be a number >= 0, not {amount!r}")
    try:
        return datetime.timedelta(**kwargs).total_seconds()
    except OverflowError:
        issues.error(data.mark_of(key), path, "is too long a time")
        return None


def read_cache(issues: Issues, data: YMap, key_path: str) -> CacheSpec:
    default = CacheSpec(ImportRef(CACHES_MODULE, "LRU"))
    if data.get("cache") is None:
        return default
    path = join_path(key_path, "cache")
    cache = issues.mapping(data["cache"], data.mark_of("cache"), path, "cache")
    if cache is None:
        return default
    issues.keys(cache, path, CACHE_KEYS)
    ref = read_ref(issues, cache, path, name_key="name", default_name="LRU", default_module=CACHES_MODULE)
    if ref is None:
        return default
    if ref.module == CACHES_MODULE and ref.name not in BUILTIN_CACHES:
        issues.error(cache.mark_of("name"), join_path(path, "name"),
                     f"unknown cache '{ref.name}'{suggestion(ref.name, BUILTIN_CACHES)}; "
                     f"built-in caches: {', '.join(BUILTIN_CACHES)}")
    options: dict[str, Any] = {"max_cache_size": 0}
    if cache.get("configuration") is not None:
        conf = issues.mapping(cache["configuration"], cache.mark_of("configuration"),
                              join_path(path, "configuration"), "cache configuration")
        if conf is not None:
            options = dict(conf)
            if "size" in options:  # Selinon's docs say `size`; its code reads `max_cache_size`
                options["max_cache_size"] = options.pop("size")
            if ref.module == CACHES_MODULE:
                issues.keys(conf, join_path(path, "configuration"), ("max_cache_size", "size"))
                size = options.get("max_cache_size", 0)
                if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                    size_key = "max_cache_size" if "max_cache_size" in conf else "size"
                    issues.error(conf.mark_of(size_key), join_path(path, f"configuration.{size_key}"),
                                 f"must be a whole number >= 0, not {size!r}")
    return CacheSpec(ref, tuple(sorted(options.items())))


def read_storages(issues: Issues, items: list[tuple[Any, Mark]]) -> dict[str, StorageSpec]:
    storages: dict[str, StorageSpec] = {}
    for index, (item, mark) in enumerate(items):
        data = issues.mapping(item, mark, f"storages[{index}]", "a storage")
        if data is None:
            continue
        name = data.get("name")
        path = f"storages.{name}" if isinstance(name, str) and name else f"storages[{index}]"
        issues.keys(data, path, STORAGE_KEYS, required=("name", "import"))
        name = issues.string(data, "name", path, required=True)
        if name is None:
            continue
        if name in storages:
            issues.error(data.mark_of("name"), join_path(path, "name"), f"storage '{name}' is defined twice "
                         f"(first at {first_at(storages[name].mark, data.mark)})")
            continue
        # a storage whose import is wrong keeps its name, so tasks using it are not reported too
        ref = read_ref(issues, data, path, name_key="classname", default_name=name,
                       default_module=None) or UNRESOLVED
        storages[name] = StorageSpec(name=name, ref=ref, configuration=_plain(data.get("configuration")),
                                     cache=read_cache(issues, data, path), mark=data.mark)
    return storages


def _plain(value: Any) -> Any:
    """Drop the YAML mark wrappers: the model holds plain dicts and lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _check_schema(issues: Issues, data: YMap, path: str, schema_path: str) -> Any:
    """Read ``output_schema`` (next to the YAML file, else from the current directory), check it is a
    JSON Schema, and return its content: the tables carry the schema itself, so workers need no
    file and the compiled output does not depend on where it was compiled."""
    import jsonschema

    mark = data.mark_of("output_schema")
    base = os.path.dirname(mark.path) if mark.path else "."
    candidates = [schema_path] if os.path.isabs(schema_path) else [os.path.join(base, schema_path), schema_path]
    found = next((c for c in candidates if os.path.isfile(c)), None)
    key_path = join_path(path, "output_schema")
    if found is None:
        where = "" if os.path.isabs(schema_path) else " next to this file or in the current directory"
        issues.error(mark, key_path, f"schema file '{schema_path}' not found{where}")
        return None
    try:
        with open(found, encoding="utf-8") as handle:
            schema = json.load(handle)
    except (OSError, ValueError, RecursionError) as exc:
        issues.error(mark, key_path, f"'{found}' is not a JSON file: {exc}")
        return None
    try:
        if not isinstance(schema, (dict, bool)):
            raise jsonschema.SchemaError(f"a schema is an object or a boolean, not {type_name(schema)}")
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        issues.error(mark, key_path, f"'{found}' is not a valid JSON Schema: {exc.message}")
    except (TypeError, ValueError, LookupError) as exc:  # e.g. a '$schema' that is a list
        issues.error(mark, key_path, f"'{found}' is not a valid JSON Schema: {exc}")
    return schema


def read_tasks(issues: Issues, items: list[tuple[Any, Mark]], storages: dict[str, StorageSpec],
               default_queue: str) -> dict[str, TaskSpec]:
    tasks: dict[str, TaskSpec] = {}
    for index, (item, mark) in enumerate(items):
        data = issues.mapping(item, mark, f"tasks[{index}]", "a task")
        if data is None:
            continue
        name = data.get("name")
        path = f"tasks.{name}" if isinstance(name, str) and name else f"tasks[{index}]"
        issues.keys(data, path, TASK_KEYS, required=("name", "import"))
        name = issues.string(data, "name", path, required=True)
        if name is None:
            continue
        if not NODE_NAME.match(name):
            issues.error(data.mark_of("name"), join_path(path, "name"),
                         f"invalid node name '{name}': use letters, digits and '_', not starting with a digit")
            continue
        if name in tasks:
            issues.error(data.mark_of("name"), join_path(path, "name"),
                         f"task '{name}' is defined twice (first at {first_at(tasks[name].mark, data.mark)})")
            continue
        if name in storages:
            issues.error(data.mark_of("name"), join_path(path, "name"),
                         f"'{name}' names both a storage and a task; rename one")
        ref = read_ref(issues, data, path, name_key="classname", default_name=name, default_module=None)
        storage = issues.string(data, "storage", path)
        if storage is not None and storage not in storages:
            issues.error(data.mark_of("storage"), join_path(path, "storage"),
                         f"unknown storage '{storage}'{suggestion(storage, storages)}")
        storage_task_name = issues.string(data, "storage_task_name", path)
        if storage_task_name is not None and storage is None:
            issues.error(data.mark_of("storage_task_name"), join_path(path, "storage_task_name"),
                         "is set but the task has no 'storage'")
        readonly = issues.boolean(data, "storage_readonly", path)
        if readonly and storage is None:
            issues.error(data.mark_of("storage_readonly"), join_path(path, "storage_readonly"),
                         "is set but the task has no 'storage'")
        schema = issues.string(data, "output_schema", path)
        if schema is not None:
            schema = _check_schema(issues, data, path, schema)
        queue = issues.string(data, "queue", path, default_queue) or default_queue
        if "queue" in data:
            queue = issues.expand_env(queue, data.mark_of("queue"), join_path(path, "queue"))
        selective = _selective_run_function(issues, data, path)
        tasks[name] = TaskSpec(
            name=name, ref=ref or UNRESOLVED, storage=storage, storage_readonly=readonly,
            storage_task_name=storage_task_name, output_schema=schema,
            max_retry=issues.count(data, "max_retry", path),
            retry_countdown=issues.seconds(data, "retry_countdown", path),
            queue=queue, throttling=read_throttling(issues, data, "throttling", path),
            selective_run_function=selective, mark=data.mark, **read_task_limits(issues, data, path))
    return tasks


def _selective_run_function(issues: Issues, data: YMap, path: str) -> ImportRef:
    default = ImportRef(ROUTINES_MODULE, "always_run")
    if data.get("selective_run_function") is None:
        return default
    key_path = join_path(path, "selective_run_function")
    spec = issues.mapping(data["selective_run_function"], data.mark_of("selective_run_function"), key_path,
                          "selective_run_function")
    if spec is None:
        return default
    issues.keys(spec, key_path, ("name", "import"))
    return read_ref(issues, spec, key_path, name_key="name", default_name="always_run",
                    default_module=ROUTINES_MODULE) or default


def read_sampling(issues: Issues, data: YMap, path: str) -> SamplingSpec:
    """The dispatcher's safety-tick strategy; its arguments are checked against its signature."""
    if data.get("sampling") is None:
        return SamplingSpec()
    key_path = join_path(path, "sampling")
    spec = issues.mapping(data["sampling"], data.mark_of("sampling"), key_path, "sampling")
    if spec is None:
        return SamplingSpec()
    issues.keys(spec, key_path, ("name", "import", "args"), required=("name",))
    ref = read_ref(issues, spec, key_path, name_key="name", default_name=None, default_module=STRATEGIES_MODULE)
    args: dict[str, Any] = {}
    given: YMap | None = None
    if spec.get("args") is not None:
        given = issues.mapping(spec["args"], spec.mark_of("args"), join_path(key_path, "args"), "sampling args")
        args = dict(_plain(given)) if given is not None else {}
    if ref is None:
        return SamplingSpec()
    try:
        func = getattr(import_user_module(ref.module), ref.name)
    except Exception as exc:  # noqa: BLE001 - any import failure is the user's to see
        if isinstance(exc, AttributeError):
            module = sys.modules.get(ref.module)
            known = [n for n in dir(module) if not n.startswith("_")] if module else []
            message = f"module '{ref.module}' has no strategy '{ref.name}'{suggestion(ref.name, known)}"
        else:
            message = f"cannot import '{ref.module}': {describe_import_error(exc)}"
        issues.error(spec.mark_of("name"), join_path(key_path, "name"), message)
        return SamplingSpec(ref, tuple(sorted(args.items())))
    _check_call_args(issues, func, given, ("status",), spec.mark_of("args") if "args" in spec else spec.mark,
                     join_path(key_path, "args"), f"strategy '{ref.name}'")
    return SamplingSpec(ref, tuple(sorted(args.items())))


def _check_call_args(issues: Issues, func: Any, given: YMap | None, supplied: tuple[str, ...], mark: Mark,
                     key_path: str, what: str) -> None:
    """Check YAML ``args`` against ``func``'s parameters; ``supplied`` are filled in at run time."""
    args = given if given is not None else {}
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        issues.error(mark, key_path, f"{what} is not a function")
        return
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
    named = {n: p for n, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    for name in args:
        name_mark = given.key_mark(name) if given is not None else mark
        if name in supplied:
            issues.error(name_mark, join_path(key_path, name), f"'{name}' is passed to {what} at run time; "
                                                                "remove it from args")
        elif name not in named and not takes_kwargs:
            issues.error(name_mark, join_path(key_path, name),
                         f"{what} takes no argument '{name}'{suggestion(name, set(named) - set(supplied))}")
    missing = [n for n, p in named.items() if n not in supplied and n not in args and p.default is p.empty]
    if missing:
        issues.error(mark, key_path, f"{what} needs argument(s) {', '.join(missing)}")


def read_global(issues: Issues, data: YMap | None, storages: dict[str, StorageSpec]) -> GlobalSpec:
    if data is None:
        return GlobalSpec()
    issues.keys(data, "global", GLOBAL_KEYS)
    predicates = ["selflow.predicates"]
    for name, mark in issues.names(data, "predicates_module", "global"):
        module = map_import(name, "_")[0]
        if not MODULE_PATH.match(module):
            issues.error(mark, "global.predicates_module", f"'{name}' is not a Python module path")
        elif module not in predicates:
            predicates.append(module)

    def queue(key: str) -> str:
        value = issues.string(data, key, "global", DEFAULT_QUEUE) or DEFAULT_QUEUE
        return issues.expand_env(value, data.mark_of(key), f"global.{key}") if key in data else value

    migration_dir = issues.string(data, "migration_dir", "global")
    if migration_dir is not None:
        migration_dir = issues.expand_env(migration_dir, data.mark_of("migration_dir"), "global.migration_dir")
    return GlobalSpec(predicates_modules=tuple(predicates), default_task_queue=queue("default_task_queue"),
                      default_dispatcher_queue=queue("default_dispatcher_queue"), migration_dir=migration_dir,
                      trace=read_trace(issues, data, storages))


def read_trace(issues: Issues, data: YMap, storages: dict[str, StorageSpec]) -> tuple[TraceSpec, ...]:
    if "trace" not in data or data["trace"] is False:
        return ()
    value = data["trace"]
    if value is None:
        issues.error(data.mark_of("trace"), "global.trace", "is null; use false for no tracing, or list backends")
        return ()
    entries = list(enumerate(value)) if isinstance(value, YList) else [(None, value)]
    traces: list[TraceSpec] = []
    for index, entry in entries:
        path = "global.trace" if index is None else f"global.trace[{index}]"
        mark = value.mark_of(index) if index is not None else data.mark_of("trace")
        entry_map = issues.mapping(entry, mark, path, "a trace entry")
        if entry_map is None:
            continue
        issues.keys(entry_map, path, TRACE_KEYS, what="trace backend")
        for kind in TRACE_KEYS:
            if kind in entry_map:
                spec = _trace_backend(issues, entry_map, kind, path, storages)
                if spec is not None:
                    traces.append(spec)
    return tuple(traces)


def _trace_backend(issues: Issues, entry: YMap, kind: str, path: str,
                   storages: dict[str, StorageSpec]) -> TraceSpec | None:
    key_path = join_path(path, kind)
    if kind in ("logging", "json"):
        return TraceSpec(kind) if issues.boolean(entry, kind, path) else None
    options = issues.mapping(entry[kind], entry.mark_of(kind), key_path, f"trace '{kind}'")
    if options is None:
        return None
    if kind == "function":
        issues.keys(options, key_path, ("name", "import"), required=("name", "import"))
        ref = read_ref(issues, options, key_path, name_key="name", default_name=None, default_module=None)
        return TraceSpec(kind, (("import", ref.module), ("name", ref.name))) if ref else None
    if kind == "storage":
        issues.keys(options, key_path, ("name", "method"), required=("name",))
        name = issues.string(options, "name", key_path, required=True)
        method = issues.string(options, "method", key_path, "trace") or "trace"
        if name is not None and name not in storages:
            issues.error(options.mark_of("name"), join_path(key_path, "name"),
                         f"unknown storage '{name}'{suggestion(name, storages)}")
            return None
        return TraceSpec(kind, (("method", method), ("name", name))) if name else None
    issues.keys(options, key_path, ("dsn",), required=("dsn",))
    dsn = issues.string(options, "dsn", key_path, required=True)
    if dsn is None:
        return None
    return TraceSpec(kind, (("dsn", issues.expand_env(dsn, options.mark_of("dsn"), join_path(key_path, "dsn"))),))

