"""Importing the Python objects a configuration names (tasks, foreach functions, strategies...).

Imports happen on first use and are cached per process; the current directory is importable, as
it is for Selinon users running workers from their project folder.
"""

from __future__ import annotations

import importlib
import os
import sys
from functools import lru_cache
from typing import Any

from selflow.codegen.model import ImportRef
from selflow.errors import SelflowError


class ImportRefError(SelflowError):
    """A module or attribute named in the configuration cannot be imported."""


@lru_cache(maxsize=None)
def resolve(ref: ImportRef) -> Any:
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(ref.module)
    except Exception as exc:  # noqa: BLE001 - any failure of user code at import time
        raise ImportRefError(f"cannot import module '{ref.module}' (for '{ref.name}'): "
                             f"{type(exc).__name__}: {exc}") from exc
    try:
        return getattr(module, ref.name)
    except AttributeError:
        raise ImportRefError(f"module '{ref.module}' has no attribute '{ref.name}'") from None
