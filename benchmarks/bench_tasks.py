"""The trivial task code of the benchmarks (benchmarks/config): nothing to do, at once."""

from __future__ import annotations

from typing import Any


def noop(node_args: Any) -> None:
    """Every task of benchmarks/config runs this: it returns None."""
    return None


def items(parents: Any, node_args: Any) -> range:
    """The foreach of foreach1000: ``node_args["count"]`` items (1000 unless told otherwise)."""
    count = node_args.get("count", 1000) if isinstance(node_args, dict) else 1000
    return range(count)
