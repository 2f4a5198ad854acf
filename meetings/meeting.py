"""The meeting record: open today's meeting from its agenda, attendance, each case's shared notes, confirmed risk,
decisions and actions, the per-case timer, closing (which locks it) and amendments, the minutes.

Every function takes a session and a user and writes immediately (one interaction, one transaction), so nothing is
lost when the chair's browser tab closes mid-meeting: the page is only a view of what is stored, including which
case is on screen and since when (the timer).

Locking: once closed, changes still need ``record_meeting`` (coordinators only) and each is written to
``meeting_amendment`` and flagged (``case_record.amended``, ``action.amendment``), so the minutes show what changed
after the meeting and by whom.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core import audit
from core.db import checked_update
from core.models import Agency, User
from core.scope import refuse, require, visible
from core.settings import get_settings
from core.timeutil import london_now, utc_to_london, utcnow
from dv.models import Notification, NotificationPerson, PersonRole, Risk
from meetings import actions as action_service
from meetings.agenda import agenda_view
from meetings.models import (Action, AgencyShare, AgendaItem, Attendance, CaseDecision, CaseRecord,
                             Decision, Meeting, MeetingAmendment, MeetingAttendee, MeetingStatus)

M = Meeting.__table__
I = AgendaItem.__table__  # noqa: E741
CR = CaseRecord.__table__
CD = CaseDecision.__table__
SH = AgencyShare.__table__
AT = MeetingAttendee.__table__
AM = MeetingAmendment.__table__
A = Action.__table__
G = Agency.__table__
N = Notification.__table__
NP = NotificationPerson.__table__

CONFIDENTIALITY_STATEMENT = (
    "The information discussed at this meeting is confidential. It is shared only to protect children and adults "
    "at risk of domestic abuse, under the hub's information sharing agreement. It must not be passed on except to "
    "carry out the actions agreed, and must be recorded and stored securely by each agency.")

DECISION_LABELS = {
    Decision.no_further_action: "No further action / information only",
    Decision.information_shared: "Information shared",
    Decision.early_help: "Early Help offer",
    Decision.csc_referral: "Children's social care referral",
    Decision.strategy_discussion: "Strategy discussion",
    Decision.marac_referral: "MARAC referral",
    Decision.idva_referral: "IDVA referral",
    Decision.adult_safeguarding_referral: "Adult safeguarding referral",
    Decision.clares_law: "Clare's Law consideration",
}
RISK_ORDER = {Risk.not_assessed: 0, Risk.standard: 1, Risk.medium: 2, Risk.high: 3}


class MeetingError(ValueError):
    """A meeting rule was broken (the message says which); nothing was written."""


class Conflict(Exception):
    """Someone else saved this record after it was loaded; ``current`` holds what is stored now."""

    def __init__(self, what: str, current: dict | None = None):
        super().__init__(f"This {what} was changed by someone else after you opened it. Their version is shown; "
                         "make your change again if it is still needed.")
        self.current = current


def dash_band(score: int | None) -> Risk | None:
    """The DASH checklist's band: 14+ "yes" answers high, 10-13 medium, 1-9 standard; no score, no band."""
    if score is None or score <= 0:
        return None
    return Risk.high if score >= 14 else Risk.medium if score >= 10 else Risk.standard


def _value(v):
    return getattr(v, "value", v)


# ------------------------------------------------------------------------------------------------ reading


def _meeting_row(conn, meeting_id: int) -> dict | None:
    row = conn.execute(select(M).where(M.c.id == meeting_id)).mappings().first()
    return dict(row) if row else None


def _require_meeting(session: Session, user: User, meeting_id: int, attempted: str) -> dict:
    require(session, user, "record_meeting")
    meeting = _meeting_row(session.connection(), meeting_id)
    if meeting is None:
        raise refuse(session, user, attempted, "meeting", meeting_id)
    return meeting


def _closed(meeting: dict) -> bool:
    return _value(meeting["status"]) == MeetingStatus.closed.value


def _amend(session: Session, user: User, meeting: dict, entity: str, entity_id: int | None, summary: str) -> bool:
    """Write an amendment row when ``meeting`` is closed; True when it was."""
    if not _closed(meeting):
        return False
    session.connection().execute(insert(AM).values(meeting_id=meeting["id"], entity=entity, entity_id=entity_id,
                                                   summary=summary, by_id=user.id, at_utc=utcnow()))
    return True


def meeting_view(session: Session, user: User, meeting_date: dt.date, *, log_view: bool = True,
                 now_utc: dt.datetime | None = None) -> dict:
    """Everything the meeting page shows: the agenda's cases in order, each with its record (confirmed risk,
    decisions, shares, actions, time spent), attendance per agency, and the timer of the case on screen."""
    require(session, user, "read_meeting")
    view = agenda_view(session, user, meeting_date, log_view=False, overdue_actions=False)
    conn = session.connection()
    settings = get_settings()
    view.update(meeting=None, attendees=[], agencies=[], cases=[], amendments=[], carried_forward=[],
                target_seconds=settings.case_target_minutes * 60,
                confidentiality_statement=CONFIDENTIALITY_STATEMENT)
    view["agencies"] = [dict(r) for r in conn.execute(
        select(G.c.id, G.c.name).where(G.c.active.is_(True), visible(user, "agency")).order_by(G.c.id)).mappings()]
    if view["meeting_id"] is None:
        return view
    meeting = _meeting_row(conn, view["meeting_id"])
    meeting["status"] = _value(meeting["status"])
    view["meeting"] = meeting
    view["attendees"] = [dict(r) for r in conn.execute(
        select(AT, G.c.name.label("agency")).join(G, G.c.id == AT.c.agency_id)
        .where(AT.c.meeting_id == meeting["id"], visible(user, "meeting_attendee")).order_by(G.c.id, AT.c.id))
        .mappings()]
    for a in view["attendees"]:
        a["attendance"] = _value(a["attendance"])
    cases = [i for i in view["items"] if not i.get("removed")]
    records = {r["agenda_item_id"]: dict(r) for r in conn.execute(
        select(CR).where(CR.c.meeting_id == meeting["id"], visible(user, "case_record"))).mappings()}
    case_ids = [r["id"] for r in records.values()]
    decisions, shares, case_actions = defaultdict(list), defaultdict(dict), defaultdict(list)
    if case_ids:
        for r in conn.execute(select(CD.c.case_id, CD.c.decision).where(CD.c.case_id.in_(case_ids))
                              .order_by(CD.c.id)):
            decisions[r.case_id].append(_value(r.decision))
        for r in conn.execute(select(SH.c.case_id, SH.c.agency_id, SH.c.note, SH.c.version, G.c.name)
                              .join(G, G.c.id == SH.c.agency_id).where(SH.c.case_id.in_(case_ids))):
            shares[r.case_id][r.agency_id] = {"agency": r.name, "note": r.note, "version": r.version}
        for r in conn.execute(select(A.c.id, A.c.case_id, A.c.agency_id, G.c.name.label("agency"), A.c.owner,
                                     A.c.description, A.c.due_at, A.c.status, A.c.note, A.c.version, A.c.amendment)
                              .join(G, G.c.id == A.c.agency_id)
                              .where(A.c.case_id.in_(case_ids), visible(user, "action")).order_by(A.c.id)).mappings():
            row = dict(r)
            row["status"] = _value(row["status"])
            case_actions[r.case_id].append(row)
    now_utc = now_utc or utcnow()
    for item in cases:
        record = records.get(item["item_id"])
        case = {**item, "case_id": None, "confirmed_risk": None, "risk_rationale": None, "decisions": [],
                "shares": {}, "actions": [], "seconds_spent": 0, "discussed": False, "amended": False,
                "case_version": None, "current": item["item_id"] == meeting["current_item_id"]}
        if record:
            case.update(case_id=record["id"], confirmed_risk=_value(record["confirmed_risk"]),
                        risk_rationale=record["risk_rationale"], decisions=decisions[record["id"]],
                        shares=shares[record["id"]], actions=case_actions[record["id"]],
                        seconds_spent=record["seconds_spent"], discussed=record["discussed"],
                        amended=record["amended"], case_version=record["version"])
        if case["current"] and meeting["current_since_utc"] and meeting["status"] == MeetingStatus.open.value:
            case["seconds_spent"] += max(0, int((now_utc - meeting["current_since_utc"]).total_seconds()))
        view["cases"].append(case)
    view["amendments"] = [dict(r) for r in conn.execute(
        select(AM.c.at_utc, AM.c.entity, AM.c.entity_id, AM.c.summary, User.__table__.c.display_name.label("by"))
        .outerjoin(User.__table__, User.__table__.c.id == AM.c.by_id)
        .where(AM.c.meeting_id == meeting["id"], visible(user, "meeting_amendment")).order_by(AM.c.id)).mappings()]
    if log_view:
        audit.record(session, user, "view", "meeting", meeting["id"], meeting_date=meeting_date,
                     record="meeting", cases=len(cases))
    return view


def carried_forward(session: Session, user: User, meeting: dict) -> list[dict]:
    """Actions agreed at earlier meetings (or between meetings) still open when this meeting was held."""
    opened = meeting["opened_at_utc"] or utcnow()
    stmt = (select(A.c.id, N.c.police_ref, G.c.name.label("agency"), A.c.owner, A.c.description, A.c.due_at,
                   A.c.status, M.c.meeting_date.label("agreed_at_meeting"))
            .join(N, N.c.id == A.c.notification_id).join(G, G.c.id == A.c.agency_id)
            .outerjoin(M, M.c.id == A.c.meeting_id)
            .where(A.c.status.in_(action_service.OPEN_STATUSES), A.c.created_at_utc < opened,
                   (A.c.meeting_id.is_(None)) | (A.c.meeting_id != meeting["id"]), visible(user, "action"))
            .order_by(A.c.due_at, A.c.id).limit(2000))
    rows = [dict(r) for r in session.connection().execute(stmt).mappings()]
    for r in rows:
        r["status"] = _value(r["status"])
    return rows


# ------------------------------------------------------------------------------------------------ the meeting


def open_meeting(session: Session, user: User, meeting_id: int, *, chair: str, expected_version: int) -> dict:
    """Start the meeting from its agenda (publishing a draft agenda as it stands). Records the chair."""
    meeting = _require_meeting(session, user, meeting_id, "open_meeting")
    chair = (chair or "").strip()
    if not chair:
        raise MeetingError("Name the chair.")
    if _value(meeting["status"]) in (MeetingStatus.open.value, MeetingStatus.closed.value):
        raise MeetingError(f"This meeting is already {_value(meeting['status'])}.")
    now = utcnow()
    values = dict(status=MeetingStatus.open, chair=chair, opened_at_utc=now, opened_by_id=user.id,
                  version=M.c.version + 1)
    if meeting["published_at_utc"] is None:
        values.update(published_at_utc=now, published_by_id=user.id)
    if not checked_update(session, update(M).where(M.c.id == meeting_id, M.c.version == expected_version)
                          .values(**values)):
        session.rollback()
        raise Conflict("meeting", _meeting_row(session.connection(), meeting_id))
    audit.record(session, user, "change", "meeting", meeting_id, old={"status": _value(meeting["status"])},
                 new={"status": "open", "chair": chair})
    return _meeting_row(session.connection(), meeting_id)


def set_chair(session: Session, user: User, meeting_id: int, chair: str) -> None:
    meeting = _require_meeting(session, user, meeting_id, "record_meeting")
    chair = (chair or "").strip()
    if not chair:
        raise MeetingError("Name the chair.")
    if chair == meeting["chair"]:
        return
    session.connection().execute(update(M).where(M.c.id == meeting_id).values(chair=chair, version=M.c.version + 1))
    amended = _amend(session, user, meeting, "meeting", meeting_id, f"Chair changed: {meeting['chair']} → {chair}")
    audit.record(session, user, "change", "meeting", meeting_id, old={"chair": meeting["chair"]},
                 new={"chair": chair}, amendment=amended)


def add_attendee(session: Session, user: User, meeting_id: int, *, agency_id: int, name: str,
                 attendance: str | Attendance = Attendance.present, confidentiality_accepted: bool = False) -> int:
    """Record one person for an agency: present, apologies (information sent) or absent, and whether they
    accepted the confidentiality statement (required for anyone present)."""
    meeting = _require_meeting(session, user, meeting_id, "record_attendance")
    name = (name or "").strip()
    attendance = Attendance(attendance)
    if not name:
        raise MeetingError("Give the attendee's name.")
    if attendance == Attendance.present and not confidentiality_accepted:
        raise MeetingError(f"{name} must accept the confidentiality statement to attend.")
    conn = session.connection()
    if conn.execute(select(G.c.id).where(G.c.id == agency_id, G.c.active.is_(True))).first() is None:
        raise MeetingError("No such agency.")
    now = utcnow()
    attendee_id = conn.execute(insert(AT).values(
        meeting_id=meeting_id, agency_id=agency_id, name=name, attendance=attendance,
        confidentiality_accepted=bool(confidentiality_accepted),
        accepted_at_utc=now if confidentiality_accepted else None, recorded_by_id=user.id, created_at_utc=now,
        version=1)).inserted_primary_key[0]
    amended = _amend(session, user, meeting, "meeting_attendee", attendee_id,
                     f"Attendance added after the meeting: {name} ({attendance.value})")
    audit.record(session, user, "change", "meeting_attendee", attendee_id, meeting_id=meeting_id,
                 new={"agency_id": agency_id, "name": name, "attendance": attendance.value,
                      "confidentiality_accepted": bool(confidentiality_accepted)}, amendment=amended)
    return attendee_id


def remove_attendee(session: Session, user: User, attendee_id: int) -> None:
    require(session, user, "record_meeting")
    conn = session.connection()
    row = conn.execute(select(AT).where(AT.c.id == attendee_id, visible(user, "meeting_attendee"))).mappings().first()
    if row is None:
        raise refuse(session, user, "remove_attendee", "meeting_attendee", attendee_id)
    meeting = _meeting_row(conn, row["meeting_id"])
    conn.execute(delete(AT).where(AT.c.id == attendee_id))
    amended = _amend(session, user, meeting, "meeting_attendee", attendee_id,
                     f"Attendance removed after the meeting: {row['name']}")
    audit.record(session, user, "change", "meeting_attendee", attendee_id, old={"name": row["name"]}, new=None,
                 amendment=amended)


def agency_attendance(view: dict) -> list[dict]:
    """Per agency: present / apologies / absent (no one recorded), with the names."""
    out = []
    for agency in view["agencies"]:
        people = [a for a in view["attendees"] if a["agency_id"] == agency["id"]]
        states = {a["attendance"] for a in people}
        status = (Attendance.present.value if Attendance.present.value in states else
                  Attendance.apologies.value if Attendance.apologies.value in states else Attendance.absent.value)
        out.append({"agency_id": agency["id"], "agency": agency["name"], "attendance": status,
                    "names": ", ".join(a["name"] for a in people)})
    return out


def _item(conn, meeting_id: int, item_id: int) -> dict | None:
    row = conn.execute(select(I.c.id, I.c.notification_id, I.c.removed, N.c.risk, N.c.dash_score)
                       .join(N, N.c.id == I.c.notification_id)
                       .where(I.c.id == item_id, I.c.meeting_id == meeting_id)).mappings().first()
    return dict(row) if row else None


def _ensure_case(session: Session, meeting: dict, item: dict) -> dict:
    """The case record of an agenda item, created on first use (an item added after the meeting opened too)."""
    conn = session.connection()
    row = conn.execute(select(CR).where(CR.c.agenda_item_id == item["id"])).mappings().first()
    if row is None:
        try:
            with session.begin_nested():
                conn.execute(insert(CR).values(meeting_id=meeting["id"], agenda_item_id=item["id"],
                                               notification_id=item["notification_id"],
                                               police_risk=_value(item["risk"]), seconds_spent=0, discussed=False,
                                               amended=False, updated_at_utc=utcnow(), version=1))
        except IntegrityError:
            pass  # created by a colleague a moment ago
        row = conn.execute(select(CR).where(CR.c.agenda_item_id == item["id"])).mappings().first()
    return dict(row)


def _case_for_item(session: Session, user: User, meeting_id: int, item_id: int, attempted: str) -> tuple[dict, dict]:
    meeting = _require_meeting(session, user, meeting_id, attempted)
    if _value(meeting["status"]) not in (MeetingStatus.open.value, MeetingStatus.closed.value):
        raise MeetingError("Open the meeting first.")
    item = _item(session.connection(), meeting_id, item_id)
    if item is None:
        raise refuse(session, user, attempted, "agenda_item", item_id)
    return meeting, _ensure_case(session, meeting, item) | {"dash_score": item["dash_score"]}


def go_to_case(session: Session, user: User, meeting_id: int, item_id: int | None, *,
               now_utc: dt.datetime | None = None) -> None:
    """Put a case on screen: the time since the previous case went on screen is added to that case's timer."""
    meeting = _require_meeting(session, user, meeting_id, "record_meeting")
    if _value(meeting["status"]) != MeetingStatus.open.value:
        raise MeetingError("The timer runs only while the meeting is open.")
    conn = session.connection()
    now_utc = now_utc or utcnow()
    _stop_timer(session, meeting, now_utc)
    if item_id is not None:
        item = _item(conn, meeting_id, item_id)
        if item is None:
            raise refuse(session, user, "go_to_case", "agenda_item", item_id)
        case = _ensure_case(session, meeting, item)
        conn.execute(update(CR).where(CR.c.id == case["id"]).values(discussed=True))
    conn.execute(update(M).where(M.c.id == meeting_id).values(current_item_id=item_id, current_since_utc=now_utc))
    audit.record(session, user, "change", "meeting", meeting_id, new={"current_item_id": item_id})


def _stop_timer(session: Session, meeting: dict, now_utc: dt.datetime) -> None:
    if meeting["current_item_id"] is None or meeting["current_since_utc"] is None:
        return
    seconds = max(0, int((now_utc - meeting["current_since_utc"]).total_seconds()))
    session.connection().execute(update(CR).where(CR.c.agenda_item_id == meeting["current_item_id"])
                                 .values(seconds_spent=CR.c.seconds_spent + seconds))


def save_case(session: Session, user: User, meeting_id: int, item_id: int, *, expected_version: int | None,
              confirmed_risk: str | Risk | None, risk_rationale: str | None = None,
              decisions: list[str | Decision] = ()) -> dict:
    """Record the confirmed risk and the decisions. A confirmed risk different from the police grade needs a
    written rationale; it may be raised by judgement but never below the DASH score's band. ``expected_version``
    is the case record's version the editor saw (None: they saw no record yet)."""
    meeting, case = _case_for_item(session, user, meeting_id, item_id, "record_case")
    # None is not "any version": the record may have been created since (putting the case on screen does that, at
    # version 1 with nothing recorded), but a save since then is one the editor never saw, and would be overwritten.
    if case["version"] != (1 if expected_version is None else expected_version):
        raise Conflict("case", case)
    police = Risk(_value(case["police_risk"]))
    confirmed = Risk(confirmed_risk) if confirmed_risk else None
    rationale = (risk_rationale or "").strip() or None
    if confirmed is not None:
        band = dash_band(case["dash_score"])
        if band is not None and RISK_ORDER[confirmed] < RISK_ORDER[band]:
            raise MeetingError(f"The confirmed risk cannot be lower than the DASH score's band: a score of "
                               f"{case['dash_score']} is {band.value}.")
        if confirmed != police and not rationale:
            raise MeetingError(f"Give the rationale for changing the police grade ({police.value.replace('_', ' ')})"
                               f" to {confirmed.value.replace('_', ' ')}.")
    chosen = list(dict.fromkeys(Decision(d) for d in decisions))
    old_decisions = [_value(d) for d in session.connection().execute(
        select(CD.c.decision).where(CD.c.case_id == case["id"]).order_by(CD.c.id)).scalars()]
    old = {"confirmed_risk": _value(case["confirmed_risk"]), "risk_rationale": case["risk_rationale"],
           "decisions": old_decisions}
    new = {"confirmed_risk": confirmed.value if confirmed else None, "risk_rationale": rationale,
           "decisions": [d.value for d in chosen]}
    if old == new:
        return case
    amended = _closed(meeting)
    if not checked_update(session, update(CR).where(CR.c.id == case["id"], CR.c.version == case["version"])
                          .values(confirmed_risk=confirmed, risk_rationale=rationale, updated_by_id=user.id,
                                  updated_at_utc=utcnow(), version=CR.c.version + 1, discussed=True,
                                  amended=CR.c.amended | amended)):
        session.rollback()
        raise Conflict("case", None)
    conn = session.connection()
    if set(old_decisions) != set(new["decisions"]):
        conn.execute(delete(CD).where(CD.c.case_id == case["id"]))
        if chosen:
            conn.execute(insert(CD), [{"case_id": case["id"], "decision": d} for d in chosen])
    if amended:
        _amend(session, user, meeting, "case_record", case["id"], "Case record changed after the meeting: " +
               "; ".join(f"{k.replace('_', ' ')} {old[k]} → {new[k]}" for k in new if old[k] != new[k]))
    audit.record(session, user, "change", "case_record", case["id"], old=old, new=new, amendment=amended,
                 notification_id=case["notification_id"])
    return dict(session.connection().execute(select(CR).where(CR.c.id == case["id"])).mappings().first())


def save_share(session: Session, user: User, meeting_id: int, item_id: int, agency_id: int, note: str, *,
               expected_version: int | None) -> None:
    """What ``agency_id`` shared about the case (one note per agency; "" removes it). ``expected_version`` is the
    note's version the editor saw (None: there was none)."""
    meeting, case = _case_for_item(session, user, meeting_id, item_id, "record_share")
    conn = session.connection()
    note = (note or "").strip()
    row = conn.execute(select(SH).where(SH.c.case_id == case["id"], SH.c.agency_id == agency_id)).mappings().first()
    if (row["version"] if row else None) != expected_version:
        raise Conflict("shared note", dict(row) if row else None)
    if conn.execute(select(G.c.id).where(G.c.id == agency_id)).first() is None:
        raise MeetingError("No such agency.")
    now = utcnow()
    if row is None:
        if not note:
            return
        try:
            with session.begin_nested():
                share_id = conn.execute(insert(SH).values(case_id=case["id"], agency_id=agency_id, note=note,
                                                          updated_by_id=user.id, updated_at_utc=now,
                                                          version=1)).inserted_primary_key[0]
        except IntegrityError:
            raise Conflict("shared note", None) from None
    else:
        if row["note"] == note:
            return
        share_id = row["id"]
        if not note:
            # checked like the update: on PostgreSQL a colleague's save after the read above matches no row
            if not checked_update(session, delete(SH).where(SH.c.id == row["id"], SH.c.version == expected_version)):
                session.rollback()
                raise Conflict("shared note", None)
        elif not checked_update(session, update(SH).where(SH.c.id == row["id"], SH.c.version == expected_version)
                                .values(note=note, updated_by_id=user.id, updated_at_utc=now,
                                        version=SH.c.version + 1)):
            session.rollback()
            raise Conflict("shared note", None)
    amended = _amend(session, user, meeting, "agency_share", share_id,
                     f"Shared note changed after the meeting (agency {agency_id}, case {case['id']})")
    if amended:
        conn.execute(update(CR).where(CR.c.id == case["id"]).values(amended=True))
    audit.record(session, user, "change", "agency_share", share_id, case_id=case["id"], agency_id=agency_id,
                 old={"note": row["note"] if row else None}, new={"note": note or None}, amendment=amended)


def add_case_action(session: Session, user: User, meeting_id: int, item_id: int, *, agency_id: int,
                    description: str, owner: str | None = None, due_at: dt.datetime | None = None,
                    now: dt.datetime | None = None) -> int:
    """Agree an action on a case. Due by default after the confirmed risk's working hours (police grade until the
    risk is confirmed), counted from ``now`` (wall-clock)."""
    meeting, case = _case_for_item(session, user, meeting_id, item_id, "create_action")
    risk = _value(case["confirmed_risk"]) or _value(case["police_risk"])
    action_id = action_service.create_action(
        session, user, notification_id=case["notification_id"], agency_id=agency_id, description=description,
        due_at=due_at, owner=owner, meeting_id=meeting_id, case_id=case["id"], risk=risk, now=now)
    if _closed(meeting):
        session.connection().execute(update(CR).where(CR.c.id == case["id"]).values(amended=True))
    return action_id


def close_meeting(session: Session, user: User, meeting_id: int, *, expected_version: int,
                  now_utc: dt.datetime | None = None) -> None:
    """Close (lock) the meeting: the timer stops; later changes are amendments."""
    meeting = _require_meeting(session, user, meeting_id, "close_meeting")
    if _value(meeting["status"]) != MeetingStatus.open.value:
        raise MeetingError("Only an open meeting can be closed.")
    if not meeting["chair"]:
        raise MeetingError("Name the chair before closing.")
    now_utc = now_utc or utcnow()
    _stop_timer(session, meeting, now_utc)
    if not checked_update(session, update(M).where(M.c.id == meeting_id, M.c.version == expected_version)
                          .values(status=MeetingStatus.closed, closed_at_utc=now_utc, closed_by_id=user.id,
                                  current_item_id=None, current_since_utc=None, version=M.c.version + 1)):
        session.rollback()
        raise Conflict("meeting", _meeting_row(session.connection(), meeting_id))
    audit.record(session, user, "change", "meeting", meeting_id, old={"status": "open"}, new={"status": "closed"})


# ------------------------------------------------------------------------------------------------ MARAC history


def marac_referral_dates(session: Session, person_ids) -> dict[int, list[dt.date]]:
    """Each person's MARAC referral dates as meetings decided them: the meeting date of every case with a MARAC
    referral decision on a notification the person was the victim on (a MARAC referral is about the victim)."""
    ids = sorted(set(person_ids))
    out: dict[int, list[dt.date]] = defaultdict(list)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        stmt = (select(NP.c.person_id, M.c.meeting_date)
                .select_from(CD.join(CR, CR.c.id == CD.c.case_id).join(M, M.c.id == CR.c.meeting_id)
                             .join(NP, NP.c.notification_id == CR.c.notification_id))
                .where(CD.c.decision == Decision.marac_referral.value, NP.c.person_id.in_(chunk),
                       NP.c.role == PersonRole.victim.value)
                .distinct())
        for person_id, day in session.connection().execute(stmt):
            out[person_id].append(day)
    return {p: sorted(days) for p, days in out.items()}


# ------------------------------------------------------------------------------------------------ minutes


def _fmt(v) -> str:
    return (v or "").replace("_", " ") if isinstance(v, str) or v is None else str(v)


def minutes_workbook(view: dict) -> bytes:
    """The minutes: Meeting, Attendance, Cases (decisions, shared notes, time), Actions, Carried forward,
    Amendments. Formula-safe (``core.exports``). The caller audits the export."""
    from core.exports import xlsx_bytes

    meeting = view["meeting"] or {}
    london = (lambda t: utc_to_london(t) if t else None)
    summary = [("Meeting date", view["date"]), ("Status", _fmt(meeting.get("status"))),
               ("Chair", meeting.get("chair")), ("Opened", london(meeting.get("opened_at_utc"))),
               ("Closed", london(meeting.get("closed_at_utc"))), ("Cases discussed",
                                                                   sum(1 for c in view["cases"] if c["discussed"])),
               ("Confidentiality statement", view["confidentiality_statement"])]
    attendance = [(a["agency"], _fmt(a["attendance"]), a["names"]) for a in agency_attendance(view)]
    people = [(a["agency"], a["name"], _fmt(a["attendance"]), "yes" if a["confidentiality_accepted"] else "no")
              for a in view["attendees"]]
    agencies = [a["name"] for a in view["agencies"]]
    cases, actions = [], []
    for c in view["cases"]:
        shares = c["shares"].values()
        cases.append([c["position"], c["police_ref"], _fmt(c["stream"]), _fmt(c["risk"]), c["dash_score"],
                      _fmt(c["confirmed_risk"]), c["risk_rationale"],
                      "; ".join(DECISION_LABELS[Decision(d)] for d in c["decisions"]),
                      *[next((s["note"] for s in shares if s["agency"] == name), None) for name in agencies],
                      round(c["seconds_spent"] / 60, 1), "yes" if c["amended"] else ""])
        for a in c["actions"]:
            actions.append([c["police_ref"], a["agency"], a["owner"], a["description"], a["due_at"],
                            _fmt(a["status"]), a["note"], "yes" if a["amendment"] else ""])
    carried = [[a["police_ref"], a["agency"], a["owner"], a["description"], a["due_at"], _fmt(a["status"]),
                a["agreed_at_meeting"]] for a in view["carried_forward"]]
    amendments = [[london(a["at_utc"]), a["by"], a["entity"].replace("_", " "), a["summary"]]
                  for a in view["amendments"]]
    return xlsx_bytes({
        "Meeting": (("Item", "Value"), summary),
        "Attendance": (("Agency", "Attendance", "Names"), attendance),
        "Attendees": (("Agency", "Name", "Attendance", "Confidentiality accepted"), people),
        "Cases": (("No.", "Police ref", "Stream", "Police risk", "DASH score", "Confirmed risk", "Rationale",
                   "Decisions", *[f"Shared: {n}" for n in agencies], "Minutes spent", "Amended"), cases),
        "Actions": (("Police ref", "Agency", "Owner", "Action", "Due", "Status", "Note", "Amendment"), actions),
        "Carried forward": (("Police ref", "Agency", "Owner", "Action", "Due", "Status", "Agreed at meeting"),
                            carried),
        "Amendments": (("When", "By", "What", "Change"), amendments),
    })


def export_minutes(session: Session, user: User, meeting_date: dt.date) -> bytes:
    view = meeting_view(session, user, meeting_date, log_view=False)
    if view["meeting"] is None:
        raise MeetingError("There is no meeting on that date.")
    # Only the minutes list them: the page, rerun at every click, never reads them.
    view["carried_forward"] = carried_forward(session, user, view["meeting"])
    data = minutes_workbook(view)
    audit.record(session, user, "export", "meeting", view["meeting_id"], what="minutes", cases=len(view["cases"]))
    return data


def time_now() -> dt.datetime:
    """The wall-clock now the page uses for due dates (one place, so tests can pin it)."""
    return london_now()


__all__ = ["CONFIDENTIALITY_STATEMENT", "DECISION_LABELS", "Conflict", "MeetingError", "add_attendee",
           "add_case_action", "agency_attendance", "carried_forward", "close_meeting", "dash_band",
           "export_minutes", "go_to_case", "marac_referral_dates", "meeting_view", "minutes_workbook", "open_meeting",
           "remove_attendee", "save_case", "save_share", "set_chair"]
