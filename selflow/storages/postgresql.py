"""``PostgresStorage``: results in a PostgreSQL table (SQLAlchemy 2, JSONB columns)."""

from __future__ import annotations

import importlib.util
from typing import Any

from selflow.storages.base import DataStorage, RecordNotFound, check_exc_info, require

__all__ = ["PostgresStorage"]

_INSTALL = "pip install 'selflow[postgres]'"


def engine_url(connection_string: str) -> Any:
    """The SQLAlchemy URL for ``connection_string``, with a driver that is installed.

    A plain ``postgresql://`` URL means psycopg 3 to SQLAlchemy 2.1; the ``postgres`` extra
    installs psycopg2, so that is used when psycopg 3 is missing.
    """
    sa = require("sqlalchemy", "PostgresStorage", _INSTALL)
    url = sa.engine.make_url(connection_string)
    if url.drivername == "postgresql" and importlib.util.find_spec("psycopg") is None \
            and importlib.util.find_spec("psycopg2") is not None:
        url = url.set(drivername="postgresql+psycopg2")
    return url


class PostgresStorage(DataStorage):
    """Keeps results in the table ``result`` and errors in ``result_error``, created if missing.

    ``result`` has Selinon's layout: ``id`` (serial), ``flow_name``, ``task_name``, a unique
    ``task_id``, and ``result`` and ``node_args`` as JSONB. ``result_error`` has the same key
    columns with ``error`` (JSONB ``{type, message, traceback}``) in place of ``result``. Storing
    an id again updates its row (``INSERT ... ON CONFLICT (task_id) DO UPDATE``).

    Parameters:
        connection_string: an SQLAlchemy URL, e.g. ``postgresql://user@host:5432/db`` (a plain
            ``postgresql://`` uses psycopg 3 if installed, else psycopg2).
        encoding: the client encoding of the connection.
        echo: log every SQL statement (SQLAlchemy's ``echo``).
        table_name: the results table; errors go to ``<table_name>_error``.
        schema: the schema of both tables (default: the connection's search path).
    """

    def __init__(self, connection_string: str, encoding: str = "utf-8", echo: bool = False,
                 table_name: str = "result", schema: str | None = None):
        self._sa = require("sqlalchemy", "PostgresStorage", _INSTALL)
        self._pg = require("sqlalchemy.dialects.postgresql", "PostgresStorage", _INSTALL)
        self.connection_string = connection_string
        self.encoding = encoding
        self.echo = echo
        self.table_name = table_name
        self.schema = schema
        self._engine: Any = None
        metadata = self._sa.MetaData(schema=schema)
        self.results = self._table(metadata, table_name, "result")
        self.errors = self._table(metadata, f"{table_name}_error", "error")
        self._metadata = metadata

    def _table(self, metadata: Any, name: str, payload: str) -> Any:
        sa, jsonb = self._sa, self._pg.JSONB(none_as_null=False)
        return sa.Table(
            name, metadata,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("flow_name", sa.String(255), nullable=False),
            sa.Column("task_name", sa.String(255), nullable=False),
            sa.Column("task_id", sa.String(255), nullable=False, unique=True),
            sa.Column(payload, jsonb),
            sa.Column("node_args", jsonb),
        )

    def connect(self) -> None:
        url = engine_url(self.connection_string)
        options: dict[str, Any] = {"echo": self.echo}
        if url.get_backend_name() == "postgresql" and url.get_driver_name() in ("psycopg2", "psycopg"):
            options["connect_args"] = {"client_encoding": self.encoding}
        engine = self._sa.create_engine(url, **options)
        try:
            self._create_tables(engine)
        except BaseException:
            engine.dispose()
            raise
        self._engine = engine

    def _create_tables(self, engine: Any) -> None:
        try:
            self._metadata.create_all(engine, checkfirst=True)
        except self._sa.exc.IntegrityError:  # another process created them at the same moment
            self._metadata.create_all(engine, checkfirst=True)

    def is_connected(self) -> bool:
        return self._engine is not None

    def disconnect(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.dispose()

    def store(self, node_args: Any, flow_name: str, task_name: str, task_id: str, result: Any) -> int:
        return self._upsert(self.results, "result", node_args, flow_name, task_name, task_id, result)

    def retrieve(self, flow_name: str, task_name: str, task_id: str) -> Any:
        return self._select(self.results, "result", flow_name, task_name, task_id)

    def delete(self, flow_name: str, task_name: str, task_id: str) -> None:
        table = self.results
        statement = table.delete().where(table.c.task_id == task_id, table.c.flow_name == flow_name,
                                         table.c.task_name == task_name)
        with self._connected().begin() as connection:
            if connection.execute(statement).rowcount == 0:
                raise RecordNotFound(flow_name, task_name, task_id)

    def store_error(self, node_args: Any, flow_name: str, task_name: str, task_id: str,
                    exc_info: dict[str, str]) -> int:
        return self._upsert(self.errors, "error", node_args, flow_name, task_name, task_id, check_exc_info(exc_info))

    def retrieve_error(self, flow_name: str, task_name: str, task_id: str) -> dict[str, str]:
        """The ``exc_info`` stored by ``store_error`` (not part of the adapter interface)."""
        return dict(self._select(self.errors, "error", flow_name, task_name, task_id))

    def drop_tables(self) -> None:
        """Drop both tables (for tests and tear-downs)."""
        self._metadata.drop_all(self._connected(), checkfirst=True)

    # --- SQL --------------------------------------------------------------------------------

    def _upsert(self, table: Any, payload: str, node_args: Any, flow_name: str, task_name: str, task_id: str,
                value: Any) -> int:
        values = {"flow_name": flow_name, "task_name": task_name, "task_id": task_id, payload: value,
                  "node_args": node_args}
        insert = self._pg.insert(table).values(**values)
        statement = insert.on_conflict_do_update(
            index_elements=[table.c.task_id],
            set_={name: insert.excluded[name] for name in ("flow_name", "task_name", payload, "node_args")},
        ).returning(table.c.id)
        with self._connected().begin() as connection:
            return int(connection.execute(statement).scalar_one())

    def _select(self, table: Any, payload: str, flow_name: str, task_name: str, task_id: str) -> Any:
        statement = self._sa.select(table.c[payload]).where(
            table.c.task_id == task_id, table.c.flow_name == flow_name, table.c.task_name == task_name)
        with self._connected().connect() as connection:
            row = connection.execute(statement).first()
        if row is None:
            raise RecordNotFound(flow_name, task_name, task_id)
        return row[0]

    def _connected(self) -> Any:
        if self._engine is None:
            raise RuntimeError("PostgresStorage is not connected")
        return self._engine
