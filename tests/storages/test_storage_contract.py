"""One contract for every bundled storage adapter, run on memory, files and real services.

Redis (a dedicated database, flushed), PostgreSQL (tables of their own, dropped) and S3 (a moto
server on 127.0.0.1) are real: nothing is mocked. Without a service its runs are skipped,
unless ``CI`` is set: then they fail. MongoDB has no server here and is not in this suite.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from selflow.storages import FilesystemStorage, MemoryStorage, RecordNotFound
from selflow.storages.base import DataStorage

ROOT = Path(__file__).resolve().parents[2]
FLOW, TASK = "ingest", "FetchPage"

NESTED = {
    "url": "https://shop.acme.test/p/1",
    "sizes": [1, 2.5, -3, 10**12],
    "meta": {"tags": ["a", "ž", "雪"], "empty": {}, "none": None, "ok": True, "no": False},
    "rows": [{"id": i, "values": [[i, i * 2], {"deep": {"deeper": [None, "x"]}}]} for i in range(3)],
}


def _build(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> DataStorage:
    if kind == "memory":
        return MemoryStorage()
    if kind == "memory-json":
        return MemoryStorage(json=True)
    if kind == "filesystem":
        return FilesystemStorage(str(tmp_path / "results"))
    if kind == "redis":
        from selflow.storages.redis import RedisStorage

        return RedisStorage(**request.getfixturevalue("redis_config"))
    if kind == "postgresql":
        from selflow.storages.postgresql import PostgresStorage

        return PostgresStorage(**request.getfixturevalue("postgres_config"))
    if kind == "s3":
        from selflow.storages.s3 import S3Storage

        return S3Storage(serialize_json=True, **request.getfixturevalue("s3_config"))
    raise AssertionError(kind)


KINDS = ["memory", "memory-json", "filesystem",
         pytest.param("redis", marks=pytest.mark.integration),
         pytest.param("postgresql", marks=pytest.mark.integration),
         pytest.param("s3", marks=pytest.mark.integration)]


@pytest.fixture(params=KINDS)
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DataStorage]:
    adapter = _build(request.param, request, tmp_path)
    adapter.connect()
    try:
        yield adapter
    finally:
        if request.param == "postgresql" and adapter.is_connected():
            adapter.drop_tables()  # type: ignore[attr-defined]
        adapter.disconnect()


def new_id() -> str:
    return str(uuid.uuid4())


# --- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("result", [NESTED, [1, [2, [3]]], "text", 42, 0.5, True, None, {}],
                         ids=["nested", "list", "str", "int", "float", "bool", "none", "empty"])
def test_a_stored_result_reads_back_equal(storage: DataStorage, result: Any) -> None:
    # Given a stored result
    task_id = new_id()
    record_id = storage.store({"site": "acme"}, FLOW, TASK, task_id, result)
    # When it is read back
    # Then it is equal, and the store returned some record id
    assert storage.retrieve(FLOW, TASK, task_id) == result
    assert record_id is not None


def test_storing_an_id_again_replaces_the_result(storage: DataStorage) -> None:
    task_id = new_id()
    storage.store(None, FLOW, TASK, task_id, {"try": 1})
    storage.store(None, FLOW, TASK, task_id, {"try": 2})
    assert storage.retrieve(FLOW, TASK, task_id) == {"try": 2}


def test_records_of_different_ids_are_apart(storage: DataStorage) -> None:
    ids = [new_id() for _ in range(3)]
    for index, task_id in enumerate(ids):
        storage.store(None, FLOW, TASK, task_id, {"n": index})
    assert [storage.retrieve(FLOW, TASK, task_id) for task_id in ids] == [{"n": 0}, {"n": 1}, {"n": 2}]


# --- misses ---------------------------------------------------------------------------------


def test_retrieving_a_missing_id_raises_record_not_found(storage: DataStorage) -> None:
    task_id = new_id()
    with pytest.raises(RecordNotFound) as caught:
        storage.retrieve(FLOW, TASK, task_id)
    assert (caught.value.flow_name, caught.value.task_name, caught.value.task_id) == (FLOW, TASK, task_id)
    assert task_id in str(caught.value)


def test_a_record_is_not_found_under_another_task_or_flow_name(storage: DataStorage) -> None:
    task_id = new_id()
    storage.store(None, FLOW, TASK, task_id, {"x": 1})
    with pytest.raises(RecordNotFound):
        storage.retrieve(FLOW, "OtherTask", task_id)
    with pytest.raises(RecordNotFound):
        storage.retrieve("other_flow", TASK, task_id)


def test_delete_then_retrieve_raises_record_not_found(storage: DataStorage) -> None:
    # Given a stored result
    task_id = new_id()
    storage.store(None, FLOW, TASK, task_id, NESTED)
    # When it is deleted
    storage.delete(FLOW, TASK, task_id)
    # Then it is gone, and deleting it again is a miss too
    with pytest.raises(RecordNotFound):
        storage.retrieve(FLOW, TASK, task_id)
    with pytest.raises(RecordNotFound):
        storage.delete(FLOW, TASK, task_id)


def test_deleting_a_missing_id_raises_record_not_found(storage: DataStorage) -> None:
    with pytest.raises(RecordNotFound):
        storage.delete(FLOW, TASK, new_id())


def test_delete_under_another_task_name_keeps_the_record(storage: DataStorage) -> None:
    task_id = new_id()
    storage.store(None, FLOW, TASK, task_id, {"keep": True})
    with pytest.raises(RecordNotFound):
        storage.delete(FLOW, "OtherTask", task_id)
    assert storage.retrieve(FLOW, TASK, task_id) == {"keep": True}


# --- errors ---------------------------------------------------------------------------------


def test_store_error_keeps_type_message_and_traceback(storage: DataStorage) -> None:
    # every bundled adapter stores errors and reads them back with retrieve_error
    task_id = new_id()
    exc_info = {"type": "ValueError", "message": "bad page ž", "traceback": "Traceback...\nValueError: bad page"}
    record_id = storage.store_error({"site": "acme"}, FLOW, TASK, task_id, exc_info)
    assert record_id is not None
    assert storage.retrieve_error(FLOW, TASK, task_id) == exc_info  # type: ignore[attr-defined]
    # an error is not a result
    with pytest.raises(RecordNotFound):
        storage.retrieve(FLOW, TASK, task_id)


def test_a_task_can_fail_then_succeed_under_one_id(storage: DataStorage) -> None:
    # a retried task keeps its id: first an error, then the result
    task_id = new_id()
    storage.store_error(None, FLOW, TASK, task_id, {"type": "E", "message": "m", "traceback": "t"})
    storage.store(None, FLOW, TASK, task_id, {"ok": 1})
    assert storage.retrieve(FLOW, TASK, task_id) == {"ok": 1}


# --- connection -----------------------------------------------------------------------------


def test_is_connected_follows_connect_and_disconnect(storage: DataStorage) -> None:
    # Given a connected adapter holding a result
    task_id = new_id()
    storage.store(None, FLOW, TASK, task_id, {"kept": True})
    assert storage.is_connected()
    # When it disconnects, twice (the second does nothing)
    storage.disconnect()
    storage.disconnect()
    assert not storage.is_connected()
    # Then it can connect again and read what it stored before
    storage.connect()
    assert storage.is_connected()
    assert storage.retrieve(FLOW, TASK, task_id) == {"kept": True}


def test_threads_share_one_adapter(storage: DataStorage) -> None:
    # Given 8 threads, each storing and reading its own ids through the same adapter
    failures: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for round_ in range(10):
                task_id = f"{worker}-{round_}-{uuid.uuid4().hex}"
                storage.store(None, FLOW, TASK, task_id, {"worker": worker, "round": round_})
                assert storage.retrieve(FLOW, TASK, task_id) == {"worker": worker, "round": round_}
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # Then every read saw its own write
    assert not failures, failures


# --- the filesystem: no partial reads -------------------------------------------------------

_WRITER = textwrap.dedent("""
    import sys
    from selflow.storages.filesystem import FilesystemStorage
    root, marker, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    storage = FilesystemStorage(root)
    storage.connect()
    for n in range(rounds):
        storage.store(None, "ingest", "FetchPage", "shared", {"writer": marker, "n": n, "pad": marker * 200_000})
""")


def test_parallel_writers_never_expose_a_partial_file(tmp_path: Path) -> None:
    # Given two processes rewriting the same large record as fast as they can
    root = str(tmp_path / "results")
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, root, marker, "60"], cwd=ROOT)
               for marker in ("a", "b")]
    reader = FilesystemStorage(root)
    reader.connect()
    # When this process (and a thread of it) reads the record all the while
    seen: list[str] = []
    failures: list[BaseException] = []

    def read_until_done() -> None:
        try:
            while any(writer.poll() is None for writer in writers):
                try:
                    result = reader.retrieve("ingest", "FetchPage", "shared")
                except RecordNotFound:
                    continue  # not written yet
                assert result["pad"] == result["writer"] * 200_000, "partial or mixed content"
                seen.append(result["writer"])
        except BaseException as exc:  # noqa: BLE001
            failures.append(exc)

    thread = threading.Thread(target=read_until_done)
    thread.start()
    read_until_done()
    thread.join(120)
    # Then every read was a whole record (a partial file would fail to parse or to match)
    assert [writer.wait(120) for writer in writers] == [0, 0]
    assert not failures, failures
    assert seen, "the reader never saw a record"
    # and no temporary file is left behind
    assert sorted(p.name for p in (tmp_path / "results" / "ingest" / "FetchPage").iterdir()) == ["shared.json"]


def test_filesystem_layout_is_flow_task_id_json(tmp_path: Path) -> None:
    storage = FilesystemStorage(str(tmp_path))
    storage.connect()
    path = storage.store(None, FLOW, TASK, "id-1", {"a": 1})
    assert Path(path) == tmp_path / FLOW / TASK / "id-1.json"
    assert json.loads(Path(path).read_text()) == {"a": 1}


def test_filesystem_rejects_names_that_leave_its_directory(tmp_path: Path) -> None:
    storage = FilesystemStorage(str(tmp_path / "root"))
    storage.connect()
    for flow, task, task_id in (("..", TASK, "x"), (FLOW, "a/b", "x"), (FLOW, TASK, "../../etc")):
        with pytest.raises(ValueError):
            storage.store(None, flow, task, task_id, 1)


# --- S3 specifics ---------------------------------------------------------------------------


@pytest.mark.integration
def test_s3_delete_really_deletes_the_object(s3_config: dict[str, Any], s3_client: Any) -> None:
    from selflow.storages.s3 import S3Storage

    # Given a stored result
    storage = S3Storage(serialize_json=True, **s3_config)
    storage.connect()
    key = storage.store(None, FLOW, TASK, "t-1", {"a": 1})
    assert s3_client.head_object(Bucket=s3_config["bucket"], Key=key)["ContentLength"] > 0
    # When it is deleted
    storage.delete(FLOW, TASK, "t-1")
    # Then the object is gone from the bucket (Selinon's S3.delete left it there)
    with pytest.raises(s3_client.exceptions.ClientError) as caught:
        s3_client.head_object(Bucket=s3_config["bucket"], Key=key)
    assert caught.value.response["Error"]["Code"] in ("404", "NoSuchKey")


@pytest.mark.integration
def test_s3_without_serialize_json_keeps_bytes_and_text_raw(s3_config: dict[str, Any], s3_client: Any) -> None:
    from selflow.storages.s3 import S3Storage

    storage = S3Storage(**s3_config)
    storage.connect()
    storage.store(None, FLOW, TASK, "raw-bytes", b"\x00\x01binary")
    storage.store(None, FLOW, TASK, "raw-text", "plain ž")
    storage.store(None, FLOW, TASK, "json", {"a": [1]})
    assert storage.retrieve(FLOW, TASK, "raw-bytes") == b"\x00\x01binary"
    assert storage.retrieve(FLOW, TASK, "raw-text") == "plain ž"
    assert storage.retrieve(FLOW, TASK, "json") == {"a": [1]}
    body = s3_client.get_object(Bucket=s3_config["bucket"], Key="raw-text")["Body"].read()
    assert body == "plain ž".encode()
