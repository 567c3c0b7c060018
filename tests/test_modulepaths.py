"""Selinon module paths in YAML resolve to selflow's own modules and names."""

from __future__ import annotations

import importlib

import pytest

from selflow.modulepaths import SELINON_MODULES, map_import
from selflow.predicates import BUILTIN_PREDICATES, SELINON_ALIASES
from selflow.strategies import BUILTIN_STRATEGIES


@pytest.mark.parametrize(
    ("selinon", "selflow"),
    [
        (("selinon.predicates", "fieldEqual"), ("selflow.predicates", "field_equal")),
        (("selinon.predicates", "argsFieldLenLessEqual"), ("selflow.predicates", "args_field_len_less_equal")),
        (("selinon.predicates", "empty"), ("selflow.predicates", "empty")),
        (("selinon.predicates", "my_custom"), ("selflow.predicates", "my_custom")),
        (("selflow.predicates", "alwaysTrue"), ("selflow.predicates", "always_true")),
        (("selinon.strategies", "biexponential_increase"), ("selflow.strategies", "biexponential_increase")),
        (("selinon.routines", "always_run"), ("selflow.routines", "always_run")),
        (("selinon.caches", "LRU"), ("selflow.caches", "LRU")),
        (("selinon.storages.memory", "InMemoryStorage"), ("selflow.storages.memory", "MemoryStorage")),
        (("selinon.storages.redis", "Redis"), ("selflow.storages.redis", "RedisStorage")),
        (("selinon.storages.filesystem", "Filesystem"), ("selflow.storages.filesystem", "FilesystemStorage")),
        (("selinon.storages.s3", "S3"), ("selflow.storages.s3", "S3Storage")),
        (("selinon.storages.postgresql", "PostgreSQL"), ("selflow.storages.postgresql", "PostgresStorage")),
        (("selinon.storages.mongodb", "MongoDB"), ("selflow.storages.mongodb", "MongoStorage")),
        (("selinon.storages", "Redis"), ("selflow.storages.redis", "RedisStorage")),
        # A class name is translated only in the module that defines it.
        (("selinon.storages.redis", "MongoDB"), ("selflow.storages.redis", "MongoDB")),
    ],
)
def test_selinon_paths_map_to_selflow(selinon: tuple[str, str], selflow: tuple[str, str]) -> None:
    assert map_import(*selinon) == selflow


@pytest.mark.parametrize(
    "path",
    [
        ("myproject.predicates", "fieldEqual"),
        ("myproject.storages", "Redis"),
        ("selflow.storages.redis", "RedisStorage"),
        ("selinon.unknown", "Thing"),
        ("selinon_extras.predicates", "x"),
    ],
)
def test_other_paths_are_unchanged(path: tuple[str, str]) -> None:
    assert map_import(*path) == path


def test_every_selinon_predicate_and_strategy_name_resolves() -> None:
    # Every built-in a Selinon file can name in these modules imports under its mapped name.
    for alias in SELINON_ALIASES:
        module, name = map_import("selinon.predicates", alias)
        assert getattr(importlib.import_module(module), name) is BUILTIN_PREDICATES[name]
    for strategy in BUILTIN_STRATEGIES:
        module, name = map_import("selinon.strategies", strategy)
        assert getattr(importlib.import_module(module), name) is BUILTIN_STRATEGIES[strategy]
    module, name = map_import("selinon.routines", "always_run")
    assert callable(getattr(importlib.import_module(module), name))


def test_table_covers_every_selinon_storage_module() -> None:
    storages = {key for key in SELINON_MODULES if key.startswith("selinon.storages.")}
    assert storages == {
        f"selinon.storages.{name}" for name in ("memory", "redis", "filesystem", "s3", "postgresql", "mongodb")
    }
