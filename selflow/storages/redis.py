"""``RedisStorage``: one Redis key per task id, holding a JSON record with the result."""

from __future__ import annotations

import json
from typing import Any

from selflow.storages.base import (
    DataStorage,
    RecordNotFound,
    check_exc_info,
    make_record,
    record_matches,
    require,
    to_json,
)

__all__ = ["RedisStorage"]

_INSTALL = "pip install redis"


class RedisStorage(DataStorage):
    """Keeps ``{node_args, flow_name, task_name, task_id, result}`` as JSON under ``<key_prefix><task_id>``.

    Errors from ``store_error`` go under ``<key_prefix>error:<task_id>``. Records do not expire.

    Parameters:
        host, port, db, password, socket_timeout, unix_socket_path: as for ``redis.Redis``.
        url: a ``redis://`` / ``rediss://`` / ``unix://`` URL; when given, it replaces host, port,
            db, password and unix_socket_path.
        charset, errors: the text encoding of the JSON (Selinon's names; ``encoding`` and
            ``encoding_errors`` are accepted too).
        key_prefix: put before every key, to share a database with other data.
        connection_pool: a ready ``redis.ConnectionPool`` (only from Python, not from YAML).
    """

    def __init__(self, host: str = "localhost", port: int = 6379, db: int = 0, password: str | None = None,
                 socket_timeout: float | None = None, connection_pool: Any = None, charset: str = "utf-8",
                 errors: str = "strict", unix_socket_path: str | None = None, url: str | None = None,
                 key_prefix: str = "", encoding: str | None = None, encoding_errors: str | None = None):
        self._redis = require("redis", "RedisStorage", _INSTALL)
        self.host = host
        self.port = port
        self.db = db
        self.password = password
        self.socket_timeout = socket_timeout
        self.connection_pool = connection_pool
        self.encoding = encoding or charset
        self.encoding_errors = encoding_errors or errors
        self.unix_socket_path = unix_socket_path
        self.url = url
        self.key_prefix = key_prefix
        self._client: Any = None

    def connect(self) -> None:
        options: dict[str, Any] = {"socket_timeout": self.socket_timeout}
        if self.connection_pool is not None:
            client = self._redis.Redis(connection_pool=self.connection_pool)
        elif self.url:
            client = self._redis.Redis.from_url(self.url, **options)
        else:
            client = self._redis.Redis(host=self.host, port=self.port, db=self.db, password=self.password,
                                       unix_socket_path=self.unix_socket_path, **options)
        client.ping()  # fail here, with the address in the error, rather than on the first store
        self._client = client

    def is_connected(self) -> bool:
        return self._client is not None

    def disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None and self.connection_pool is None:
            client.close()

    def store(self, node_args: Any, flow_name: str, task_name: str, task_id: str, result: Any) -> str:
        key = self.key_prefix + task_id
        self._connected().set(key, self._encode(make_record(node_args, flow_name, task_name, task_id, result=result)))
        return key

    def retrieve(self, flow_name: str, task_name: str, task_id: str) -> Any:
        return self._get(self.key_prefix + task_id, flow_name, task_name, task_id)["result"]

    def delete(self, flow_name: str, task_name: str, task_id: str) -> None:
        key = self.key_prefix + task_id
        self._get(key, flow_name, task_name, task_id)  # only the record of this flow and task
        if not self._connected().delete(key):
            raise RecordNotFound(flow_name, task_name, task_id)

    def store_error(self, node_args: Any, flow_name: str, task_name: str, task_id: str,
                    exc_info: dict[str, str]) -> str:
        key = f"{self.key_prefix}error:{task_id}"
        record = make_record(node_args, flow_name, task_name, task_id, error=check_exc_info(exc_info))
        self._connected().set(key, self._encode(record))
        return key

    def retrieve_error(self, flow_name: str, task_name: str, task_id: str) -> dict[str, str]:
        """The ``exc_info`` stored by ``store_error`` (not part of the adapter interface)."""
        return dict(self._get(f"{self.key_prefix}error:{task_id}", flow_name, task_name, task_id)["error"])

    def _get(self, key: str, flow_name: str, task_name: str, task_id: str) -> dict[str, Any]:
        raw = self._connected().get(key)
        record = None if raw is None else json.loads(raw.decode(self.encoding, self.encoding_errors))
        if not record_matches(record, flow_name, task_name):
            raise RecordNotFound(flow_name, task_name, task_id)
        return record  # type: ignore[no-any-return]

    def _encode(self, record: dict[str, Any]) -> bytes:
        return to_json(record).encode(self.encoding, self.encoding_errors)

    def _connected(self) -> Any:
        if self._client is None:
            raise RuntimeError("RedisStorage is not connected")
        return self._client
