"""Database engine, sessions and migrations.

SQLite (a file, WAL on, foreign keys on) is the embedded default; PostgreSQL is used when DATABASE_URL says so.
The schema is owned by Alembic (``migrations/``); ``migrate()`` brings any database to head.
"""
from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

from core.settings import ROOT, get_settings


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer (the meeting keeps reading during imports)
    cur.execute("PRAGMA foreign_keys=ON")  # SQLite leaves them off unless asked, per connection
    cur.execute("PRAGMA synchronous=NORMAL")  # durable at each checkpoint in WAL mode, and much faster than FULL
    cur.execute("PRAGMA busy_timeout=10000")  # wait for a concurrent writer instead of failing at once
    cur.close()


def get_engine(url: str | None = None) -> Engine:
    """One engine (a connection pool) per URL per process; engines are thread-safe and meant to be shared."""
    return _engine_for(url or get_settings().database_url)


@functools.lru_cache(maxsize=8)
def _engine_for(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN; make BEGIN explicit so a transaction really is one.
        event.listen(engine, "connect", lambda c, r: setattr(c, "isolation_level", None))
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
    else:
        engine = create_engine(url, pool_pre_ping=True)
    return engine


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error (nothing half-written)."""
    with Session(engine or get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str | None = None) -> None:
    """Upgrade the database at ``url`` (default: settings) to the newest schema."""
    from alembic import command

    url = url or get_settings().database_url
    get_engine(url)  # creates the SQLite file's folder
    command.upgrade(alembic_config(url), "head")
