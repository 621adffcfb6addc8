"""What every repository shares: one transaction per call on a pooled connection."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool


class PooledRepository:
    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    @contextmanager
    def _cursor(self) -> Iterator[psycopg.Cursor[DictRow]]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cursor:
            yield cursor
