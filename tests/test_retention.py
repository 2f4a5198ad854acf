"""Retention (``dv.retention``, ``python -m dv retention``): what is past retention is deleted with everything that
hangs off it, and nothing else. Runs on SQLite and on the PostgreSQL server the test run starts (``session``)."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlmodel import SQLModel

from core.models import AuditEvent
from dv import retention
from dv.importer import import_file
from dv.models import (AlertStatus, EncompassAlert, FieldChange, ImportBatch, Notification, NotificationPerson, Person,
                       RowError)
from dv.profiles import load_profile
from dv.retention import apply_retention, plan_retention
from meetings.models import Action, ActionStatus
from tests.factories import NOW, col, count, drop_raised_alerts, extract, records, unaudited

ROOT = Path(__file__).resolve().parent.parent

DAYS = 2190
PLAN_NOW = dt.datetime(2027, 1, 1, 12, 0)  # UTC; the cut-off is six years earlier, early January 2021
OLD = dt.datetime(2020, 6, 1, 9, 0)  # before the cut-off
RECENT = dt.datetime(2026, 6, 1, 9, 0)  # after it
INCIDENTS_FROM = dt.date(2019, 3, 1)  # every synthetic incident is before the cut-off


def run_import(session, tmp_path, recs, name, mutate=None):
    result = import_file(session, extract(tmp_path, "niche_wide", recs, name=name, mutate=mutate),
                         load_profile("niche_wide"), actor="test", now=NOW)
    session.commit()
    drop_raised_alerts(session)  # these tests add exactly the alerts they reason about
    return result


def build(session, tmp_path, n=12, seed=31):
    """``n`` notifications imported (batch 1), then a re-import (batch 2) that changes the first notification's
    risk (field history, last batch 2) and rejects one row (a row error on batch 2). Every system time is then
    set to OLD, so everything is past retention until a test says otherwise. Returns the notification ids in
    extract order and the two batch ids."""
    recs = records(n, seed=seed, start=INCIDENTS_FROM)
    first = run_import(session, tmp_path, recs, "first.xlsx")

    def change(header, rows):
        risk = col(header, "DASH Risk")
        rows[0][risk] = "High" if rows[0][risk] != "High" else "Standard"
        rows[-1][col(header, "Victim DOB")] = "not a date"

    second = run_import(session, tmp_path, recs, "second.xlsx", mutate=change)
    assert (second.updated, second.rejected) == (1, 1)
    with unaudited():
        session.execute(update(Notification).values(updated_at_utc=OLD, created_at_utc=OLD))
        session.execute(update(ImportBatch).values(started_at_utc=OLD, finished_at_utc=OLD))
        session.commit()
    by_ref = dict(session.execute(select(Notification.police_ref, Notification.id)).all())
    return [by_ref[r["police_ref"]] for r in recs], first.batch_id, second.batch_id


def set_recent(session, ids, **values):
    values = values or {"updated_at_utc": RECENT}
    with unaudited():
        session.execute(update(Notification).where(Notification.id.in_(list(ids))).values(**values))
        session.commit()


def add_action(session, nid, status=ActionStatus.done, updated=OLD):
    with unaudited():
        session.add(Action(notification_id=nid, agency_id=1, description="Visit the victim", status=status,
                           created_at_utc=OLD, updated_at_utc=updated))
        session.commit()


def add_alert(session, nid, status=AlertStatus.acknowledged, acknowledged=OLD):
    child = session.execute(select(NotificationPerson.id).where(NotificationPerson.notification_id == nid)
                            .order_by(NotificationPerson.id)).scalars().first()
    with unaudited():
        session.add(EncompassAlert(notification_id=nid, child_link_id=child, school_urn="100001", status=status,
                                   created_at_utc=OLD, notified_at_utc=OLD, acknowledged_at_utc=acknowledged))
        session.commit()


def rows_for(session, model, nid) -> int:
    return session.execute(select(func.count()).select_from(model).where(model.notification_id == nid)).scalar_one()


def links(session) -> dict[int, set[int]]:
    """person id -> ids of the notifications naming them (as a party or as the victim)."""
    out: dict[int, set[int]] = {}
    for pid, nid in session.execute(select(NotificationPerson.person_id, NotificationPerson.notification_id)):
        out.setdefault(pid, set()).add(nid)
    for pid, nid in session.execute(select(Notification.victim_id, Notification.id)):
        if pid is not None:
            out.setdefault(pid, set()).add(nid)
    return out


def plan(session, **kw):
    kw.setdefault("now", PLAN_NOW)
    kw.setdefault("retention_days", DAYS)
    return plan_retention(session, **kw)


def snapshot(session) -> dict:
    return {m.__name__: count(session, m) for m in (Notification, NotificationPerson, FieldChange, Action,
                                                    EncompassAlert, Person, ImportBatch, RowError)}


def test_old_closed_notification_goes_with_everything_hanging_off_it_and_the_rest_stays(session, tmp_path):
    ids, batch1, batch2 = build(session, tmp_path)
    target, open_action, queued_alert, recent, recent_action, recent_ack, held, *rest = ids
    set_recent(session, rest)  # out of the way: only the notifications below are in play
    add_action(session, target)  # done, long ago
    add_alert(session, target)  # acknowledged, long ago
    add_action(session, open_action, status=ActionStatus.open)  # open: never closed, however old
    add_action(session, open_action)
    add_alert(session, queued_alert, status=AlertStatus.queued, acknowledged=None)
    set_recent(session, [recent])
    add_action(session, recent_action, updated=RECENT)  # done, but recently touched
    add_alert(session, recent_ack, acknowledged=RECENT)
    set_recent(session, [held], legal_hold=True)
    changes, people = rows_for(session, FieldChange, target), rows_for(session, NotificationPerson, target)
    assert changes > 0 and people > 0

    p = plan(session)
    assert p.notification_ids == (target,)
    assert p.held == 1
    assert p.batch_ids == (batch2,)  # batch 1 is still the first and last batch of the others

    done = apply_retention(session, p, actor="test-retention")
    session.commit()
    session.expire_all()
    assert session.get(Notification, target) is None
    for model in (NotificationPerson, FieldChange, Action, EncompassAlert):
        assert rows_for(session, model, target) == 0, model.__name__
    kept = set(session.execute(select(Notification.id)).scalars())
    assert kept == set(ids) - {target}
    assert rows_for(session, Action, open_action) == 2 and rows_for(session, EncompassAlert, queued_alert) == 1
    assert session.get(ImportBatch, batch2) is None and session.get(ImportBatch, batch1) is not None
    assert session.execute(select(func.count()).select_from(RowError)
                           .where(RowError.batch_id == batch2)).scalar_one() == 0
    assert (done["notifications"], done["held"], done["actions"], done["alerts"], done["batches"],
            done["row_errors"]) == (1, 1, 1, 1, 1, 1)
    assert (done["field_changes"], done["notification_people"]) == (changes, people)
    assert plan(session).notification_ids == ()  # nothing left to do; the hold is still counted
    assert plan(session).held == 1


def test_a_shared_person_stays_and_an_orphan_goes(session, tmp_path):
    ids, _, _ = build(session, tmp_path, n=30, seed=32)
    before = links(session)
    shared = next((pid for pid, nids in sorted(before.items()) if len(nids) >= 2), None)
    assert shared is not None, "the synthetic data set should repeat a victim"
    x = min(before[shared])
    # Also one notification whose people are all its own, so there are orphans to delete.
    own = next(nid for nid in ids if nid != x
               and all(nids == {nid} for nids in before.values() if nid in nids))
    doomed = {x, own}
    set_recent(session, set(ids) - doomed)
    expected = {pid for pid, nids in before.items() if nids <= doomed}
    assert shared not in expected and expected

    p = plan(session)
    assert set(p.notification_ids) == doomed
    assert set(p.person_ids) == expected
    apply_retention(session, p, actor="test")
    session.commit()
    session.expire_all()
    remaining = set(session.execute(select(Person.id)).scalars())
    assert shared in remaining
    assert not expected & remaining
    assert remaining == set(before) - expected


def test_dry_run_deletes_nothing_and_writes_nothing(session, tmp_path):
    build(session, tmp_path)
    before = snapshot(session)
    audits = count(session, AuditEvent)
    p = plan(session)
    assert p.notifications == 12 and p.persons > 0 and p.batches == 2
    body = p.to_json()
    assert body["dry_run"] is True and body["notifications"] == 12 and body["ids_sample"] == list(p.notification_ids)
    session.commit()
    assert snapshot(session) == before and count(session, AuditEvent) == audits


def test_apply_writes_exactly_one_audit_row(session, tmp_path):
    ids, _, _ = build(session, tmp_path)
    set_recent(session, ids[:2], legal_hold=True)
    apply_retention(session, plan(session), actor="cli:ops")
    session.commit()
    [row] = session.execute(select(AuditEvent).where(AuditEvent.action == "retention")).scalars().all()
    assert (row.username, row.entity, row.entity_id, row.outcome) == ("cli:ops", "notification", None, "ok")
    details = json.loads(row.details)
    assert details["ids"] == sorted(ids[2:])
    assert details["counts"]["notifications"] == 10 and details["counts"]["held"] == 2
    assert details["counts"]["retention_days"] == DAYS


def test_a_failure_mid_apply_leaves_everything_in_place(session, tmp_path, monkeypatch):
    build(session, tmp_path)
    before = snapshot(session)
    p = plan(session)
    deleted_persons = []

    def fail(*args, **kwargs):  # after every DELETE has run: the rollback has to undo all of them
        deleted_persons.append(count(session, Person))
        raise RuntimeError("disk full")

    monkeypatch.setattr(retention.audit, "record", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        apply_retention(session, p, actor="test")
    assert deleted_persons == [0]  # it really had deleted them
    session.rollback()
    assert snapshot(session) == before


def test_a_stale_plan_never_deletes_what_has_since_been_reopened(session, tmp_path):
    ids, _, _ = build(session, tmp_path)
    p = plan(session)
    add_action(session, ids[0], status=ActionStatus.in_progress)  # after the plan
    set_recent(session, [ids[1]], legal_hold=True)
    done = apply_retention(session, p, actor="test")
    session.commit()
    assert done["notifications"] == len(ids) - 2
    assert set(session.execute(select(Notification.id)).scalars()) == {ids[0], ids[1]}


def test_batches_go_only_when_old_and_unreferenced(session, tmp_path):
    ids, batch1, batch2 = build(session, tmp_path)
    # ids[0]: its last batch is batch 2
    set_recent(session, ids[1:])
    with unaudited():
        session.execute(update(ImportBatch).where(ImportBatch.id == batch2).values(started_at_utc=RECENT))
        session.commit()
    assert plan(session).batch_ids == ()  # batch 2 is unreferenced once the target goes, but recent
    with unaudited():
        session.execute(update(ImportBatch).where(ImportBatch.id == batch2).values(started_at_utc=OLD))
        session.commit()
    assert plan(session).batch_ids == (batch2,)

    # A batch that only a kept notification's field history refers to stays (its FK has no cascade).
    recs = records(12, seed=31, start=INCIDENTS_FROM)

    def change(header, rows):
        risk = col(header, "DASH Risk")
        rows[1][risk] = "High" if rows[1][risk] != "High" else "Medium"

    third = run_import(session, tmp_path, recs, "third.xlsx", mutate=change).batch_id  # field history of ids[1]
    fourth = run_import(session, tmp_path, recs[2:], "fourth.xlsx").batch_id  # all unchanged: refers to nothing
    with unaudited():
        session.execute(update(ImportBatch).values(started_at_utc=OLD))
        session.execute(update(Notification).values(updated_at_utc=RECENT))
        session.commit()
    assert session.execute(select(func.count()).select_from(FieldChange)
                           .where(FieldChange.batch_id == third)).scalar_one() > 0
    with unaudited():
        session.execute(update(Notification).where(Notification.id == ids[1]).values(last_batch_id=batch1))
        session.commit()  # now only ids[1]'s field history refers to batch 3
    p = plan(session)
    assert p.notification_ids == ()
    assert p.batch_ids == (fourth,)  # old and referred to by nothing; batches 1, 2 and 3 are still referred to
    apply_retention(session, p, actor="test")
    session.commit()
    session.expire_all()
    assert session.get(ImportBatch, third) is not None and session.get(ImportBatch, fourth) is None


def test_default_period_comes_from_the_setting(session, tmp_path, monkeypatch):
    build(session, tmp_path)
    monkeypatch.setenv("DV_RETENTION_DAYS", "4000")  # cut-off in 2016: nothing is that old
    p = plan_retention(session, now=PLAN_NOW)
    assert (p.retention_days, p.notifications) == (4000, 0)
    monkeypatch.delenv("DV_RETENTION_DAYS")
    assert plan_retention(session, now=PLAN_NOW).retention_days == 2190
    with pytest.raises(ValueError):
        plan_retention(session, retention_days=0)


def test_action_columns_and_statuses_match_the_meetings_model():
    for name in ("id", "notification_id", "status", "updated_at_utc"):
        assert name in Action.__table__.c
    assert retention.ACTION.name == Action.__table__.name
    outstanding = {ActionStatus.open.value, ActionStatus.in_progress.value}
    assert set(retention.OPEN_ACTION_STATUSES) == outstanding


def test_every_reference_to_a_table_retention_deletes_from_is_handled():
    """A new table pointing at a notification, person or batch must be taught to retention (or cascade)."""
    import core.models  # noqa: F401  all models registered
    import meetings.models  # noqa: F401

    deleted = {"notification", "notification_person", "field_change", "action", "encompass_alert", "person",
               "import_batch", "row_error", "agenda_item", "case_record"}
    refs = {(t.name, fk.parent.name) for t in SQLModel.metadata.tables.values() for fk in t.foreign_keys
            if fk.column.table.name in deleted}
    assert refs - set(retention.HANDLED_REFERENCES) == set()


def dv(*args, db_url: str):
    return subprocess.run([sys.executable, "-m", "dv", *args], cwd=ROOT, env=dict(os.environ, DATABASE_URL=db_url),
                          capture_output=True, text=True, timeout=120)


def test_cli_dry_run_then_apply(tmp_path):
    from core.db import get_engine, session_scope
    from core.timeutil import utcnow

    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    out = dv("import", str(extract(tmp_path, "niche_wide", records(8, seed=33, start=INCIDENTS_FROM))),
             "--profile", "niche_wide", "--json", db_url=url)
    assert out.returncode == 0, out.stderr
    engine = get_engine(url)
    try:
        with unaudited(), session_scope(engine) as s:
            s.execute(update(Notification).values(updated_at_utc=OLD))
            s.execute(update(ImportBatch).values(started_at_utc=OLD))
            # the import raised its children's Encompass alerts; the schools acknowledged them long ago
            s.execute(update(EncompassAlert).values(status=AlertStatus.acknowledged, acknowledged_at_utc=OLD))
            held = s.execute(select(func.min(Notification.id))).scalar_one()
            s.execute(update(Notification).where(Notification.id == held).values(legal_hold=True))
    finally:
        engine.dispose()
    days = str((utcnow() - OLD).days - 30)  # OLD is past retention; the 2019 incidents too

    out = dv("retention", db_url=url)
    assert out.returncode == 2 and "one of the arguments --dry-run --apply is required" in out.stderr
    out = dv("retention", "--dry-run", "--json", "--days", days, db_url=url)
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert set(body) == {"dry_run", "retention_days", "cutoff", "notifications", "held", "persons", "batches",
                         "ids_sample"}
    assert (body["dry_run"], body["retention_days"], body["notifications"], body["held"], body["batches"]) == \
        (True, int(days), 7, 1, 0)  # the held notification still refers to the one batch
    assert body["persons"] > 0 and held not in body["ids_sample"] and len(body["ids_sample"]) == 7

    out = dv("retention", "--apply", "--json", "--days", days, db_url=url)
    assert out.returncode == 0, out.stderr
    applied = json.loads(out.stdout)
    assert applied["cutoff"] >= body["cutoff"]  # a moment later
    assert dict(applied, cutoff=None) == dict(body, dry_run=False, cutoff=None)
    out = dv("retention", "--dry-run", "--days", days, db_url=url)
    assert out.returncode == 0 and out.stdout.startswith("Dry run: would delete 0 closed notifications")
    assert "1 kept on legal hold" in out.stdout
    engine = get_engine(url)
    try:
        with session_scope(engine) as s:
            assert s.execute(select(func.count()).select_from(Notification)).scalar_one() == 1
            [audit] = s.execute(select(AuditEvent).where(AuditEvent.action == "retention")).scalars().all()
            assert audit.username.startswith("cli") and json.loads(audit.details)["ids"] == body["ids_sample"]
    finally:
        engine.dispose()
