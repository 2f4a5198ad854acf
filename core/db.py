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
    cur.execute("PRAGMA busy_timeout=30000")  # wait for a concurrent writer (an import) instead of failing at once
    cur.execute("PRAGMA cache_size=-65536")  # 64 MB page cache: bulk imports update several indexes at once
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
        # IMMEDIATE: a transaction takes the write lock when it starts (waiting up to the busy timeout for another
        # writer). A deferred one that read first and then writes after a colleague's commit fails at once with
        # SQLITE_BUSY_SNAPSHOT (the busy timeout does not apply) — a sign-in, a page view's audit row or a save
        # refused for no reason under load (found by bench/meeting_load.py). The price: transactions queue one
        # behind another; each interaction's is a few milliseconds, an import's a few seconds (busy timeout 30 s).
        event.listen(engine, "connect", lambda c, r: setattr(c, "isolation_level", None))
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
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


def reserve_ids(conn, table, count: int) -> list[int]:
    """``count`` fresh primary keys for ``table``, so a bulk insert can be a plain executemany (RETURNING with a
    guaranteed order makes SQLAlchemy insert SQLite rows one statement at a time: 10x slower).

    PostgreSQL: taken from the table's sequence, safe under concurrent imports. SQLite: max(id) + 1 …, safe because
    the caller's transaction already holds SQLite's single write lock (it has written before calling this)."""
    if count <= 0:
        return []
    from sqlalchemy import func, select, text

    if conn.dialect.name == "postgresql":
        rows = conn.execute(text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
                            {"t": table.name, "n": count})
        return [r[0] for r in rows]
    start = conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one() + 1
    return list(range(start, start + count))


def _fast_processor(type_, dialect):
    """The column type's bind processor, except SQLite dates and datetimes: isoformat (in C) writes exactly the
    text SQLAlchemy's own SQLite processor writes ("2026-11-21 23:15:00.000000", "2026-11-21"), 10x faster."""
    from sqlalchemy import Date, DateTime

    if dialect.name == "sqlite":
        if isinstance(type_, DateTime):
            return lambda v: v.isoformat(sep=" ", timespec="microseconds")
        if isinstance(type_, Date):
            return lambda v: v.isoformat()
    return type_._cached_bind_processor(dialect)


def bulk_insert(conn, table, rows: list[dict]) -> None:
    """Insert many rows with one DBAPI executemany, bypassing SQLAlchemy's per-row parameter handling (a third
    of an import's time at 25,000 rows). Values go through each column type's own bind processor, so what is
    stored is exactly what the ORM would store. Every row must have the same keys."""
    if not rows:
        return
    from sqlalchemy import bindparam, insert

    columns = list(rows[0])
    dialect = conn.dialect
    if dialect.name == "postgresql":
        return _copy_rows(conn, table, rows)
    compiled = insert(table).values({c: bindparam(c) for c in columns}).compile(dialect=dialect)
    processors = {c.name: _fast_processor(c.type, dialect) for c in table.c}
    if compiled.positional:
        # Column by column: one list comprehension per column that needs converting, then zip into tuples.
        order = compiled.positiontup
        cols = []
        for c in order:
            if c in rows[0]:
                values = [r[c] for r in rows]
            else:  # a column with a Python-side default the caller did not give (e.g. a new flag)
                default = table.c[c].default
                values = [default.arg(None) if default.is_callable else default.arg] * len(rows)
            proc = processors[c]
            if proc is not None:
                values = [None if v is None else proc(v) for v in values]
            cols.append(values)
        params = list(zip(*cols))
    else:
        defaults = {c.name: c.default for c in table.c if c.name not in columns and c.default is not None
                    and not c.primary_key}
        params = []
        for r in rows:
            full = dict(r)
            for c, d in defaults.items():
                full[c] = d.arg(None) if d.is_callable else d.arg
            params.append({c: (processors[c](v) if processors[c] and v is not None else v) for c, v in full.items()})
    conn.exec_driver_sql(compiled.string, params)


def _copy_rows(conn, table, rows: list[dict]) -> None:
    """PostgreSQL: COPY FROM STDIN on the connection's own transaction, ~10x faster than executemany."""
    names = [c.name for c in table.c if c.name in rows[0] or (c.default is not None and not c.primary_key)]
    dialect = conn.dialect
    procs = []
    for name in names:
        col = table.c[name]
        proc = col.type._cached_bind_processor(dialect)
        default = None if name in rows[0] else col.default
        procs.append((name, proc, default))
    quoted = ", ".join(dialect.identifier_preparer.quote(n) for n in names)
    target = dialect.identifier_preparer.format_table(table)
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(f"COPY {target} ({quoted}) FROM STDIN") as copy:
        for row in rows:
            out = []
            for name, proc, default in procs:
                v = (default.arg(None) if default.is_callable else default.arg) if default is not None else row[name]
                out.append(proc(v) if proc is not None and v is not None else v)
            copy.write_row(out)


def checked_update(session, stmt) -> bool:
    """Run a version- and scope-checked UPDATE; True when it changed exactly one row. On SQLite a save committed by
    someone else between this transaction's read and its write surfaces as "database is locked" (a busy snapshot):
    that is the same lost race as a stale version, so it is rolled back and reported as no match. The caller then
    re-reads and raises its conflict (or refusal) with the current values."""
    from sqlalchemy.exc import OperationalError

    try:
        return session.connection().execute(stmt).rowcount == 1
    except OperationalError:
        session.rollback()
        return False
