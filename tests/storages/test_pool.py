"""The StoragePool: lazy set-up, names, read-only tasks, output schemas, caches, env expansion, tracing."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

import selflow.storages.pool as pool_module
from selflow.codegen.model import CacheSpec, ImportRef, StorageSpec, TaskSpec
from selflow.errors import StorageError
from selflow.refs import ImportRefError
from selflow.storages import (
    DataStorage,
    MemoryStorage,
    OutputSchemaError,
    RecordNotFound,
    StorageConfigError,
    StorageOperationError,
    StoragePool,
)

ROOT = Path(__file__).resolve().parents[2]
HERE = __name__  # the module the test adapters below are imported from
FLOW = "ingest"


class CountingStorage(MemoryStorage):
    """A memory storage that counts how often it is built, connected and read."""

    built = 0
    connects = 0
    retrieves = 0
    lock = threading.Lock()

    def __init__(self, **kwargs: Any):
        with CountingStorage.lock:
            CountingStorage.built += 1
        super().__init__(**kwargs)

    def connect(self) -> None:
        with CountingStorage.lock:
            CountingStorage.connects += 1
        super().connect()

    def retrieve(self, flow_name: str, task_name: str, task_id: str) -> Any:
        with CountingStorage.lock:
            CountingStorage.retrieves += 1
        return super().retrieve(flow_name, task_name, task_id)

    @classmethod
    def reset(cls) -> None:
        cls.built = cls.connects = cls.retrieves = 0


class RecordingStorage(MemoryStorage):
    """Keeps the constructor arguments it was given, to check their types."""

    def __init__(self, host: str = "localhost", port: int = 0, flag: bool = True, ratio: float | None = None,
                 label: str = "", echo_to: bool | str = False, extra: Any = None):
        super().__init__()
        self.given = {"host": host, "port": port, "flag": flag, "ratio": ratio, "label": label,
                      "echo_to": echo_to, "extra": extra}


class PositionalStorage(MemoryStorage):
    def __init__(self, path: str | None = None):
        super().__init__()
        self.path = path


class BrokenStorage(MemoryStorage):
    def retrieve(self, flow_name: str, task_name: str, task_id: str) -> Any:
        raise ValueError("the disk is on fire")


class NoErrorsStorage(DataStorage):
    """Implements only the required methods: no store_error, no delete."""

    def __init__(self) -> None:
        self.connected = False

    def connect(self) -> None:
        self.connected = True

    def is_connected(self) -> bool:
        return self.connected

    def disconnect(self) -> None:
        self.connected = False

    def retrieve(self, flow_name: str, task_name: str, task_id: str) -> Any:
        raise RecordNotFound(flow_name, task_name, task_id)

    def store(self, node_args: Any, flow_name: str, task_name: str, task_id: str, result: Any) -> Any:
        return task_id


class SelinonStyleStorage:
    """A Selinon adapter as users wrote them: no selflow base class, Selinon's method names."""

    def __init__(self, **configuration: Any):
        self.configuration = configuration
        self.data: dict[str, Any] = {}
        self.conn: Any = None

    def connect(self) -> None:
        self.conn = object()

    def is_connected(self) -> bool:
        return self.conn is not None

    def disconnect(self) -> None:
        self.conn = None

    def retrieve(self, flow_name: str, task_name: str, task_id: str) -> Any:
        return self.data[task_id]

    def store(self, node_args: Any, flow_name: str, task_name: str, task_id: str, result: Any) -> Any:
        self.data[task_id] = result
        return task_id


def storage(name: str, classname: str, configuration: Any = None, *, module: str = HERE,
            cache: CacheSpec | None = None) -> StorageSpec:
    return StorageSpec(name=name, ref=ImportRef(module, classname), configuration=configuration,
                       cache=cache or CacheSpec(ImportRef("selflow.caches", "LRU")))


def task(name: str, storage_name: str | None = "Results", **options: Any) -> TaskSpec:
    return TaskSpec(name=name, ref=ImportRef("shop.tasks", name), storage=storage_name, **options)


class Events:
    """A tracer that records (event, details)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, event: str, details: dict[str, Any]) -> None:
        self.seen.append((event, dict(details)))

    def names(self) -> list[str]:
        return [event for event, _ in self.seen]


@pytest.fixture(autouse=True)
def _reset_counts() -> None:
    CountingStorage.reset()


# --- lazy set-up ----------------------------------------------------------------------------


def test_nothing_is_imported_built_or_connected_until_first_use() -> None:
    # Given a pool whose second storage names a module that does not exist
    pool = StoragePool([storage("Results", "CountingStorage"),
                        storage("Elsewhere", "Nothing", module="no_such_module_for_selflow")],
                       tasks=[task("Fetch"), task("Other", "Elsewhere")])
    # Then building the pool built and imported nothing
    assert (CountingStorage.built, CountingStorage.connects) == (0, 0)
    # When a task first needs its storage, it is built and connected once
    adapter = pool.adapter_for_task("Fetch")
    assert isinstance(adapter, CountingStorage) and adapter.is_connected()
    assert pool.adapter_for_task("Fetch") is adapter
    assert (CountingStorage.built, CountingStorage.connects) == (1, 1)
    # and the broken import shows only when that storage is used
    with pytest.raises(ImportRefError, match="no_such_module_for_selflow"):
        pool.adapter_for_task("Other")


def test_threads_racing_for_a_storage_build_and_connect_it_once() -> None:
    pool = StoragePool([storage("Results", "CountingStorage")], tasks=[task("Fetch")])
    barrier = threading.Barrier(16)
    adapters: list[Any] = []

    def use() -> None:
        barrier.wait()
        adapters.append(pool.adapter_for_task("Fetch"))

    threads = [threading.Thread(target=use) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(adapters) == 16 and len({id(a) for a in adapters}) == 1
    assert (CountingStorage.built, CountingStorage.connects) == (1, 1)


def test_a_disconnected_adapter_is_connected_again_on_next_use() -> None:
    events = Events()
    pool = StoragePool([storage("Results", "CountingStorage")], tasks=[task("Fetch")], tracer=events)
    pool.store("Fetch", FLOW, "t1", None, {"a": 1})
    adapter = pool.adapter_for_task("Fetch")
    # When the pool is closed, the adapter is disconnected
    pool.close()
    assert not adapter.is_connected()
    # Then the next use connects the same adapter again
    assert pool.adapter_for_task("Fetch") is adapter and adapter.is_connected()
    assert pool.retrieve("Fetch", FLOW, "t1") == {"a": 1}
    assert (CountingStorage.built, CountingStorage.connects) == (1, 2)
    assert events.names().count("STORAGE_CONNECT") == 2


def test_a_task_without_storage_has_no_adapter_and_stores_nothing() -> None:
    pool = StoragePool([storage("Results", "CountingStorage")], tasks=[task("Plain", None)])
    assert pool.adapter_for_task("Plain") is None
    assert pool.adapter_for_task("NotATask") is None
    assert pool.store("Plain", FLOW, "t1", None, {"a": 1}) is None
    assert CountingStorage.built == 0
    with pytest.raises(StorageError, match="task 'Plain' has no storage"):
        pool.retrieve("Plain", FLOW, "t1")


def test_a_task_naming_an_unknown_storage_is_rejected() -> None:
    with pytest.raises(StorageError, match="uses storage 'Missing', which is not defined"):
        StoragePool([storage("Results", "CountingStorage")], tasks=[task("Fetch", "Missing")])


def test_the_pool_accepts_system_tables() -> None:
    from selflow.tables import SystemTables

    tables = SystemTables(selflow_version="0", input_hash="", tasks={"Fetch": task("Fetch")}, flows={},
                          storages={"Results": storage("Results", "MemoryStorage", module="selflow.storages.memory")})
    pool = StoragePool(tables)
    pool.store("Fetch", FLOW, "t1", None, [1, 2])
    assert pool.retrieve("Fetch", FLOW, "t1") == [1, 2]


def test_a_selinon_style_adapter_without_our_base_class_works() -> None:
    pool = StoragePool([storage("Results", "SelinonStyleStorage", {"anything": 1})], tasks=[task("Fetch")])
    pool.store("Fetch", FLOW, "t1", None, {"a": 1})
    assert pool.retrieve("Fetch", FLOW, "t1") == {"a": 1}
    assert pool.adapter_for_task("Fetch").configuration == {"anything": 1}


# --- storage_task_name and storage_readonly -------------------------------------------------


def test_storage_task_name_is_used_to_store_retrieve_and_delete(tmp_path: Path) -> None:
    # Given a task stored under another name, in a filesystem storage (the name is in the path)
    pool = StoragePool([storage("Results", "FilesystemStorage", {"path": str(tmp_path)},
                                module="selflow.storages.filesystem")],
                       tasks=[task("Charge", storage_task_name="Payment")])
    # When its result is stored
    record = pool.store("Charge", FLOW, "t1", None, {"paid": 10})
    # Then it is kept under the alias
    assert Path(record) == tmp_path / FLOW / "Payment" / "t1.json"
    assert pool.adapter_for_task("Charge").retrieve(FLOW, "Payment", "t1") == {"paid": 10}
    # and the pool reads and deletes it under the same alias (Selinon used the real name there)
    assert pool.retrieve("Charge", FLOW, "t1") == {"paid": 10}
    pool.delete("Charge", FLOW, "t1")
    assert not Path(record).exists()
    with pytest.raises(RecordNotFound):
        pool.retrieve("Charge", FLOW, "t1")


def test_store_error_uses_storage_task_name_too() -> None:
    pool = StoragePool([storage("Results", "MemoryStorage", module="selflow.storages.memory")],
                       tasks=[task("Charge", storage_task_name="Payment")])
    exc_info = {"type": "E", "message": "m", "traceback": "t"}
    pool.store_error("Charge", FLOW, "t1", None, exc_info)
    assert pool.adapter_for_task("Charge").retrieve_error(FLOW, "Payment", "t1") == exc_info


def test_a_readonly_task_reads_its_storage_but_stores_nothing() -> None:
    events = Events()
    pool = StoragePool([storage("Results", "CountingStorage")],
                       tasks=[task("Audit", storage_readonly=True), task("Fetch")], tracer=events)
    # Given a record the read-only task can see, written by another task
    pool.store("Fetch", FLOW, "t0", None, {"seen": True})
    adapter = pool.adapter_for_task("Audit")
    assert adapter is pool.adapter_for_task("Fetch")
    # When the read-only task finishes, or fails
    assert pool.store("Audit", FLOW, "t1", None, {"a": 1}) is None
    assert pool.store_error("Audit", FLOW, "t1", None, {"type": "E", "message": "", "traceback": ""}) is None
    assert not pool.stores_result("Audit") and pool.stores_result("Fetch")
    # Then nothing was stored for it, and it can still read
    with pytest.raises(RecordNotFound):
        adapter.retrieve(FLOW, "Audit", "t1")
    assert adapter.retrieve(FLOW, "Fetch", "t0") == {"seen": True}
    assert events.names().count("STORAGE_STORED") == 1


# --- output schema --------------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "required": ["items"],
    "properties": {"items": {"type": "array", "items": {"type": "object", "required": ["sku"],
                                                        "properties": {"sku": {"type": "string"}}}}},
}


def test_a_result_that_does_not_match_the_output_schema_is_rejected_with_its_path() -> None:
    pool = StoragePool([storage("Results", "CountingStorage")], tasks=[task("Fetch", output_schema=SCHEMA)])
    # When a result has a wrong value deep inside
    with pytest.raises(OutputSchemaError) as caught:
        pool.store("Fetch", FLOW, "t1", None, {"items": [{"sku": "a"}, {"sku": 7}]})
    # Then the error names the task and the failing path, and nothing was stored
    error = caught.value
    assert (error.task_name, error.path, error.validator) == ("Fetch", "$.items[1].sku", "type")
    assert "task 'Fetch'" in str(error) and "$.items[1].sku" in str(error) and "7 is not of type 'string'" in str(error)
    with pytest.raises(RecordNotFound):
        pool.retrieve("Fetch", FLOW, "t1")
    # and a matching result is stored
    pool.store("Fetch", FLOW, "t2", None, {"items": [{"sku": "a"}]})
    assert pool.retrieve("Fetch", FLOW, "t2") == {"items": [{"sku": "a"}]}


def test_output_schema_applies_without_a_storage() -> None:
    pool = StoragePool([], tasks=[task("Plain", None, output_schema=SCHEMA)])
    with pytest.raises(OutputSchemaError, match=r"at \$: 'items' is a required property"):
        pool.store("Plain", FLOW, "t1", None, {})
    pool.validate_result("Plain", {"items": []})


def test_the_schema_validator_is_built_once_per_task(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a counting validator factory
    built: list[Any] = []
    real = pool_module.compile_schema

    def counting(schema: Any) -> Any:
        built.append(schema)
        return real(schema)

    monkeypatch.setattr(pool_module, "compile_schema", counting)
    pool = StoragePool([storage("Results", "CountingStorage")],
                       tasks=[task("Fetch", output_schema=SCHEMA), task("Other", output_schema=SCHEMA)])
    # When many results are stored, from several threads
    barrier = threading.Barrier(8)

    def work(worker: int) -> None:
        barrier.wait()
        for n in range(20):
            pool.store("Fetch", FLOW, f"{worker}-{n}", None, {"items": []})

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    pool.validate_result("Other", {"items": []})
    # Then each task's schema was compiled exactly once
    assert len(built) == 2


# --- the result cache -----------------------------------------------------------------------


def test_retrieve_reads_through_the_cache_and_traces_hits_and_misses() -> None:
    # Given a storage with an LRU cache of 2
    events = Events()
    cache = CacheSpec(ImportRef("selflow.caches", "LRU"), (("max_cache_size", 2),))
    pool = StoragePool([storage("Results", "CountingStorage", cache=cache)],
                       tasks=[task("Fetch", storage_task_name="Page")], tracer=events)
    pool.store("Fetch", FLOW, "t1", None, {"n": 1})
    events.seen.clear()
    # When the result is read twice
    assert pool.retrieve("Fetch", FLOW, "t1") == {"n": 1}
    assert pool.retrieve("Fetch", FLOW, "t1") == {"n": 1}
    # Then the adapter was asked once; the second read came from the cache
    assert CountingStorage.retrieves == 1
    assert events.names() == ["TASK_RESULT_CACHE_GET", "TASK_RESULT_CACHE_MISS", "STORAGE_RETRIEVE",
                              "STORAGE_RETRIEVED", "TASK_RESULT_CACHE_ADD",
                              "TASK_RESULT_CACHE_GET", "TASK_RESULT_CACHE_HIT"]
    assert events.seen[0][1] == {"storage_name": "Results", "flow_name": FLOW, "task_name": "Fetch",
                                 "task_id": "t1", "storage_task_name": "Page"}
    # and a record stored again is read again, not served stale from the cache
    pool.store("Fetch", FLOW, "t1", None, {"n": 2})
    assert pool.retrieve("Fetch", FLOW, "t1") == {"n": 2}
    assert CountingStorage.retrieves == 2
    # and a deleted record is forgotten by the cache too
    pool.delete("Fetch", FLOW, "t1")
    with pytest.raises(RecordNotFound) as caught:
        pool.retrieve("Fetch", FLOW, "t1")
    assert caught.value.storage_name == "Results" and "storage 'Results'" in str(caught.value)


def test_without_a_cache_every_read_goes_to_the_adapter() -> None:
    pool = StoragePool([storage("Results", "CountingStorage")], tasks=[task("Fetch")])
    pool.store("Fetch", FLOW, "t1", None, 1)
    for _ in range(3):
        pool.retrieve("Fetch", FLOW, "t1")
    assert CountingStorage.retrieves == 3


class ExplodingCache:
    def __init__(self, **options: Any):
        pass

    def add(self, item_id: Any, item: Any, task_name: Any = None, flow_name: Any = None) -> None:
        raise RuntimeError("cache add broke")

    def get(self, item_id: Any, task_name: Any = None, flow_name: Any = None) -> Any:
        raise RuntimeError("cache get broke")


def test_a_failing_cache_is_reported_and_bypassed() -> None:
    events = Events()
    pool = StoragePool([storage("Results", "CountingStorage", cache=CacheSpec(ImportRef(HERE, "ExplodingCache")))],
                       tasks=[task("Fetch")], tracer=events)
    pool.store("Fetch", FLOW, "t1", None, {"n": 1})
    assert pool.retrieve("Fetch", FLOW, "t1") == {"n": 1}
    issues = [details["operation"] for event, details in events.seen if event == "TASK_RESULT_CACHE_ISSUE"]
    assert issues == ["get", "add"]


# --- errors ---------------------------------------------------------------------------------


def test_adapter_failures_become_storage_errors_naming_the_storage() -> None:
    events = Events()
    pool = StoragePool([storage("Broken", "BrokenStorage")], tasks=[task("Fetch", "Broken")], tracer=events)
    with pytest.raises(StorageOperationError) as caught:
        pool.retrieve("Fetch", FLOW, "t1")
    error = caught.value
    assert isinstance(error, StorageError)
    assert (error.storage_name, error.operation, error.task_name) == ("Broken", "retrieve", "Fetch")
    assert isinstance(error.cause, ValueError) and error.__cause__ is error.cause
    assert "storage 'Broken' failed to retrieve for task 'Fetch': ValueError: the disk is on fire" == str(error)
    issue = dict(events.seen)["STORAGE_ISSUE"]
    assert issue["operation"] == "retrieve" and "the disk is on fire" in issue["what"]


def test_a_storage_error_survives_pickling() -> None:
    import pickle

    error = StorageOperationError("Broken", "retrieve", ValueError("x"), task_name="Fetch")
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == str(error) and again.storage_name == "Broken"
    missing = pickle.loads(pickle.dumps(RecordNotFound("f", "t", "id", storage_name="S")))
    assert str(missing) == str(RecordNotFound("f", "t", "id", storage_name="S"))


def test_an_adapter_without_store_error_is_reported_as_omitted() -> None:
    events = Events()
    pool = StoragePool([storage("Results", "NoErrorsStorage")], tasks=[task("Fetch")], tracer=events)
    assert pool.store_error("Fetch", FLOW, "t1", None, {"type": "E", "message": "m", "traceback": ""}) is None
    assert "STORAGE_OMIT_STORE_ERROR" in events.names() and "STORAGE_ISSUE" not in events.names()
    with pytest.raises(StorageOperationError, match="failed to delete"):
        pool.delete("Fetch", FLOW, "t1")


def test_store_and_store_error_trace_their_record_ids() -> None:
    events = Events()
    pool = StoragePool([storage("Results", "MemoryStorage", module="selflow.storages.memory")],
                       tasks=[task("Fetch")], tracer=events)
    assert pool.store("Fetch", FLOW, "t1", {"n": 1}, "ok") == "t1"
    assert pool.store_error("Fetch", FLOW, "t2", None, {"type": "E", "message": "", "traceback": ""}) == "t2"
    pool.delete("Fetch", FLOW, "t1")
    pool.close()
    stored = [(event, details.get("record_id")) for event, details in events.seen if event.startswith("STORAGE_")]
    assert stored == [("STORAGE_CONNECT", None), ("STORAGE_STORE", None), ("STORAGE_STORED", "t1"),
                      ("STORAGE_STORE_ERROR", "t2"), ("STORAGE_DELETE", None), ("STORAGE_DELETED", None),
                      ("STORAGE_DISCONNECT", None)]
    assert dict(events.seen)["STORAGE_STORE_ERROR"]["what"] == "E: "


# --- tracing --------------------------------------------------------------------------------


def test_a_failing_tracer_never_breaks_storage(caplog: pytest.LogCaptureFixture) -> None:
    def tracer(event: str, details: dict[str, Any]) -> None:
        raise RuntimeError(f"tracer broke on {event}")

    cache = CacheSpec(ImportRef("selflow.caches", "LRU"), (("max_cache_size", 4),))
    pool = StoragePool([storage("Results", "CountingStorage", cache=cache)], tasks=[task("Fetch")], tracer=tracer)
    with caplog.at_level(logging.ERROR, logger="selflow.storages.pool"):
        pool.store("Fetch", FLOW, "t1", None, {"n": 1})
        assert pool.retrieve("Fetch", FLOW, "t1") == {"n": 1}
        assert pool.retrieve("Fetch", FLOW, "t1") == {"n": 1}
        pool.store_error("Fetch", FLOW, "t2", None, {"type": "E", "message": "", "traceback": ""})
        pool.delete("Fetch", FLOW, "t1")
        with pytest.raises(RecordNotFound):
            pool.retrieve("Fetch", FLOW, "t1")
    assert any("tracer broke on STORAGE_CONNECT" in record.exc_text for record in caplog.records if record.exc_text)


def test_a_tracer_may_use_the_pool_while_it_connects() -> None:
    # a "storage" trace backend writes events through the pool: no deadlock on the connect lock
    pool: StoragePool

    def tracer(event: str, details: dict[str, Any]) -> None:
        if event == "STORAGE_CONNECT":
            pool.adapter_for_task("Fetch").store(None, "trace", "Trace", "e1", event)

    pool = StoragePool([storage("Results", "CountingStorage")], tasks=[task("Fetch")], tracer=tracer)
    adapter = pool.adapter_for_task("Fetch")
    assert adapter.retrieve("trace", "Trace", "e1") == "STORAGE_CONNECT"


# --- configuration and environment ----------------------------------------------------------


def test_configuration_is_expanded_from_the_environment_with_types(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given placeholders for each parameter type
    monkeypatch.setenv("SF_HOST", "db.acme.test")
    monkeypatch.setenv("SF_PORT", "6380")
    monkeypatch.setenv("SF_FLAG", "False")
    monkeypatch.setenv("SF_RATIO", "0.25")
    monkeypatch.setenv("SF_ECHO", "stderr")
    configuration = {"host": "{SF_HOST}", "port": "{SF_PORT}", "flag": "{SF_FLAG}", "ratio": "{SF_RATIO}",
                     "label": "db-{SF_PORT}-{{literal}}", "echo_to": "{SF_ECHO}",
                     "extra": {"nested": ["{SF_PORT}"]}}
    pool = StoragePool([storage("Results", "RecordingStorage", configuration)], tasks=[task("Fetch")])
    # When the adapter is built
    given = pool.adapter_for_task("Fetch").given
    # Then whole placeholders got the annotated types, and the rest stayed text
    assert given == {"host": "db.acme.test", "port": 6380, "flag": False, "ratio": 0.25,
                     "label": "db-6380-{literal}", "echo_to": "stderr", "extra": {"nested": ["6380"]}}
    assert given["flag"] is False


@pytest.mark.parametrize("text, expected", [("False", False), ("false", False), ("0", False), ("no", False),
                                            ("off", False), ("True", True), ("1", True), ("YES", True)])
def test_boolean_placeholders(monkeypatch: pytest.MonkeyPatch, text: str, expected: bool) -> None:
    monkeypatch.setenv("SF_FLAG", text)
    pool = StoragePool([storage("Results", "RecordingStorage", {"flag": "{SF_FLAG}"})], tasks=[task("Fetch")])
    assert pool.adapter_for_task("Fetch").given["flag"] is expected


def test_an_optional_parameter_takes_an_empty_variable_as_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SF_RATIO", "")
    pool = StoragePool([storage("Results", "RecordingStorage", {"ratio": "{SF_RATIO}"})], tasks=[task("Fetch")])
    assert pool.adapter_for_task("Fetch").given["ratio"] is None


def test_a_missing_variable_is_an_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SF_NOT_SET", raising=False)
    events = Events()
    pool = StoragePool([storage("Results", "RecordingStorage", {"host": "{SF_NOT_SET}"})], tasks=[task("Fetch")],
                       tracer=events)
    with pytest.raises(StorageConfigError, match=r"storage 'Results': configuration.host: environment variable "
                                                 r"SF_NOT_SET is not set"):
        pool.adapter_for_task("Fetch")
    assert events.names() == ["STORAGE_ISSUE"]


def test_a_value_of_the_wrong_type_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SF_PORT", "sixty")
    pool = StoragePool([storage("Results", "RecordingStorage", {"port": "{SF_PORT}"})], tasks=[task("Fetch")])
    with pytest.raises(StorageConfigError,
                       match=r"configuration.port: \{SF_PORT\} expands to 'sixty', which is not of type int"):
        pool.adapter_for_task("Fetch")


def test_a_non_mapping_configuration_is_one_positional_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SF_DIR", "/var/results")
    pool = StoragePool([storage("A", "PositionalStorage", "{SF_DIR}"), storage("B", "PositionalStorage")],
                       tasks=[task("Fetch", "A"), task("Other", "B")])
    assert pool.adapter_for_task("Fetch").path == "/var/results"
    assert pool.adapter_for_task("Other").path is None  # no configuration: no argument at all


@pytest.mark.integration
def test_s3_use_ssl_from_the_environment_is_a_real_false(monkeypatch: pytest.MonkeyPatch,
                                                          s3_config: dict[str, Any]) -> None:
    # Given Selinon's bug: use_ssl "{S3_USE_SSL}" with S3_USE_SSL=False used to be the truthy "False"
    monkeypatch.setenv("S3_USE_SSL", "False")
    monkeypatch.setenv("S3_ENDPOINT", s3_config["endpoint_url"])
    configuration = {**s3_config, "use_ssl": "{S3_USE_SSL}", "endpoint_url": "{S3_ENDPOINT}",
                     "serialize_json": "{S3_USE_SSL}"}
    pool = StoragePool([storage("Blobs", "S3Storage", configuration, module="selflow.storages.s3")],
                       tasks=[task("Fetch", "Blobs")])
    # When the pool builds the adapter
    adapter = pool.adapter_for_task("Fetch")
    # Then it got booleans, and works against the plain-HTTP server
    assert adapter.use_ssl is False and adapter.serialize_json is False
    pool.store("Fetch", FLOW, "t1", None, {"a": 1})
    assert pool.retrieve("Fetch", FLOW, "t1") == {"a": 1}
    pool.close()


# --- optional dependencies ------------------------------------------------------------------


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_importing_the_storages_imports_no_client_library() -> None:
    result = _run("""
        import sys
        import selflow.storages, selflow.caches
        from selflow.storages import StoragePool, S3Storage, PostgresStorage, RedisStorage, MongoStorage
        loaded = [m for m in ("boto3", "botocore", "sqlalchemy", "redis", "pymongo", "celery") if m in sys.modules]
        print(loaded)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("blocked, adapter, arguments, message", [
    ("boto3", "S3Storage", "bucket='b'", "S3Storage needs boto3: pip install 'selflow[s3]'"),
    ("sqlalchemy", "PostgresStorage", "'postgresql://x@127.0.0.1/db'",
     "PostgresStorage needs sqlalchemy: pip install 'selflow[postgres]'"),
    ("pymongo", "MongoStorage", "'db', 'collection'", "MongoStorage needs pymongo: pip install 'selflow[mongodb]'"),
    ("redis", "RedisStorage", "", "RedisStorage needs redis: pip install redis"),
])
def test_a_missing_optional_library_says_what_to_install(blocked: str, adapter: str, arguments: str,
                                                         message: str) -> None:
    # Given the library cannot be imported (a None entry in sys.modules makes `import` fail)
    result = _run(f"""
        import sys
        sys.modules[{blocked!r}] = None
        from selflow.storages import {adapter}, MissingDependencyError
        try:
            {adapter}({arguments})
        except MissingDependencyError as exc:
            print(exc)
        else:
            print("built")
    """)
    # Then building the adapter (not importing it) fails with the install hint
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == message


def test_the_pool_passes_the_install_hint_through() -> None:
    result = _run("""
        import sys
        sys.modules["boto3"] = None
        from selflow.codegen.model import CacheSpec, ImportRef, StorageSpec, TaskSpec
        from selflow.storages import StoragePool, MissingDependencyError
        pool = StoragePool([StorageSpec("Blobs", ImportRef("selflow.storages.s3", "S3Storage"), {"bucket": "b"},
                                        CacheSpec(ImportRef("selflow.caches", "LRU")))],
                           tasks=[TaskSpec("Fetch", ImportRef("m", "Fetch"), storage="Blobs")])
        try:
            pool.adapter_for_task("Fetch")
        except MissingDependencyError as exc:
            print(type(exc).__name__, exc)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "MissingDependencyError S3Storage needs boto3: pip install 'selflow[s3]'"


def test_adapters_do_not_connect_when_built() -> None:
    # an unreachable Redis and PostgreSQL: building must not touch the network
    from selflow.storages.postgresql import PostgresStorage
    from selflow.storages.redis import RedisStorage

    assert not RedisStorage(host="127.0.0.1", port=1).is_connected()
    assert not PostgresStorage("postgresql://nobody@127.0.0.1:1/none").is_connected()
    pool = StoragePool([storage("R", "RedisStorage", {"host": "127.0.0.1", "port": 1},
                                module="selflow.storages.redis")], tasks=[task("Fetch", "R")])
    with pytest.raises(StorageOperationError, match="storage 'R' failed to connect"):
        pool.adapter_for_task("Fetch")
