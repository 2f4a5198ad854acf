"""The meeting record (meetings/meeting.py) and chasing actions (meetings/actions.py): opening from the agenda,
attendance, risk rules, decisions, shared notes, actions with working-hours due dates, the timer, closing and
amendments, the minutes, what an agency then sees, concurrent saves, and the MARAC referrals the next agenda reads.
Runs on SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt
import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlmodel import Session

import meetings.agenda as agenda
from core.auth import create_user
from core.models import AuditEvent, User, UserRole
from core.scope import Refused, visible
from dv.models import Notification
from meetings import meeting as mt
from meetings.actions import (Conflict, action_context, action_history, chase_list, list_actions, overdue_by_agency,
                              update_action)
from meetings.models import ActionChange, AgencyShare, CaseRecord, MeetingAmendment
from tests.test_agenda import MON, PASSWORD, at, build_and_view, load, rec, ref

CSC, HEALTH, PROBATION, IDVA = 2, 4, 6, 8
T0 = dt.datetime(2026, 11, 23, 10, 0)  # Monday 10:00 wall-clock = 10:00 UTC (GMT in November)


@pytest.fixture
def hub(session, tmp_path):
    coord = create_user(session, None, username="casey", display_name="Casey Chair", role=UserRole.coordinator,
                        password=PASSWORD)
    csc = create_user(session, coord, username="csc.rep", display_name="Sam CSC", role=UserRole.agency,
                      agency_id=CSC, password=PASSWORD)
    health = create_user(session, coord, username="health.rep", display_name="Hal Health", role=UserRole.agency,
                         agency_id=HEALTH, password=PASSWORD)
    session.commit()
    sat = at("21/11/2026 22:00")
    kid = {"surname": "Okafor", "forename": "Ava", "dob": dt.date(2019, 5, 1), "gender": "Female", "present": True,
           "school": None}
    load(session, tmp_path, [rec(1, sat, crime=True, risk="high", score=15, children=[kid]),
                             rec(2, sat, crime=True, risk="medium", score=11),
                             rec(3, sat, risk="high", score=4)], "meeting")
    view = build_and_view(session, coord, MON)
    items = {i["police_ref"]: i["item_id"] for i in view["items"]}
    assert set(items) == {ref(1), ref(2), ref(3)}
    return {"coord": coord, "csc": csc, "health": health, "items": items, "meeting_id": view["meeting_id"],
            "version": view["version"]}


def opened(session, hub):
    mt.open_meeting(session, hub["coord"], hub["meeting_id"], chair="Casey Chair", expected_version=hub["version"])
    session.commit()


def test_open_attendance_and_confidentiality(session, hub):
    coord = hub["coord"]
    with pytest.raises(mt.MeetingError, match="Name the chair"):
        mt.open_meeting(session, coord, hub["meeting_id"], chair=" ", expected_version=hub["version"])
    with pytest.raises(mt.Conflict):
        mt.open_meeting(session, coord, hub["meeting_id"], chair="X", expected_version=hub["version"] + 5)
    session.rollback()
    opened(session, hub)
    with pytest.raises(mt.MeetingError, match="already open"):
        mt.open_meeting(session, coord, hub["meeting_id"], chair="X", expected_version=hub["version"] + 1)
    with pytest.raises(mt.MeetingError, match="must accept the confidentiality statement"):
        mt.add_attendee(session, coord, hub["meeting_id"], agency_id=CSC, name="Sam", attendance="present")
    mt.add_attendee(session, coord, hub["meeting_id"], agency_id=CSC, name="Sam", attendance="present",
                    confidentiality_accepted=True)
    mt.add_attendee(session, coord, hub["meeting_id"], agency_id=HEALTH, name="Hal", attendance="apologies")
    gone = mt.add_attendee(session, coord, hub["meeting_id"], agency_id=PROBATION, name="Pat",
                           attendance="present", confidentiality_accepted=True)
    mt.remove_attendee(session, coord, gone)
    session.commit()
    view = mt.meeting_view(session, coord, MON)
    assert view["meeting"]["status"] == "open" and view["meeting"]["chair"] == "Casey Chair"
    states = {a["agency"]: (a["attendance"], a["names"]) for a in mt.agency_attendance(view)}
    assert states["Children's Social Care"] == ("present", "Sam")
    assert states["Health"] == ("apologies", "Hal")
    assert states["Probation"] == ("absent", "")
    assert [a["confidentiality_accepted"] for a in view["attendees"]] == [True, False]
    # an agency rep cannot record a meeting, and the refusal is audited
    with pytest.raises(Refused):
        mt.add_attendee(session, hub["csc"], hub["meeting_id"], agency_id=CSC, name="Me",
                        confidentiality_accepted=True)
    assert session.execute(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.outcome == "refused", AuditEvent.username == "csc.rep")).scalar_one() == 1


def test_confirmed_risk_rules_decisions_and_shares(session, hub):
    coord, items, mid = hub["coord"], hub["items"], hub["meeting_id"]
    with pytest.raises(mt.MeetingError, match="Open the meeting first"):
        mt.save_case(session, coord, mid, items[ref(1)], expected_version=None, confirmed_risk="high")
    opened(session, hub)
    # DASH 15 is the high band: never lowered below it, even with a rationale
    with pytest.raises(mt.MeetingError, match="cannot be lower than the DASH score's band: a score of 15 is high"):
        mt.save_case(session, coord, mid, items[ref(1)], expected_version=None, confirmed_risk="medium",
                     risk_rationale="Perpetrator in custody")
    # raising a grade needs a rationale
    with pytest.raises(mt.MeetingError, match="rationale"):
        mt.save_case(session, coord, mid, items[ref(2)], expected_version=None, confirmed_risk="high")
    session.rollback()
    case = mt.save_case(session, coord, mid, items[ref(2)], expected_version=None, confirmed_risk="high",
                        risk_rationale="Escalating: third call this month",
                        decisions=["marac_referral", "csc_referral", "marac_referral"])
    # police high with DASH 4 (standard band): lowered to standard with a rationale is allowed
    mt.save_case(session, coord, mid, items[ref(3)], expected_version=None, confirmed_risk="standard",
                 risk_rationale="Graded high in error; DASH 4")
    mt.save_share(session, coord, mid, items[ref(2)], CSC, "=HYPERLINK(\"x\") Open case, allocated SW",
                  expected_version=None)
    mt.save_share(session, coord, mid, items[ref(2)], HEALTH, "GP: no concerns", expected_version=None)
    session.commit()
    # a stale editor of the case or of a note is refused, with nothing written
    with pytest.raises(mt.Conflict):
        mt.save_case(session, coord, mid, items[ref(2)], expected_version=case["version"] - 1,
                     confirmed_risk="medium", risk_rationale="x")
    with pytest.raises(mt.Conflict):
        mt.save_share(session, coord, mid, items[ref(2)], CSC, "overwrite", expected_version=None)
    session.rollback()
    view = mt.meeting_view(session, coord, MON)
    got = {c["police_ref"]: c for c in view["cases"]}
    assert got[ref(2)]["confirmed_risk"] == "high"
    assert got[ref(2)]["decisions"] == ["marac_referral", "csc_referral"]
    assert {s["agency"]: s["note"] for s in got[ref(2)]["shares"].values()} == {
        "Children's Social Care": "=HYPERLINK(\"x\") Open case, allocated SW", "Health": "GP: no concerns"}
    assert got[ref(3)]["confirmed_risk"] == "standard" and got[ref(1)]["confirmed_risk"] is None
    # removing a note: "" with its version
    version = got[ref(2)]["shares"][HEALTH]["version"]
    mt.save_share(session, coord, mid, items[ref(2)], HEALTH, "", expected_version=version)
    session.commit()
    assert session.execute(select(func.count()).select_from(AgencyShare)).scalar_one() == 1


def test_actions_due_dates_timer_close_and_amendments(session, hub):
    coord, items, mid = hub["coord"], hub["items"], hub["meeting_id"]
    opened(session, hub)
    mt.go_to_case(session, coord, mid, items[ref(1)], now_utc=T0)
    mt.save_case(session, coord, mid, items[ref(1)], expected_version=None, confirmed_risk="high",
                 decisions=["csc_referral"])
    # Monday 10:00, high: 4 working hours -> 14:00; medium 24 -> Tuesday 10:00
    a1 = mt.add_case_action(session, coord, mid, items[ref(1)], agency_id=CSC, description="Strategy discussion",
                            owner="Team 3", now=T0)
    mt.go_to_case(session, coord, mid, items[ref(2)], now_utc=T0 + dt.timedelta(minutes=7))
    a2 = mt.add_case_action(session, coord, mid, items[ref(2)], agency_id=HEALTH, description="GP to review",
                            now=T0)
    a3 = mt.add_case_action(session, coord, mid, items[ref(2)], agency_id=IDVA, description="IDVA contact",
                            now=dt.datetime(2026, 12, 24, 16, 0))  # Thursday before Christmas: 24h -> Tue 29/12
    session.commit()
    view = mt.meeting_view(session, coord, MON, now_utc=T0 + dt.timedelta(minutes=10))
    got = {c["police_ref"]: c for c in view["cases"]}
    assert got[ref(1)]["seconds_spent"] == 420 and got[ref(2)]["seconds_spent"] == 180 and got[ref(2)]["current"]
    due = {a["id"]: a["due_at"] for c in view["cases"] for a in c["actions"]}
    assert due == {a1: dt.datetime(2026, 11, 23, 14, 0), a2: dt.datetime(2026, 11, 24, 10, 0),
                   a3: dt.datetime(2026, 12, 29, 16, 0)}
    mt.close_meeting(session, coord, mid, expected_version=view["meeting"]["version"],
                     now_utc=T0 + dt.timedelta(minutes=12))
    session.commit()
    view = mt.meeting_view(session, coord, MON)
    got = {c["police_ref"]: c for c in view["cases"]}
    assert view["meeting"]["status"] == "closed" and got[ref(2)]["seconds_spent"] == 300
    assert not any(c["current"] and c["seconds_spent"] > 300 for c in view["cases"])
    assert session.execute(select(func.count()).select_from(MeetingAmendment)).scalar_one() == 0

    # an agency's status update after the meeting is normal chasing, not an amendment
    update_action(session, hub["csc"], a1, expected_version=1, status="in_progress", note="Booked for Tuesday")
    # a coordinator changing what was agreed, a decision, or adding an action: amendments, listed in the minutes
    update_action(session, coord, a2, expected_version=1, due_at=dt.datetime(2026, 11, 25, 12, 0))
    mt.save_case(session, coord, mid, items[ref(1)], expected_version=got[ref(1)]["case_version"],
                 confirmed_risk="high", decisions=["csc_referral", "marac_referral"])
    mt.add_case_action(session, coord, mid, items[ref(1)], agency_id=PROBATION, description="Check licence",
                       now=T0 + dt.timedelta(hours=3))
    session.commit()
    amendments = session.execute(select(MeetingAmendment.entity, MeetingAmendment.summary)
                                 .order_by(MeetingAmendment.id)).all()
    assert [a.entity for a in amendments] == ["action", "case_record", "action"]
    assert "due at 2026-11-24 10:00 → 2026-11-25 12:00" in amendments[0].summary
    assert "marac_referral" in amendments[1].summary and "Check licence" in amendments[2].summary
    flags = dict(session.execute(select(ActionChange.field, ActionChange.amendment)
                                 .where(ActionChange.action_id == a1)).all())
    assert flags == {"created": False, "status": False, "note": False}
    assert session.execute(select(CaseRecord.amended).where(CaseRecord.agenda_item_id == items[ref(1)])).scalar_one()
    # an agency rep cannot change what the meeting agreed
    with pytest.raises(Refused):
        update_action(session, hub["health"], a2, expected_version=2, description="Nothing")

    # the minutes
    data = mt.export_minutes(session, coord, MON)
    book = load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["Meeting", "Attendance", "Attendees", "Cases", "Actions", "Carried forward",
                               "Amendments"]
    meeting_rows = {r[0]: r[1] for r in book["Meeting"].iter_rows(min_row=2, values_only=True)}
    assert meeting_rows["Chair"] == "Casey Chair" and meeting_rows["Status"] == "closed"
    cases = list(book["Cases"].iter_rows(values_only=True))
    header = cases[0]
    by_ref = {r[1]: dict(zip(header, r)) for r in cases[1:]}
    assert by_ref[ref(1)]["Decisions"] == "Children's social care referral; MARAC referral"
    assert by_ref[ref(1)]["Amended"] == "yes" and by_ref[ref(2)]["Minutes spent"] == 5.0
    actions = [r for r in book["Actions"].iter_rows(min_row=2, values_only=True)]
    assert {(r[0], r[1], r[3], r[7]) for r in actions} == {
        (ref(1), "Children's Social Care", "Strategy discussion", None), (ref(2), "Health", "GP to review", None),
        (ref(2), "IDVA", "IDVA contact", None), (ref(1), "Probation", "Check licence", "yes")}
    assert len(list(book["Amendments"].iter_rows(min_row=2))) == 3
    assert session.execute(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "export", AuditEvent.entity == "meeting")).scalar_one() == 1


def test_minutes_are_formula_safe_and_carry_forward_open_actions(session, hub):
    coord, items, mid = hub["coord"], hub["items"], hub["meeting_id"]
    from meetings.actions import create_action

    nid = session.execute(select(Notification.id).where(Notification.police_ref == ref(3))).scalar_one()
    earlier = create_action(session, coord, notification_id=nid, agency_id=PROBATION, description="-1+1 check",
                            now=dt.datetime(2026, 11, 20, 9, 0))
    session.commit()
    opened(session, hub)
    mt.save_share(session, coord, mid, items[ref(2)], CSC, "=cmd|' /C calc'!A0", expected_version=None)
    session.commit()
    book = load_workbook(io.BytesIO(mt.export_minutes(session, coord, MON)))
    cells = [c for row in book.worksheets for r in row.iter_rows(values_only=True) for c in r]
    assert "'=cmd|' /C calc'!A0" in cells and "=cmd|' /C calc'!A0" not in cells
    carried = list(book["Carried forward"].iter_rows(min_row=2, values_only=True))
    assert [(r[0], r[1], r[3]) for r in carried] == [(ref(3), "Probation", "'-1+1 check")]
    assert earlier


def test_what_an_agency_sees_of_the_case(session, hub):
    coord, items, mid = hub["coord"], hub["items"], hub["meeting_id"]
    opened(session, hub)
    mt.save_case(session, coord, mid, items[ref(2)], expected_version=None, confirmed_risk="high",
                 risk_rationale="Escalating", decisions=["idva_referral"])
    mt.save_share(session, coord, mid, items[ref(2)], CSC, "Open to CSC", expected_version=None)
    mt.save_share(session, coord, mid, items[ref(2)], PROBATION, "On licence", expected_version=None)
    mt.save_share(session, coord, mid, items[ref(1)], PROBATION, "Not known", expected_version=None)
    a = mt.add_case_action(session, coord, mid, items[ref(2)], agency_id=HEALTH, description="GP review", now=T0)
    mt.add_case_action(session, coord, mid, items[ref(1)], agency_id=CSC, description="Visit", now=T0)
    session.commit()
    context = action_context(session, hub["health"], a)
    assert context["confirmed_risk"].value == "high" and [d.value for d in context["decisions"]] == ["idva_referral"]
    assert {s["agency"]: s["note"] for s in context["shared"]} == {"Children's Social Care": "Open to CSC",
                                                                  "Probation": "On licence"}
    # CSC has no action on case 2: it cannot open Health's action, nor read case 2's record or notes
    assert action_context(session, hub["csc"], a) is None
    cases = {r[0] for r in session.connection().execute(
        select(CaseRecord.__table__.c.notification_id).where(visible(hub["csc"], "case_record")))}
    n1 = session.execute(select(Notification.id).where(Notification.police_ref == ref(1))).scalar_one()
    assert cases == {n1}
    notes = {r[0] for r in session.connection().execute(
        select(AgencyShare.__table__.c.note).where(visible(hub["csc"], "agency_share")))}
    assert notes == {"Not known"}
    for user in (hub["csc"], hub["health"]):
        with pytest.raises(Refused):
            mt.meeting_view(session, user, MON)


def test_concurrent_saves_one_wins_and_history_shows_one_change(engine, session, hub):
    coord, items, mid = hub["coord"], hub["items"], hub["meeting_id"]
    opened(session, hub)
    a = mt.add_case_action(session, coord, mid, items[ref(1)], agency_id=CSC, description="Visit", now=T0)
    session.commit()
    with Session(engine, expire_on_commit=False) as first, Session(engine, expire_on_commit=False) as second:
        # both load the action (version 1), each request in its own short transaction, as in the app ...
        rep1 = first.get(User, hub["csc"].id)
        seen1 = list_actions(first, rep1)[0]
        first.commit()
        rep2 = second.get(User, hub["csc"].id)
        seen2 = list_actions(second, rep2)[0]
        second.commit()
        assert seen1["version"] == seen2["version"] == 1
        update_action(first, rep1, a, expected_version=seen1["version"], status="done", note="Visited, all safe")
        first.commit()
        with pytest.raises(Conflict) as exc:
            update_action(second, rep2, a, expected_version=seen2["version"], status="not_done", note="stale")
        assert exc.value.current["note"] == "Visited, all safe" and exc.value.current["status"].value == "done"
    history = action_history(session, coord, a)
    assert [(h["field"], h["old_value"], h["new_value"]) for h in history] == [
        ("created", None, "Visit (due 2026-11-23 14:00)"), ("status", "open", "done"),
        ("note", None, "Visited, all safe")]
    assert {h["by"] for h in history[1:]} == {"Sam CSC"}
    assert action_history(session, hub["health"], a) == []


def test_chasing_buckets_overdue_view_and_the_next_agenda(session, hub):
    coord, items, mid = hub["coord"], hub["items"], hub["meeting_id"]
    opened(session, hub)
    late = mt.add_case_action(session, coord, mid, items[ref(1)], agency_id=CSC, description="Late one",
                              due_at=dt.datetime(2026, 11, 23, 12, 0))
    today = mt.add_case_action(session, coord, mid, items[ref(1)], agency_id=CSC, description="Today",
                               due_at=dt.datetime(2026, 11, 23, 17, 0))
    later = mt.add_case_action(session, coord, mid, items[ref(2)], agency_id=CSC, description="Later",
                               due_at=dt.datetime(2026, 11, 27, 17, 0))
    done = mt.add_case_action(session, coord, mid, items[ref(2)], agency_id=CSC, description="Done",
                              due_at=dt.datetime(2026, 11, 23, 11, 0))
    h = mt.add_case_action(session, coord, mid, items[ref(2)], agency_id=HEALTH, description="Health overdue",
                           due_at=dt.datetime(2026, 11, 23, 11, 0))
    session.commit()
    update_action(session, hub["csc"], done, expected_version=1, status="done", note="ok")
    session.commit()
    now = dt.datetime(2026, 11, 23, 15, 0)
    rows = list_actions(session, hub["csc"], now=now)
    assert [(r["id"], r["bucket"]) for r in rows] == [(late, "overdue"), (today, "due_today"), (later, "later"),
                                                      (done, "closed")]
    assert [r["id"] for r in list_actions(session, hub["csc"], now=now, include_closed=False)] == [late, today, later]
    assert [r["id"] for r in list_actions(session, coord, now=now, statuses=("done",))] == [done]
    counts = {r["agency"]: (r["overdue"], r["due_today"]) for r in overdue_by_agency(session, coord, now=now)}
    assert counts["Children's Social Care"] == (1, 1) and counts["Health"] == (1, 0) and counts["Police"] == (0, 0)
    with pytest.raises(Refused):
        overdue_by_agency(session, hub["csc"], now=now)
    assert [r["id"] for r in chase_list(None, None, agency_id=CSC, now=now, conn=session.connection())] == [late,
                                                                                                           today]
    # the agency completes the overdue action: the next day's agenda review no longer lists it
    update_action(session, hub["csc"], late, expected_version=1, status="done", note="Visited")
    session.commit()
    tuesday = dt.date(2026, 11, 24)
    review = {a["action_id"] for a in build_and_view(session, coord, tuesday)["overdue_actions"]}
    assert late not in review and {today, h} <= review


def test_marac_referrals_feed_the_next_agenda(session, hub, tmp_path):
    coord, items, mid = hub["coord"], hub["items"], hub["meeting_id"]
    opened(session, hub)
    mt.save_case(session, coord, mid, items[ref(2)], expected_version=None, confirmed_risk="high",
                 risk_rationale="x", decisions=["marac_referral"])
    session.commit()
    victims = dict(session.connection().execute(select(Notification.police_ref, Notification.victim_id)).all())
    assert agenda.marac_referrals(session, list(victims.values())) == {victims[ref(2)]: [MON]}
    # the same victim again on Tuesday: a MARAC repeat
    from tests.test_agenda import victim
    load(session, tmp_path, [rec(40, at("23/11/2026 20:00"), person=victim(2))], "again",
         now=dt.datetime(2026, 11, 24, 8, 0))
    got = {i["police_ref"]: i for i in build_and_view(session, coord, dt.date(2026, 11, 24))["items"]}
    assert got[ref(40)]["marac_flags"] == ["repeat (MARAC referral on 23/11/2026)"]
