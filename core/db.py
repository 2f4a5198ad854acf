"""Database engine, sessions and migrations.

SQLite (a file, WAL on, foreign keys on) is the embedded default; PostgreSQL is used when DATABASE_URL says so.
The schema is owned by Alembic (``migrations/``); ``migrate()`` brings any database to head.
"""
from __future__ import annotations

import datetime as dt
import functools
import logging
import operator
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain
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
        # A read-only session (``read_scope``) starts a deferred transaction instead: a WAL reader takes no lock at
        # all, so the reads every page does on every rerun (who is signed in, is there any account) never queue
        # behind a writer; it writes nothing, so SQLITE_BUSY_SNAPSHOT cannot arise.
        event.listen(engine, "connect", lambda c, r: setattr(c, "isolation_level", None))
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql(
            "BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE"))
        event.listen(engine, "checkin", functools.partial(_checkpoint_after_checkin, engine))
    else:
        engine = create_engine(url, pool_pre_ping=True)
    event.listen(engine, "before_cursor_execute", _refuse_writes_when_read_only)
    return engine


READ_ONLY = "dadaily_read_only"


class ReadOnlyViolation(RuntimeError):
    """A statement that writes, run in a ``read_scope`` session."""


_READ_VERBS = ("SELECT", "WITH", "PRAGMA", "BEGIN", "SHOW", "SET")


def _refuse_writes_when_read_only(conn, cursor, statement, parameters, context, executemany) -> None:
    """A write inside ``read_scope`` is a programming error: refuse it loudly rather than let it be rolled back
    unseen (an audit row lost) or, on SQLite, contend for the lock the deferred transaction does not hold."""
    if conn.get_execution_options().get(READ_ONLY) and not statement.lstrip().upper().startswith(_READ_VERBS):
        raise ReadOnlyViolation(f"write in a read-only session: {statement.split(None, 1)[0]}")


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


@contextmanager
def read_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A session for reads only (the signed-in user, counts): it takes no lock on SQLite and writes nothing; any
    INSERT/UPDATE/DELETE in it raises. Use ``session_scope`` whenever the work may write, audit rows included."""
    with Session((engine or get_engine()).execution_options(**{READ_ONLY: True}), expire_on_commit=False) as session:
        try:
            yield session
        finally:
            session.rollback()


WAL_AUTOCHECKPOINT = 1000  # SQLite's default, in pages
_CHECKPOINT_AFTER = "dadaily_checkpoint_after"
log = logging.getLogger(__name__)


def defer_checkpoint(session: Session) -> None:
    """SQLite: this transaction writes tens of MB (an import), and its commit should not also copy them into the
    database file. Normally the committing connection runs the WAL checkpoint itself (about 0.5 s after a
    25,000-row import, with the user waiting); here the commit only appends to the WAL, and the checkpoint runs on
    a thread of its own as soon as the connection goes back to the pool, so the import's result shows at once.
    What is committed is as safe either way (the WAL is the database until it is checkpointed; synchronous=NORMAL
    is already the setting). A process that ends waits for that thread (it is not a daemon): the CLI's scheduled
    import leaves the database checkpointed. PostgreSQL: nothing to do."""
    conn = session.connection()
    if conn.dialect.name != "sqlite":
        return
    conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")  # this connection only
    conn.connection.info[_CHECKPOINT_AFTER] = True  # the pool record's: seen again at check-in


def _checkpoint_after_checkin(engine: Engine, dbapi_connection, record) -> None:
    """Pool check-in: a connection whose transaction deferred its checkpoint gets the usual setting back, and the
    checkpoint is started on its own thread (PASSIVE: it never waits for, or blocks, readers and writers)."""
    if record is None or not record.info.pop(_CHECKPOINT_AFTER, False) or dbapi_connection is None:
        return
    try:
        dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT}")
    except Exception:  # a closed connection: the pool discards it, and the setting with it
        log.debug("could not restore wal_autocheckpoint", exc_info=True)
    threading.Thread(target=_checkpoint, args=(engine,), name="dadaily-wal-checkpoint").start()


def _checkpoint(engine: Engine) -> None:
    try:
        raw = engine.raw_connection()  # no transaction: a checkpoint cannot run inside one
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            raw.close()
    except Exception:  # never fatal: the next commit past 1,000 WAL pages checkpoints anyway
        log.warning("background WAL checkpoint failed", exc_info=True)


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
    """The column type's bind processor, with the same result for the values bulk writes carry but faster:
    SQLite dates and datetimes through isoformat (in C; exactly the text SQLAlchemy's own SQLite processor writes:
    "2026-11-21 23:15:00.000000", "2026-11-21"), SQLite booleans as 1/0 at once, and an Enum-as-text column (e.g.
    ``core.types.EnumText``) passing a valid value straight through (anything else still goes through the type)."""
    from sqlalchemy import Boolean, Date, DateTime

    if dialect.name == "sqlite":
        if isinstance(type_, DateTime):
            return lambda v: v.isoformat(" ", "microseconds")
        if isinstance(type_, Date):
            return lambda v: v.isoformat()
        if isinstance(type_, Boolean):
            proc = type_._cached_bind_processor(dialect)
            return lambda v: 1 if v is True else 0 if v is False else proc(v)
    proc = type_._cached_bind_processor(dialect)
    enum_cls = getattr(type_, "enum_cls", None)
    if proc is not None and enum_cls is not None:
        valid = frozenset(e.value for e in enum_cls if isinstance(e.value, str))

        def enum_text(v, proc=proc, valid=valid):
            return v if v.__class__ is str and v in valid else proc(v)

        enum_text.passes = valid | {None}
        return enum_text
    return proc


def bulk_insert(conn, table, rows: list, columns: Sequence[str] | None = None,
                execute: Callable[[str, tuple], object] | None = None, leave_rest: bool = False,
                rest_in_one: bool = False) -> list:
    """Insert many rows at once, bypassing SQLAlchemy's per-row parameter handling (a third of an import's time
    at 25,000 rows). ``rows`` are dicts with the same keys, or, with ``columns``, tuples in that order. Values go
    through each column type's own bind processor, so what is stored is exactly what the ORM would store; a column
    left out gets its Python-side default.

    SQLite: INSERT statements of as many rows as its bound-parameter limit allows, so each statement does a large
    piece of work with the GIL released; the last few rows in statements of 2**n rows, so that only a few distinct
    statements (each several MB once prepared) sit in the driver's statement cache. With ``execute``, the
    statements are handed to it (``execute(sql, params)``, e.g. to queue them on a writer thread) instead of being
    run at once: all the Python work is done here. With ``leave_rest``, only whole statements are written and the
    rows left over are returned (for a caller that writes more rows later); with ``rest_in_one``, the last rows go
    in one statement of their own size (for that caller's very last call). PostgreSQL: COPY, at once."""
    if not rows:
        return []
    if columns is None:
        columns = list(rows[0])
        rows = [tuple(r[c] for c in columns) for r in rows]
    dialect = conn.dialect
    if dialect.name == "postgresql":
        _copy_rows(conn, table, rows, columns)
        return []
    execute = execute or conn.exec_driver_sql
    order, positional, string = _insert_plan(table, tuple(columns), dialect)
    per_statement = max(1, min(_MAX_PARAMS_PER_INSERT, _max_variables(conn)) // len(order))
    rest: list = []
    if leave_rest and positional:
        cut = len(rows) - len(rows) % per_statement
        rows, rest = rows[:cut], rows[cut:]
        if not rows:
            return rest
    # Column by column: one list comprehension per column that needs converting.
    given = {c: i for i, c in enumerate(columns)}
    by_column = list(zip(*rows))
    cols = []
    for name in order:
        if name in given:
            values = by_column[given[name]]
        else:  # a column with a Python-side default the caller did not give (e.g. a new flag)
            default = table.c[name].default
            values = [default.arg(None) if default.is_callable else default.arg] * len(rows)
        values = _convert(values, table.c[name].type, dialect)
        cols.append(values)
    params = list(zip(*cols))
    if not positional:
        execute(string, [dict(zip(order, p)) for p in params])
        return []
    prep = dialect.identifier_preparer
    head = f"INSERT INTO {prep.format_table(table)} ({', '.join(prep.quote(n) for n in order)}) VALUES "
    group = "(" + ", ".join("?" * len(order)) + ")"
    start = 0
    while start < len(params):
        left = len(params) - start
        size = per_statement if left >= per_statement else left if rest_in_one else 1 << (left.bit_length() - 1)
        execute(head + ", ".join([group] * size), tuple(chain.from_iterable(params[start : start + size])))
        start += size
    return rest


def _convert(values: Sequence, type_, dialect) -> Sequence:
    """One column's values as the column type's bind processor makes them, in as few Python calls as possible."""
    proc = _fast_processor(type_, dialect)
    if proc is None:
        return values
    first = values[0]
    if first is not None and values.count(first) == len(values):  # e.g. "now" on every row: convert once
        return [proc(first)] * len(values)
    from sqlalchemy import Boolean, Date, DateTime

    if dialect.name == "sqlite":
        if isinstance(type_, (Date, DateTime)) and None not in values:
            types = set(map(type, values))
            if types == {dt.datetime} and isinstance(type_, DateTime):
                return list(map(_DATETIME_TEXT, values))  # isoformat in C, no Python call per value
            if types == {dt.date} and isinstance(type_, Date) and not isinstance(type_, DateTime):
                return list(map(dt.date.isoformat, values))
        elif isinstance(type_, Boolean) and set(map(type, values)) <= {bool, type(None)}:
            return values  # the driver binds True/False as 1/0, as the processor would
    valid = getattr(proc, "passes", None)
    if valid is not None and set(map(type, values)) <= {str, type(None)} and set(values) <= valid:
        return values  # an Enum-as-text column of valid values: nothing to convert
    return [None if v is None else proc(v) for v in values]


_DATETIME_TEXT = operator.methodcaller("isoformat", " ", "microseconds")


@functools.lru_cache(maxsize=64)
def _insert_plan(table, columns: tuple[str, ...], dialect) -> tuple[list[str], bool, str]:
    """(columns in the statement's order, positional?, statement): the given columns plus those with a Python-side
    default, as SQLAlchemy compiles an INSERT of them."""
    from sqlalchemy import bindparam, insert

    compiled = insert(table).values({c: bindparam(c) for c in columns}).compile(dialect=dialect)
    if compiled.positional:
        return list(compiled.positiontup), True, compiled.string
    return [c.name for c in table.c if c.name in compiled.binds], False, compiled.string


_MAX_PARAMS_PER_INSERT = 32000  # a prepared statement of 32,000 values takes ~4 MB in the driver's cache


def _max_variables(conn) -> int:
    """SQLite's bound-parameter limit (32766 since 3.32; 999 before)."""
    import sqlite3

    info = conn.info  # kept with the DBAPI connection
    if "sqlite_max_variables" not in info:
        try:
            info["sqlite_max_variables"] = conn.connection.driver_connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        except (AttributeError, sqlite3.Error):
            info["sqlite_max_variables"] = 999
    return info["sqlite_max_variables"]


def _copy_rows(conn, table, rows: list[tuple], columns: Sequence[str]) -> None:
    """PostgreSQL: COPY FROM STDIN on the connection's own transaction, ~10x faster than executemany."""
    given = {c: i for i, c in enumerate(columns)}
    names = [c.name for c in table.c if c.name in given or (c.default is not None and not c.primary_key)]
    dialect = conn.dialect
    procs = []
    for name in names:
        col = table.c[name]
        proc = col.type._cached_bind_processor(dialect)
        default = None if name in given else col.default
        procs.append((given.get(name), proc, default))
    quoted = ", ".join(dialect.identifier_preparer.quote(n) for n in names)
    target = dialect.identifier_preparer.format_table(table)
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(f"COPY {target} ({quoted}) FROM STDIN") as copy:
        for row in rows:
            out = []
            for index, proc, default in procs:
                v = (default.arg(None) if default.is_callable else default.arg) if default is not None else row[index]
                out.append(proc(v) if proc is not None and v is not None else v)
            copy.write_row(out)


# A lost race, not a fault: SQLite's busy/locked (a save committed between this transaction's read and its write
# surfaces as a busy snapshot) and PostgreSQL's serialization failure and deadlock, which it resolves by aborting one
# side. Any other OperationalError (disk full, I/O error, a dropped connection) is a real fault and propagates.
_LOST_RACE_SQLSTATES = frozenset({"40001", "40P01"})


def is_lost_race(exc: BaseException) -> bool:
    """True when ``exc`` (an SQLAlchemy OperationalError or the driver's own) is a lock/busy or serialization
    failure/deadlock: retrying after a re-read is right. False for everything else."""
    orig = getattr(exc, "orig", exc)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate is not None:
        return sqlstate in _LOST_RACE_SQLSTATES
    name = getattr(orig, "sqlite_errorname", None)  # sqlite3 on Python 3.11+: SQLITE_BUSY, SQLITE_BUSY_SNAPSHOT, ...
    if name is not None:
        return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))
    message = str(orig).lower()
    return "database is locked" in message or "database table is locked" in message


def checked_update(session, stmt) -> bool:
    """Run a version- and scope-checked UPDATE; True when it changed exactly one row. On SQLite a save committed by
    someone else between this transaction's read and its write surfaces as "database is locked" (a busy snapshot),
    on PostgreSQL as a serialization failure or deadlock: that is the same lost race as a stale version, so it is
    rolled back and reported as no match. The caller then re-reads and raises its conflict (or refusal) with the
    current values. Any other database error (disk full, I/O, a dropped connection) propagates: reported as a
    conflict it would invite a blind retry and hide the fault."""
    from sqlalchemy.exc import OperationalError

    try:
        return session.connection().execute(stmt).rowcount == 1
    except OperationalError as exc:
        if not is_lost_race(exc):
            raise
        session.rollback()
        return False
