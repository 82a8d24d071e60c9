"""Checkpointers for durable runs: a SQLite file, or a PostgreSQL database given by URL."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(target: Path | str | None) -> bool:
    """Whether ``target`` is a PostgreSQL connection URL (``postgresql://`` or ``postgres://``)
    rather than a SQLite file path."""
    return isinstance(target, str) and target.startswith(POSTGRES_SCHEMES)


@contextlib.asynccontextmanager
async def open_async_checkpointer(target: Path | str) -> AsyncIterator[Any]:
    """An open async checkpointer for ``target``, closed on exit.

    Args:
        target: A SQLite file (created with its parent folder), or a PostgreSQL URL such as
            ``postgresql://user:pass@host:5432/db`` (its tables are created on first use,
            `AsyncPostgresSaver.setup`; needs the ``postgres`` extra).

    Yields:
        An ``AsyncSqliteSaver`` or ``AsyncPostgresSaver``.

    Raises:
        ImportError: A PostgreSQL URL without ``langgraph-checkpoint-postgres`` installed.
    """
    if is_postgres_url(target):
        try:
            from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        except ImportError as exc:
            raise ImportError(
                "a PostgreSQL checkpointer needs `pip install 'langgraph-hera[postgres]'` "
                "(langgraph-checkpoint-postgres and psycopg)"
            ) from exc
        async with AsyncPostgresSaver.from_conn_string(str(target)) as saver:
            await saver.setup()  # idempotent: creates or migrates the checkpoint tables
            yield saver
        return
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    Path(target).parent.mkdir(parents=True, exist_ok=True)
    async with AsyncSqliteSaver.from_conn_string(str(target)) as saver:
        yield saver
