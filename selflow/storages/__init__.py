"""Storage adapters for task results, and the pool that runs them.

Names are imported on first access, so ``import selflow.storages`` imports no client library
(redis, boto3, sqlalchemy, pymongo); an adapter imports its library when it is built and, if it
is missing, says what to install::

    S3Storage needs boto3: pip install 'selflow[s3]'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    # the interface and its errors
    "DataStorage", "RecordNotFound", "StorageOperationError", "MissingDependencyError",
    # the pool
    "StoragePool", "OutputSchemaError", "StorageConfigError",
    # bundled adapters
    "MemoryStorage", "FilesystemStorage", "RedisStorage", "S3Storage", "PostgresStorage", "MongoStorage",
]

_WHERE = {
    "DataStorage": "base", "RecordNotFound": "base", "StorageOperationError": "base",
    "MissingDependencyError": "base",
    "StoragePool": "pool", "OutputSchemaError": "pool", "StorageConfigError": "config",
    "MemoryStorage": "memory", "FilesystemStorage": "filesystem", "RedisStorage": "redis", "S3Storage": "s3",
    "PostgresStorage": "postgresql", "MongoStorage": "mongodb",
}

if TYPE_CHECKING:
    from selflow.storages.base import DataStorage, MissingDependencyError, RecordNotFound, StorageOperationError
    from selflow.storages.config import StorageConfigError
    from selflow.storages.filesystem import FilesystemStorage
    from selflow.storages.memory import MemoryStorage
    from selflow.storages.mongodb import MongoStorage
    from selflow.storages.pool import OutputSchemaError, StoragePool
    from selflow.storages.postgresql import PostgresStorage
    from selflow.storages.redis import RedisStorage
    from selflow.storages.s3 import S3Storage


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'selflow.storages' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"selflow.storages.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
