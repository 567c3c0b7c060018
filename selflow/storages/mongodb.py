"""``MongoStorage``: one MongoDB document per task id.

Not tested against a server: no MongoDB runs where selflow is tested. The code follows pymongo's
documented API, and the contract suite is ready to run it once a server is available.
"""

from __future__ import annotations

from typing import Any

from selflow.storages.base import DataStorage, RecordNotFound, check_exc_info, make_record, require

__all__ = ["MongoStorage"]

_INSTALL = "pip install 'selflow[mongodb]'"


class MongoStorage(DataStorage):
    """Keeps ``{node_args, flow_name, task_name, task_id, result}`` documents in ``collection_name``.

    Errors from ``store_error`` go to ``<collection_name>_errors``. Storing an id again replaces
    its document.

    Parameters:
        db_name, collection_name: where the documents go.
        host, port: the server (Selinon's names); ``uri`` (a ``mongodb://`` URI) replaces both.
    """

    def __init__(self, db_name: str, collection_name: str, host: str = "localhost", port: int = 27017,
                 uri: str | None = None):
        self._pymongo = require("pymongo", "MongoStorage", _INSTALL)
        self.db_name = db_name
        self.collection_name = collection_name
        self.host = host
        self.port = port
        self.uri = uri
        self._client: Any = None

    def connect(self) -> None:
        client = self._pymongo.MongoClient(self.uri) if self.uri else self._pymongo.MongoClient(self.host, self.port)
        self._client = client
        self._collection().create_index("task_id", unique=True)
        self._collection("_errors").create_index("task_id", unique=True)

    def is_connected(self) -> bool:
        return self._client is not None

    def disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def store(self, node_args: Any, flow_name: str, task_name: str, task_id: str, result: Any) -> str:
        document = make_record(node_args, flow_name, task_name, task_id, result=result)
        self._collection().replace_one({"task_id": task_id}, document, upsert=True)
        return task_id

    def retrieve(self, flow_name: str, task_name: str, task_id: str) -> Any:
        return self._find("", flow_name, task_name, task_id)["result"]

    def delete(self, flow_name: str, task_name: str, task_id: str) -> None:
        query = {"task_id": task_id, "flow_name": flow_name, "task_name": task_name}
        if self._collection().delete_one(query).deleted_count == 0:
            raise RecordNotFound(flow_name, task_name, task_id)

    def store_error(self, node_args: Any, flow_name: str, task_name: str, task_id: str,
                    exc_info: dict[str, str]) -> str:
        document = make_record(node_args, flow_name, task_name, task_id, error=check_exc_info(exc_info))
        self._collection("_errors").replace_one({"task_id": task_id}, document, upsert=True)
        return task_id

    def retrieve_error(self, flow_name: str, task_name: str, task_id: str) -> dict[str, str]:
        """The ``exc_info`` stored by ``store_error`` (not part of the adapter interface)."""
        return dict(self._find("_errors", flow_name, task_name, task_id)["error"])

    def _find(self, suffix: str, flow_name: str, task_name: str, task_id: str) -> dict[str, Any]:
        query = {"task_id": task_id, "flow_name": flow_name, "task_name": task_name}
        document = self._collection(suffix).find_one(query, projection={"_id": False})
        if document is None:
            raise RecordNotFound(flow_name, task_name, task_id)
        return document  # type: ignore[no-any-return]

    def _collection(self, suffix: str = "") -> Any:
        if self._client is None:
            raise RuntimeError("MongoStorage is not connected")
        return self._client[self.db_name][self.collection_name + suffix]
