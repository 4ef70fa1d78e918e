"""Engine and sessions. SQLite (WAL, busy timeout) by default; DATABASE_URL selects another database.

from db import Database
database = Database.open("sqlite:///workspace/tuneboard.db")   # migrates to head
database = Database.open("postgresql+psycopg://user:pw@host:5432/tuneboard")  # a shared server
with database.session() as s: ...
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
BUSY_TIMEOUT_MS = 30_000  # the UI, the supervisor and workers write concurrently
MIGRATION_LOCK = 0x7475_6E65  # a PostgreSQL advisory lock id: one process migrates at a time


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # Transactions are begun by `_sqlite_begin`, not by the driver (whose deferred BEGIN can fail
    # at once with "database is locked" when a reader later wants to write while another writes).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")  # safe with WAL, far fewer fsyncs
    cur.close()


def _sqlite_begin(conn) -> None:
    """BEGIN IMMEDIATE: take the write lock up front, so waiting for it honours the busy timeout."""
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if url.startswith("postgresql:") or url.startswith("postgres:"):
        raise ValueError("DATABASE_URL: use postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB (the psycopg 3 driver)")
    # pre_ping: a shared server restarts or drops idle connections; recycle keeps them fresh.
    return create_engine(url, pool_pre_ping=True, pool_recycle=1800)


def migrate(url: str) -> None:
    """Bring the database at `url` to the newest Alembic revision (one process at a time)."""
    from alembic import command  # here, not at the top: a worker opens the database without migrating
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # ConfigParser interpolates '%'
    if not url.startswith("postgresql"):
        command.upgrade(cfg, "head")  # SQLite: the migration runs inside one BEGIN IMMEDIATE
        return
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
            try:
                command.upgrade(cfg, "head")
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
                conn.commit()
    finally:
        engine.dispose()


class Database:
    """An engine plus a session factory; `session()` commits on success, rolls back on error."""

    def __init__(self, url: str, engine: Engine):
        self.url = url
        self.engine = engine
        self._factory = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str, *, upgrade: bool = True) -> Database:
        if upgrade:
            migrate(url)
        return cls(url, make_engine(url))

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        s = self._factory()
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()
