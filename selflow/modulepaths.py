"""Selinon's built-in module paths, mapped to selflow's own.

Selinon YAML names built-ins by import path (``import: selinon.storages.redis``,
``classname: Redis``, ``predicates_module: selinon.predicates``). The validator passes every such
path through ``map_import`` so that these files work unchanged and never import Selinon.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

from selflow.predicates import SELINON_ALIASES

_STORAGE_MODULES = ("memory", "redis", "filesystem", "s3", "postgresql", "mongodb")

#: Selinon module -> selflow module.
SELINON_MODULES: Mapping[str, str] = MappingProxyType(
    {
        "selinon.predicates": "selflow.predicates",
        "selinon.strategies": "selflow.strategies",
        "selinon.routines": "selflow.routines",
        "selinon.caches": "selflow.caches",
        **{f"selinon.storages.{name}": f"selflow.storages.{name}" for name in _STORAGE_MODULES},
    }
)

#: Selinon storage class name -> (selflow module, selflow class name), where the names differ.
SELINON_STORAGE_CLASSES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "InMemoryStorage": ("selflow.storages.memory", "MemoryStorage"),
        "Redis": ("selflow.storages.redis", "RedisStorage"),
        "Filesystem": ("selflow.storages.filesystem", "FilesystemStorage"),
        "S3": ("selflow.storages.s3", "S3Storage"),
        "PostgreSQL": ("selflow.storages.postgresql", "PostgresStorage"),
        "MongoDB": ("selflow.storages.mongodb", "MongoStorage"),
    }
)

_PREDICATES = "selflow.predicates"


def map_import(module: str, name: str) -> tuple[str, str]:
    """Return selflow's ``(module, name)`` for a Selinon built-in; anything else is returned unchanged.

    Storage classes are also found when named from the ``selinon.storages`` package itself, and
    Selinon's camelCase predicate names become the canonical snake_case ones.
    """
    if module == "selinon.storages" and name in SELINON_STORAGE_CLASSES:
        return SELINON_STORAGE_CLASSES[name]
    target = SELINON_MODULES.get(module, module)
    if target == _PREDICATES:
        return target, SELINON_ALIASES.get(name, name)
    if target != module and name in SELINON_STORAGE_CLASSES:
        storage_module, storage_class = SELINON_STORAGE_CLASSES[name]
        if storage_module == target:
            return target, storage_class
    return target, name


__all__ = ["SELINON_MODULES", "SELINON_STORAGE_CLASSES", "map_import"]
