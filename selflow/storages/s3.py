"""``S3Storage``: one S3 object per task id (AWS, MinIO, Ceph, moto... anything boto3 talks to)."""

from __future__ import annotations

import json
from typing import Any

from selflow.storages.base import DataStorage, RecordNotFound, check_exc_info, require, to_json

__all__ = ["S3Storage"]

_INSTALL = "pip install 'selflow[s3]'"
_NOT_FOUND = ("404", "NoSuchKey", "NotFound")


class S3Storage(DataStorage):
    """Keeps each result as the object ``<key_prefix><task_id>`` in ``bucket``.

    The object's metadata records the flow and task name (a read under another name is a miss)
    and how the body is encoded, so every result reads back as the value stored:

    * with ``serialize_json`` (or for a result that is neither ``bytes`` nor ``str``): JSON text;
    * otherwise ``bytes`` are stored as they are and ``str`` as UTF-8 text (Selinon stored such
      bodies raw, and so does this adapter).

    Errors from ``store_error`` go to ``<key_prefix><task_id>.error`` as JSON. ``delete`` deletes
    the object (after checking that it exists, so a missing record raises ``RecordNotFound``).

    Parameters:
        bucket: the bucket name; it is created on ``connect`` if it does not exist.
        location: the region constraint used when creating the bucket.
        endpoint_url, use_ssl, region_name, aws_access_key_id, aws_secret_access_key,
            aws_session_token: as for ``boto3.session.Session(...).client("s3", ...)``; left out,
            boto3 reads its usual environment variables and files.
        serialize_json: store every result as JSON text.
        key_prefix: put before every object key.
    """

    def __init__(self, bucket: str, location: str | None = None, endpoint_url: str | None = None,
                 use_ssl: bool | None = None, aws_access_key_id: str | None = None,
                 aws_secret_access_key: str | None = None, region_name: str | None = None,
                 serialize_json: bool = False, key_prefix: str = "", aws_session_token: str | None = None):
        self._boto3 = require("boto3", "S3Storage", _INSTALL)
        self.bucket = bucket
        self.location = location
        self.endpoint_url = endpoint_url
        self.use_ssl = use_ssl
        self.region_name = region_name
        self.serialize_json = serialize_json
        self.key_prefix = key_prefix
        self._credentials = {"aws_access_key_id": aws_access_key_id, "aws_secret_access_key": aws_secret_access_key,
                             "aws_session_token": aws_session_token}
        self._client: Any = None

    def connect(self) -> None:
        session = self._boto3.session.Session(region_name=self.region_name,
                                              **{k: v for k, v in self._credentials.items() if v is not None})
        options: dict[str, Any] = {"endpoint_url": self.endpoint_url}
        if self.use_ssl is not None:
            options["use_ssl"] = self.use_ssl
        client = session.client("s3", **options)
        try:
            client.head_bucket(Bucket=self.bucket)
        except client.exceptions.ClientError as exc:
            if _code(exc) not in _NOT_FOUND + ("NoSuchBucket",):
                raise
            create: dict[str, Any] = {"Bucket": self.bucket}
            if self.location and self.location != "us-east-1":
                create["CreateBucketConfiguration"] = {"LocationConstraint": self.location}
            client.create_bucket(**create)
        self._client = client

    def is_connected(self) -> bool:
        return self._client is not None

    def disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def store(self, node_args: Any, flow_name: str, task_name: str, task_id: str, result: Any) -> str:
        if self.serialize_json or not isinstance(result, (bytes, str)):
            body, encoding = to_json(result).encode("utf-8"), "json"
        elif isinstance(result, str):
            body, encoding = result.encode("utf-8"), "text"
        else:
            body, encoding = result, "bytes"
        return self._put(self.key_prefix + task_id, body, flow_name, task_name, encoding)

    def retrieve(self, flow_name: str, task_name: str, task_id: str) -> Any:
        body, encoding = self._get(self.key_prefix + task_id, flow_name, task_name, task_id)
        if encoding == "json" or (encoding is None and self.serialize_json):
            return json.loads(body.decode("utf-8"))
        if encoding == "text":
            return body.decode("utf-8")
        return body

    def delete(self, flow_name: str, task_name: str, task_id: str) -> None:
        key = self.key_prefix + task_id
        try:
            head = self._connected().head_object(Bucket=self.bucket, Key=key)
        except self._connected().exceptions.ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                raise RecordNotFound(flow_name, task_name, task_id) from None
            raise
        if not _names_match(head.get("Metadata", {}), flow_name, task_name):
            raise RecordNotFound(flow_name, task_name, task_id)
        self._connected().delete_object(Bucket=self.bucket, Key=key)

    def store_error(self, node_args: Any, flow_name: str, task_name: str, task_id: str,
                    exc_info: dict[str, str]) -> str:
        body = to_json({"node_args": node_args, "error": check_exc_info(exc_info)}).encode("utf-8")
        return self._put(f"{self.key_prefix}{task_id}.error", body, flow_name, task_name, "json")

    def retrieve_error(self, flow_name: str, task_name: str, task_id: str) -> dict[str, str]:
        """The ``exc_info`` stored by ``store_error`` (not part of the adapter interface)."""
        body, _ = self._get(f"{self.key_prefix}{task_id}.error", flow_name, task_name, task_id)
        return dict(json.loads(body.decode("utf-8"))["error"])

    # --- objects ----------------------------------------------------------------------------

    def _put(self, key: str, body: bytes, flow_name: str, task_name: str, encoding: str) -> str:
        metadata = {"flow-name": flow_name, "task-name": task_name, "selflow-encoding": encoding}
        content_type = "application/json" if encoding == "json" else "application/octet-stream"
        self._connected().put_object(Bucket=self.bucket, Key=key, Body=body, Metadata=metadata,
                                     ContentType=content_type)
        return key

    def _get(self, key: str, flow_name: str, task_name: str, task_id: str) -> tuple[bytes, str | None]:
        client = self._connected()
        try:
            response = client.get_object(Bucket=self.bucket, Key=key)
        except client.exceptions.ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                raise RecordNotFound(flow_name, task_name, task_id) from None
            raise
        with response["Body"] as body:
            data = body.read()
        metadata = response.get("Metadata", {})
        if not _names_match(metadata, flow_name, task_name):
            raise RecordNotFound(flow_name, task_name, task_id)
        return data, metadata.get("selflow-encoding")

    def _connected(self) -> Any:
        if self._client is None:
            raise RuntimeError("S3Storage is not connected")
        return self._client


def _code(exc: Any) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _names_match(metadata: dict[str, str], flow_name: str, task_name: str) -> bool:
    # objects written by other tools carry no names: accept them under any name
    stored_flow, stored_task = metadata.get("flow-name"), metadata.get("task-name")
    return (stored_flow is None or stored_flow == flow_name) and (stored_task is None or stored_task == task_name)
