"""Retention: delete closed notifications whose last activity is older than ``retention_days`` (default 6 years),
with the people and import batches only they needed. ``python -m dv retention --dry-run|--apply`` runs it.

* **Closed**: nothing outstanding — no action open or in progress, no Encompass alert queued or notified.
* **Last activity**: the latest of the incident (Europe/London wall-clock), the notification's ``updated_at_utc``,
  its actions' ``updated_at_utc`` and its alerts' ``acknowledged_at_utc``. "Latest activity before the cut-off" is
  written as "every one of them before the cut-off", so the test is a plain conjunction of index-friendly
  comparisons and NOT EXISTS probes, the same SQL on SQLite and PostgreSQL (no GREATEST, no per-row Python).
  The incident is compared with the cut-off converted to wall-clock, like for like (``core.timeutil``).
* **Legal hold** (``notification.legal_hold``): never deleted; counted as ``held`` when otherwise due.
* **People**: a person linked (as a party, or as ``victim_id``) only to deleted notifications is deleted too.
* **Import batches**: a batch started before the cut-off that no remaining notification refers to — as its first
  or last batch, or through a field change — is deleted with its row errors.
* The audit log is never touched (append-only); ``apply_retention`` adds one ``retention`` row.

``plan_retention`` only reads. ``apply_retention`` deletes in the caller's transaction, in chunks of ids, children
before parents, without relying on ON DELETE CASCADE, and re-checks every row against the same rules as it
deletes it (an action opened or a hold set since the plan keeps the notification).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator, Sequence

from sqlalchemy import (DateTime, Integer, String, and_, column, delete, false, func, literal_column, not_, or_, select,
                        table, true, union)
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause
from sqlmodel import Session

from core import audit
from core.settings import get_settings
from core.timeutil import utc_to_london, utcnow
from dv.models import (AlertStatus, EncompassAlert, FieldChange, ImportBatch, Notification, NotificationPerson, Person,
                       PersonMatch, RowError)

CHUNK = 500  # ids per IN list (SQLite's bound-parameter limit is 999 on old builds)
AUDIT_IDS = 100  # ids named in the audit row

# ``meetings.models.Action``, described by name: ``dv`` imports only ``core`` (README layer rules).
# tests/test_retention.py checks these columns and statuses against the real model.
ACTION = table("action", column("id", Integer), column("notification_id", Integer), column("status", String),
               column("updated_at_utc", DateTime))
AGENDA_ITEM = table("agenda_item", column("id", Integer), column("notification_id", Integer))
ACTION_CHANGE = table("action_change", column("action_id", Integer))
CASE_RECORD = table("case_record", column("id", Integer), column("notification_id", Integer))
CASE_DECISION = table("case_decision", column("case_id", Integer))
AGENCY_SHARE = table("agency_share", column("case_id", Integer))
OPEN_ACTION_STATUSES = ("open", "in_progress")
OUTSTANDING_ALERT_STATUSES = (AlertStatus.queued, AlertStatus.notified)

N = Notification.__table__
NP = NotificationPerson.__table__
FC = FieldChange.__table__
ALERT = EncompassAlert.__table__
PERSON = Person.__table__
BATCH = ImportBatch.__table__
ROW_ERROR = RowError.__table__
MATCH = PersonMatch.__table__

# Every foreign key that points at a table retention deletes from, and how it is handled. A new one (a later
# issue's table) must be added here; tests/test_retention.py fails until it is.
HANDLED_REFERENCES = {
    ("notification_person", "notification_id"): "deleted with the notification",
    ("field_change", "notification_id"): "deleted with the notification",
    ("encompass_alert", "notification_id"): "deleted with the notification",
    ("action", "notification_id"): "deleted with the notification",
    ("agenda_item", "notification_id"): "deleted with the notification (the meeting itself stays)",
    ("person_match", "person_a_id"): "a person's possible-match rows are deleted with the person",
    ("person_match", "person_b_id"): "a person's possible-match rows are deleted with the person",
    ("encompass_alert", "child_link_id"): "the alert is deleted first",
    ("notification_person", "person_id"): "a person is deleted only when no link is left",
    ("notification", "victim_id"): "a person is deleted only when no notification names them",
    ("notification", "first_batch_id"): "a batch is deleted only when no notification refers to it",
    ("notification", "last_batch_id"): "a batch is deleted only when no notification refers to it",
    ("field_change", "batch_id"): "a batch is deleted only when no field change refers to it",
    ("row_error", "batch_id"): "deleted with the batch",
    ("action_change", "action_id"): "an action's history is deleted with the action",
    ("case_record", "notification_id"): "the meeting's record of the case (decisions, shares) is deleted with it",
    ("case_record", "agenda_item_id"): "deleted with the notification, before its agenda item",
    ("action", "case_id"): "the action is deleted before the case record",
    ("case_decision", "case_id"): "deleted with the case record",
    ("agency_share", "case_id"): "deleted with the case record",
}


@dataclasses.dataclass(frozen=True)
class RetentionPlan:
    """What ``apply_retention`` would delete, as of ``now_utc``."""

    now_utc: dt.datetime
    retention_days: int
    cutoff_utc: dt.datetime  # last activity before this (UTC) ...
    cutoff_local: dt.datetime  # ... or, for the incident, before this (Europe/London wall-clock)
    notification_ids: tuple[int, ...]
    held: int  # closed and past retention, but on legal hold
    person_ids: tuple[int, ...]  # people who would be left with no notification
    batch_ids: tuple[int, ...]  # old import batches no remaining notification would refer to

    @property
    def notifications(self) -> int:
        return len(self.notification_ids)

    @property
    def persons(self) -> int:
        return len(self.person_ids)

    @property
    def batches(self) -> int:
        return len(self.batch_ids)

    def to_json(self) -> dict:
        return {"dry_run": True, "retention_days": self.retention_days, "cutoff": self.cutoff_utc.isoformat(),
                "notifications": self.notifications, "held": self.held, "persons": self.persons,
                "batches": self.batches, "ids_sample": list(self.notification_ids[:AUDIT_IDS])}


# ---------------------------------------------------------------------------------------------- the rules in SQL


def _due(n: FromClause, cutoff_utc: dt.datetime, cutoff_local: dt.datetime) -> ColumnElement[bool]:
    """Notification ``n`` is closed and its last activity is before the cut-off (legal hold not considered)."""
    a, al = ACTION.alias("ra"), ALERT.alias("ral")
    return and_(
        n.c.incident_at < cutoff_local,
        n.c.updated_at_utc < cutoff_utc,
        not_(select(literal_column("1")).select_from(a).where(
            a.c.notification_id == n.c.id,
            or_(a.c.status.in_(OPEN_ACTION_STATUSES), a.c.updated_at_utc >= cutoff_utc)).exists()),
        not_(select(literal_column("1")).select_from(al).where(
            al.c.notification_id == n.c.id,
            or_(al.c.status.in_(OUTSTANDING_ALERT_STATUSES), al.c.acknowledged_at_utc >= cutoff_utc)).exists()),
    )


def _doomed(n: FromClause, cutoff_utc: dt.datetime, cutoff_local: dt.datetime) -> ColumnElement[bool]:
    return and_(n.c.legal_hold == false(), _due(n, cutoff_utc, cutoff_local))


def _kept(n: FromClause, cutoff_utc: dt.datetime, cutoff_local: dt.datetime) -> ColumnElement[bool]:
    return or_(n.c.legal_hold == true(), not_(_due(n, cutoff_utc, cutoff_local)))


def _orphaned(person_id, cutoff_utc, cutoff_local) -> ColumnElement[bool]:
    """The person is neither a party to nor the victim of any notification that stays. Two top-level NOT EXISTS
    (not NOT (A OR B)), so PostgreSQL can plan them as anti-joins when there are many people to check."""
    np, k1, k2 = NP.alias("knp"), N.alias("k1"), N.alias("k2")
    as_party = (select(literal_column("1")).select_from(np.join(k1, k1.c.id == np.c.notification_id))
                .where(np.c.person_id == person_id, _kept(k1, cutoff_utc, cutoff_local)).exists())
    as_victim = (select(literal_column("1")).select_from(k2)
                 .where(k2.c.victim_id == person_id, _kept(k2, cutoff_utc, cutoff_local)).exists())
    return and_(not_(as_party), not_(as_victim))


def _old_batches_still_referenced(cutoff_utc, cutoff_local):
    """Ids of import batches started before the cut-off that a notification that stays refers to (as its first or
    last batch, or through a field change). Aggregated once by UNION (a few thousand ids at most), not probed per
    batch: those reference columns have no index. Only rows pointing at an old batch are tested for "stays"."""
    old = select(BATCH.c.id).where(BATCH.c.started_at_utc < cutoff_utc)
    k1, k2, k3, fc = N.alias("b1"), N.alias("b2"), N.alias("b3"), FC.alias("bfc")
    return union(
        select(k1.c.first_batch_id).where(k1.c.first_batch_id.in_(old), _kept(k1, cutoff_utc, cutoff_local)),
        select(k2.c.last_batch_id).where(k2.c.last_batch_id.in_(old), _kept(k2, cutoff_utc, cutoff_local)),
        select(fc.c.batch_id).select_from(fc.join(k3, k3.c.id == fc.c.notification_id))
        .where(fc.c.batch_id.in_(old), _kept(k3, cutoff_utc, cutoff_local)),
    )


def _chunks(ids: Sequence[int], size: int = CHUNK) -> Iterator[list[int]]:
    for i in range(0, len(ids), size):
        yield list(ids[i:i + size])


# ---------------------------------------------------------------------------------------------- plan and apply


def plan_retention(session: Session, *, now: dt.datetime | None = None,
                   retention_days: int | None = None) -> RetentionPlan:
    """What is past retention as of ``now`` (naive UTC; default: now). Reads only."""
    days = get_settings().retention_days if retention_days is None else int(retention_days)
    if days < 1:
        raise ValueError(f"retention_days must be at least 1 (got {days})")
    now = now or utcnow().replace(microsecond=0)
    cutoff_utc = now - dt.timedelta(days=days)
    cutoff_local = utc_to_london(cutoff_utc)
    session.flush()

    n = N.alias("n")
    ids = tuple(session.execute(
        select(n.c.id).where(_doomed(n, cutoff_utc, cutoff_local)).order_by(n.c.id)).scalars())
    held = session.execute(select(func.count()).select_from(n).where(
        n.c.legal_hold == true(), _due(n, cutoff_utc, cutoff_local))).scalar_one()

    # People linked to a doomed notification (as a party or as its victim) and to no notification that stays.
    d1, d2, dnp = N.alias("d1"), N.alias("d2"), NP.alias("dnp")
    candidates = union(
        select(dnp.c.person_id).select_from(dnp.join(d1, d1.c.id == dnp.c.notification_id))
        .where(_doomed(d1, cutoff_utc, cutoff_local)),
        select(d2.c.victim_id).where(d2.c.victim_id.is_not(None), _doomed(d2, cutoff_utc, cutoff_local)),
    )
    p = PERSON.alias("p")
    person_ids = tuple(session.execute(
        select(p.c.id).where(p.c.id.in_(candidates), _orphaned(p.c.id, cutoff_utc, cutoff_local))
        .order_by(p.c.id)).scalars()) if ids else ()

    b = BATCH.alias("b")
    batch_ids = tuple(session.execute(
        select(b.c.id).where(b.c.started_at_utc < cutoff_utc,
                             b.c.id.not_in(_old_batches_still_referenced(cutoff_utc, cutoff_local)))
        .order_by(b.c.id)).scalars())

    return RetentionPlan(now_utc=now, retention_days=days, cutoff_utc=cutoff_utc, cutoff_local=cutoff_local,
                         notification_ids=ids, held=held, person_ids=person_ids, batch_ids=batch_ids)


def apply_retention(session: Session, plan: RetentionPlan, *, actor: str) -> dict:
    """Delete what ``plan`` lists, in the caller's transaction (commit or roll back is the caller's), and add one
    audit row. Each row is re-checked against the rules as it is deleted, so a plan that has gone stale deletes
    less, never more. Returns the counts actually deleted."""
    cutoff_utc, cutoff_local = plan.cutoff_utc, plan.cutoff_local
    session.flush()
    done = {"notifications": 0, "actions": 0, "action_changes": 0, "case_records": 0, "agenda_items": 0, "alerts": 0, "notification_people": 0, "field_changes": 0,
            "persons": 0, "batches": 0, "row_errors": 0}
    deleted_ids: list[int] = []

    def run(stmt) -> int:
        return session.execute(stmt).rowcount or 0

    for chunk in _chunks(plan.notification_ids):
        # Still due? FOR UPDATE (PostgreSQL) also makes a concurrent new action or alert wait for this transaction.
        ids = list(session.execute(
            select(N.c.id).where(N.c.id.in_(chunk), _doomed(N, cutoff_utc, cutoff_local)).with_for_update()
        ).scalars())
        if not ids:
            continue
        # Children first, explicitly: the alerts before the people links their child_link_id points at.
        done["alerts"] += run(delete(ALERT).where(ALERT.c.notification_id.in_(ids)))
        action_ids = select(ACTION.c.id).where(ACTION.c.notification_id.in_(ids))
        done["action_changes"] += run(delete(ACTION_CHANGE).where(ACTION_CHANGE.c.action_id.in_(action_ids)))
        done["actions"] += run(delete(ACTION).where(ACTION.c.notification_id.in_(ids)))
        case_ids = select(CASE_RECORD.c.id).where(CASE_RECORD.c.notification_id.in_(ids))
        run(delete(CASE_DECISION).where(CASE_DECISION.c.case_id.in_(case_ids)))
        run(delete(AGENCY_SHARE).where(AGENCY_SHARE.c.case_id.in_(case_ids)))
        done["case_records"] += run(delete(CASE_RECORD).where(CASE_RECORD.c.notification_id.in_(ids)))
        done["agenda_items"] += run(delete(AGENDA_ITEM).where(AGENDA_ITEM.c.notification_id.in_(ids)))
        done["field_changes"] += run(delete(FC).where(FC.c.notification_id.in_(ids)))
        done["notification_people"] += run(delete(NP).where(NP.c.notification_id.in_(ids)))
        done["notifications"] += run(delete(N).where(N.c.id.in_(ids)))
        deleted_ids += ids

    for chunk in _chunks(plan.person_ids):
        gone = select(PERSON.c.id).where(
            PERSON.c.id.in_(chunk),
            PERSON.c.id.not_in(select(NP.c.person_id).where(NP.c.person_id.in_(chunk))),
            PERSON.c.id.not_in(select(N.c.victim_id).where(N.c.victim_id.in_(chunk))))
        run(delete(MATCH).where(MATCH.c.person_a_id.in_(gone) | MATCH.c.person_b_id.in_(gone)))
        done["persons"] += run(delete(PERSON).where(
            PERSON.c.id.in_(chunk),
            PERSON.c.id.not_in(select(NP.c.person_id).where(NP.c.person_id.in_(chunk))),
            PERSON.c.id.not_in(select(N.c.victim_id).where(N.c.victim_id.in_(chunk)))))

    for chunk in _chunks(plan.batch_ids):
        # Only batches still old and unreferenced; the reference columns have no index, so one scan per chunk.
        refs = union(select(N.c.first_batch_id).where(N.c.first_batch_id.in_(chunk)),
                     select(N.c.last_batch_id).where(N.c.last_batch_id.in_(chunk)),
                     select(FC.c.batch_id).where(FC.c.batch_id.in_(chunk)))
        ids = list(session.execute(select(BATCH.c.id).where(
            BATCH.c.id.in_(chunk), BATCH.c.started_at_utc < cutoff_utc, BATCH.c.id.not_in(refs))).scalars())
        if not ids:
            continue
        done["row_errors"] += run(delete(ROW_ERROR).where(ROW_ERROR.c.batch_id.in_(ids)))
        done["batches"] += run(delete(BATCH).where(BATCH.c.id.in_(ids)))

    audit.record(session, None, "retention", "notification", None, username=actor,
                 counts={**done, "held": plan.held, "retention_days": plan.retention_days,
                         "cutoff_utc": plan.cutoff_utc.isoformat()},
                 ids=deleted_ids[:AUDIT_IDS])
    session.flush()
    return {"dry_run": False, "retention_days": plan.retention_days, "cutoff": plan.cutoff_utc.isoformat(),
            **done, "held": plan.held, "ids_sample": deleted_ids[:AUDIT_IDS]}
