"""Smoke tests of the schema on both databases: migrations reach head, the models match them, SQLite's pragmas
are on, and the constraints the importer relies on are enforced by the database itself."""
from __future__ import annotations

import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, select

import core.models  # noqa: F401  (registers the tables on SQLModel.metadata)
import dv.models  # noqa: F401
from core.db import alembic_config
from dv.models import Notification, NotificationPerson, PersonRole, Stream

# These tests poke tables directly to check constraints; the audit guard does not apply.
pytestmark = pytest.mark.unaudited


def _notification(force: str = "Northshire Constabulary", police_ref: str = "PPN/0001") -> Notification:
    return Notification(force=force, police_ref=police_ref, incident_at=dt.datetime(2026, 3, 1, 22, 15),
                        stream=Stream.crime, stream_reason="crime reference CR/1")


def test_migrations_reach_head(engine, db_url):
    heads = set(ScriptDirectory.from_config(alembic_config(db_url)).get_heads())
    assert heads, "no migrations found"
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    assert current == heads


def test_models_match_migrations(engine):
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)
    assert diff == [], "models and migrations differ; add a migration:\n" + "\n".join(map(repr, diff))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sqlite_wal_and_foreign_keys_on(engine):
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_unique_force_police_ref_refused(engine):
    with Session(engine) as s:
        s.add(_notification())
        s.add(_notification(force="Southshire Police"))  # the same reference in another force is another record
        s.commit()
    with Session(engine) as s:
        s.add(_notification())
        with pytest.raises(IntegrityError):
            s.commit()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM notification")).scalar() == 2


def test_foreign_key_violation_refused(engine):
    with Session(engine) as s:
        s.add(NotificationPerson(notification_id=999_999, person_id=999_999, role=PersonRole.victim))
        with pytest.raises(IntegrityError):
            s.commit()


def test_session_fixture_round_trip(session):
    session.add(_notification(police_ref="PPN/RT"))
    session.commit()
    got = session.exec(select(Notification).where(Notification.police_ref == "PPN/RT")).one()
    assert got.stream is Stream.crime and got.incident_at == dt.datetime(2026, 3, 1, 22, 15)


def test_read_scope_refuses_writes_and_leaves_nothing(engine):
    from core.db import ReadOnlyViolation, read_scope

    with pytest.raises(ReadOnlyViolation):
        with read_scope(engine) as s:
            s.add(_notification(police_ref="PPN/RO"))
            s.flush()
    with read_scope(engine) as s:
        assert s.exec(select(Notification).where(Notification.police_ref == "PPN/RO")).first() is None


def test_read_scope_does_not_wait_for_a_writer(engine):
    """A page's per-rerun reads (who is signed in) must not queue behind an import or a save holding SQLite's write
    lock: a read-only session reads the last committed state at once."""
    import time

    from core.db import read_scope, session_scope

    with session_scope(engine) as s:
        s.add(_notification(police_ref="PPN/COMMITTED"))
    with session_scope(engine) as writer:
        writer.add(_notification(police_ref="PPN/UNCOMMITTED"))
        writer.flush()  # holds the write lock (SQLite) until the block ends
        started = time.monotonic()
        with read_scope(engine) as s:
            refs = set(s.exec(select(Notification.police_ref)).all())
        assert time.monotonic() - started < 5  # a writer-blocked read would wait for the 30 s busy timeout
        assert "PPN/COMMITTED" in refs and "PPN/UNCOMMITTED" not in refs


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_import_commits_without_the_checkpoint_which_runs_right_after(engine, db_url, tmp_path):
    """``defer_checkpoint``: the import's commit leaves copying the WAL into the database file to a thread started
    when the connection goes back to the pool; afterwards the file holds everything, and the pooled connection
    checkpoints as usual again."""
    import threading
    from pathlib import Path

    from sqlalchemy.engine import make_url

    from core.db import WAL_AUTOCHECKPOINT, session_scope
    from dv.importer import import_file
    from dv.profiles import load_profile
    from tests.factories import NOW, extract, records

    path = extract(tmp_path, "niche_wide", records(200, seed=4))
    with session_scope(engine) as session:
        session.connection().exec_driver_sql(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT}")
        assert import_file(session, path, load_profile("niche_wide"), actor="test", now=NOW).created == 200
        # inside the import's transaction the commit's own checkpoint is off
        assert session.connection().exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    for thread in [t for t in threading.enumerate() if t.name == "dadaily-wal-checkpoint"]:
        thread.join(30)
    database = Path(make_url(db_url).database)
    with engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
        page_size = conn.exec_driver_sql("PRAGMA page_size").scalar()
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == WAL_AUTOCHECKPOINT
    # 200 notifications are far fewer than 1,000 WAL pages: only the deferred checkpoint copies them into the file
    assert pages > 100 and database.stat().st_size == pages * page_size


def test_checked_update_reports_a_lost_race_as_no_match(engine, db_url):
    """SQLite busy/locked and PostgreSQL's serialization failure are the lost race ``checked_update`` turns into
    "no match" (the caller re-reads and shows the conflict)."""
    from sqlalchemy import create_engine

    from core.db import checked_update

    bump = text("UPDATE agency SET name = name || '.' WHERE id = 2")
    if engine.dialect.name == "sqlite":
        other = create_engine(db_url, connect_args={"timeout": 0.1})  # no 30 s busy timeout: fail fast
        with engine.connect() as holder:
            holder.exec_driver_sql("UPDATE agency SET name = name WHERE id = 2")  # BEGIN IMMEDIATE: holds the lock
            with Session(other) as s:
                assert checked_update(s, bump) is False
            holder.rollback()
        other.dispose()
        return
    with Session(engine.execution_options(isolation_level="REPEATABLE READ")) as s:
        s.connection().execute(text("SELECT name FROM agency WHERE id = 2")).scalar_one()  # the snapshot is taken
        with engine.begin() as colleague:
            colleague.execute(bump)  # committed after the snapshot
        assert checked_update(s, bump) is False  # 40001: could not serialize access due to concurrent update


def test_checked_update_lets_a_real_fault_propagate(engine):
    """Any other OperationalError (disk full, I/O error, a cancelled statement, a dropped connection) is not a
    conflict: reported as one it would invite a blind retry and hide the fault."""
    from sqlalchemy.exc import OperationalError

    from core.db import checked_update

    with Session(engine) as s:
        if engine.dialect.name == "sqlite":
            stmt = text("UPDATE no_such_table SET x = 1")  # SQLITE_ERROR, an OperationalError like SQLITE_IOERR
        else:
            s.connection().exec_driver_sql("SET LOCAL statement_timeout = 50")
            stmt = text("UPDATE agency SET name = name WHERE id = 2 AND pg_sleep(1) IS NOT NULL")  # 57014
        with pytest.raises(OperationalError):
            checked_update(s, stmt)
