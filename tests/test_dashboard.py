"""The performance dashboard (issue 7): every figure against a small hand-computed data set, on SQLite and
PostgreSQL; buckets, range boundaries, the forecast line, suppression in exports only, refusals, the workbook and
the ``report`` command.

The data set (range Monday 29 April to Sunday 12 May 2024: a weekend on 4-5 May, the Early May bank holiday on
Monday 6 May; British Summer Time, so wall-clock = UTC + 1):

notifications in range (7; crime 3, non-crime 4)
    n1 V1 Mon 29/04 00:00 crime  high      NG5 1AA  children: born 2021 (under 5), born 2010   (repeat: n0 in Jan)
    n2 V1 Sat 04/05 22:00 non    medium    NG5 2BB  child born 05/05/2019 (under 5 by a day)    (escalation: n0, n1)
    n6 V4 Sun 05/05 12:00 crime  high      NG5 3CC                                             (n7 > 365 days ago)
    n3 V2 Mon 06/05 09:30 crime  standard  S1 4DT   child born 06/05/2019 (exactly 5: not under 5)
    n9 V5 Mon 06/05 18:00 non    medium    NG5 1ZZ                       (bank holiday: the peak day, 2)
    n8 -  Wed 08/05 10:00 non    standard  NG7 1AA  (no victim)
    n4 V3 Sun 12/05 23:59 non    not asses. force "=cmd", no postcode    (repeat of n5; MARAC referral 04/03)
meetings: M1 04/03 (n5: MARAC), M2 Mon 29/04 (n1: CSC + MARAC, 600 s; n_before: NFA, 300 s), M3 Tue 07/05 after the
bank holiday (n2: strategy discussion, 900 s; n6: early help, 120 s; n3 not discussed), M4 13/05 outside, M5 draft
outside: n_before 28/04 23:59, n_after 13/05 00:00, n0 (V1, 10/01), n5 (V3, 01/03), n7 (V4, 2023-04-01)
"""
from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from core.auth import create_user
from core.models import Agency, AuditEvent, UserRole
from core.scope import Refused
from core.settings import get_settings
from core.timeutil import london_to_utc
from dv.models import EncompassAlert, Notification, NotificationPerson, Person
from meetings.dashboard import bst_periods, dashboard, export_dashboard, tables, workbook_bytes
from meetings.models import (Action, AgendaItem, CaseDecision, CaseRecord, Meeting, MeetingAttendee)
from tests.factories import unaudited

ROOT = Path(__file__).resolve().parent.parent
START, END = dt.date(2024, 4, 29), dt.date(2024, 5, 12)
NOW = dt.datetime(2024, 5, 20, 12, 0)  # wall-clock "now" for overdue
PASSWORD = "correct-horse-staple-7"
D = dt.datetime


def build(session) -> dict:
    """Write the hand-computed data set straight into the tables."""
    agencies = {name: id_ for id_, name in session.execute(select(Agency.id, Agency.name)).all()}
    with unaudited():
        people = {k: Person(force="Test Police", surname=f"Victim{k}", forename="Made", match_key=f"v{k}")
                  for k in ("V1", "V2", "V3", "V4", "V5", "C")}
        session.add_all(people.values())
        session.flush()
        P = {k: p.id for k, p in people.items()}
        notes = {}

        def note(key, victim, at, stream, risk, postcode=None, force="Test Police"):
            n = Notification(force=force, police_ref=f"REF-{key}", incident_at=at, stream=stream,
                             stream_reason="test", risk=risk, postcode=postcode,
                             victim_id=P[victim] if victim else None)
            session.add(n)
            session.flush()
            notes[key] = n.id
            if victim:
                session.add(NotificationPerson(notification_id=n.id, person_id=P[victim], role="victim"))
            return n.id

        def child(key, dob):
            session.add(NotificationPerson(notification_id=notes[key], person_id=P["C"], role="child", dob=dob))

        note("n0", "V1", D(2024, 1, 10, 10), "crime", "high", "NG5 1AA")
        note("n5", "V3", D(2024, 3, 1, 20), "non_crime", "high", "NG1 1AA")
        note("n7", "V4", D(2023, 4, 1, 12), "crime", "medium", "NG5 3CC")
        note("n_before", None, D(2024, 4, 28, 23, 59), "crime", "high", "NG5 1AA")
        note("n_after", None, D(2024, 5, 13, 0, 0), "non_crime", "high", "NG5 1AA")
        note("n1", "V1", D(2024, 4, 29, 0, 0), "crime", "high", "NG5 1AA")
        child("n1", dt.date(2021, 1, 1))
        child("n1", dt.date(2010, 1, 1))
        note("n2", "V1", D(2024, 5, 4, 22, 0), "non_crime", "medium", "NG5 2BB")
        child("n2", dt.date(2019, 5, 5))
        note("n6", "V4", D(2024, 5, 5, 12, 0), "crime", "high", "ng53cc")
        note("n3", "V2", D(2024, 5, 6, 9, 30), "crime", "standard", "S1 4DT")
        child("n3", dt.date(2019, 5, 6))
        note("n9", "V5", D(2024, 5, 6, 18, 0), "non_crime", "medium", "NG5 1ZZ")
        note("n8", None, D(2024, 5, 8, 10, 0), "non_crime", "standard", "NG7 1AA")
        note("n4", "V3", D(2024, 5, 12, 23, 59), "non_crime", "not_assessed", None, force="=cmd")

        meetings = {}

        def meeting(key, day, status="closed"):
            m = Meeting(meeting_date=day, window_start=D.combine(day - dt.timedelta(days=1), dt.time(9)),
                        window_end=D.combine(day, dt.time(9)), status=status,
                        opened_at_utc=D.combine(day, dt.time(9)) if status != "draft" else None)
            session.add(m)
            session.flush()
            meetings[key] = m.id
            return m.id

        cases = {}

        def case_(key, mkey, nkey, seconds, decisions, discussed=True):
            item = AgendaItem(meeting_id=meetings[mkey], notification_id=notes[nkey], section="other")
            session.add(item)
            session.flush()
            c = CaseRecord(meeting_id=meetings[mkey], agenda_item_id=item.id, notification_id=notes[nkey],
                           seconds_spent=seconds, discussed=discussed)
            session.add(c)
            session.flush()
            cases[key] = c.id
            for d in decisions:
                session.add(CaseDecision(case_id=c.id, decision=d))

        meeting("M1", dt.date(2024, 3, 4))
        case_("c0", "M1", "n5", 400, ["marac_referral"])
        meeting("M2", dt.date(2024, 4, 29))
        case_("c1", "M2", "n1", 600, ["csc_referral", "marac_referral"])
        case_("c2", "M2", "n_before", 300, ["no_further_action"])
        meeting("M3", dt.date(2024, 5, 7))  # the Tuesday after the bank holiday
        case_("c3", "M3", "n2", 900, ["strategy_discussion"])
        case_("c4", "M3", "n6", 120, ["early_help"])
        case_("c5", "M3", "n3", 0, [], discussed=False)
        meeting("M4", dt.date(2024, 5, 13))  # outside the range
        case_("c6", "M4", "n_after", 1000, ["csc_referral"])
        meeting("M5", dt.date(2024, 5, 8), status="draft")  # never held

        police, csc, health = agencies["Police"], agencies["Children's Social Care"], agencies["Health"]
        for mkey, agency, name, how in (("M2", police, "PC One", "present"), ("M3", police, "PC One", "present"),
                                        ("M2", csc, "SW One", "present"), ("M3", csc, "SW One", "apologies"),
                                        ("M3", csc, "SW Two", "absent"), ("M2", health, "HV One", "absent")):
            session.add(MeetingAttendee(meeting_id=meetings[mkey], agency_id=agency, name=name, attendance=how))

        def action(agency, nkey, created, due, status, completed=None):
            session.add(Action(notification_id=notes[nkey], agency_id=agency, description="made up",
                               created_at_utc=created, due_at=due, status=status, completed_at_utc=completed))

        # Police: a1 on time (2.0 days), a2 completed late (17:30 BST against 17:00: naive UTC would say on time,
        # 1.0 day), a3 overdue, a4 agreed 23:30 London on the 28th (outside), a5 00:30 London on the 29th (inside)
        action(police, "n1", D(2024, 4, 29, 15, 59), D(2024, 5, 1, 17), "done", D(2024, 5, 1, 15, 59))
        action(police, "n1", D(2024, 4, 30, 16, 30), D(2024, 5, 1, 17), "done", D(2024, 5, 1, 16, 30))
        action(police, "n2", D(2024, 5, 7, 10), D(2024, 5, 8, 12), "open")
        action(police, "n2", D(2024, 4, 28, 22, 30), D(2024, 5, 1, 12), "done", D(2024, 4, 29, 9))
        action(police, "n2", D(2024, 4, 28, 23, 30), D(2024, 5, 1, 12), "not_done", D(2024, 5, 2, 9))
        # CSC: a6 in progress, not yet due; a7 not possible; a8 completed exactly at the due time (on time, 2.0
        # days); a9 agreed 00:30 London on the 13th (outside)
        action(csc, "n2", D(2024, 5, 7, 11), D(2024, 5, 30, 17), "in_progress")
        action(csc, "n2", D(2024, 5, 7, 11), D(2024, 5, 10, 17), "not_possible", D(2024, 5, 9, 9))
        action(csc, "n6", D(2024, 5, 7, 16), D(2024, 5, 9, 17), "done", D(2024, 5, 9, 16))
        action(csc, "n6", D(2024, 5, 12, 23, 30), D(2024, 5, 20, 17), "open")

        # Encompass: e1 notified before its 08:30 deadline (07:00 UTC = 08:00 BST) and acknowledged, 8.0 hours after
        # the incident (00:00 BST = 23:00 UTC); e2 notified 07:45 UTC = 08:45 BST after an 08:30 deadline: late,
        # 58.75 hours; e3 school to resolve; e0 outside the range
        def alert(nkey, incident, due, status, notified=None, acked=None, resolution="resolved"):
            session.add(EncompassAlert(notification_id=notes[nkey], incident_at=incident, due_at=due, status=status,
                                       notified_at_utc=notified, acknowledged_at_utc=acked, resolution=resolution,
                                       school_urn=None if resolution == "to_resolve" else "100001"))

        alert("n1", D(2024, 4, 29, 0, 0), D(2024, 4, 29, 8, 30), "acknowledged", D(2024, 4, 29, 7), D(2024, 4, 29, 8))
        alert("n2", D(2024, 5, 4, 22), D(2024, 5, 7, 8, 30), "notified", D(2024, 5, 7, 7, 45))
        alert("n3", D(2024, 5, 6, 9, 30), None, "queued", resolution="to_resolve")
        alert("n0", D(2024, 1, 10, 10), D(2024, 1, 11, 8, 30), "notified", D(2024, 1, 11, 8))
        session.commit()
    return {"notes": notes, "agencies": agencies}


def _user(session, role, name, **kw):
    u = create_user(session, None, username=name, display_name=name.title(), role=role, password=PASSWORD, **kw)
    session.commit()
    return u


@pytest.fixture
def data(session):
    built = build(session)
    built["coordinator"] = _user(session, UserRole.coordinator, "casey")
    built["manager"] = _user(session, UserRole.manager, "morgan")
    return built


def _fig(session, user, bucket="month", **kw):
    return dashboard(session, user, START, END, bucket, now=NOW, **kw)


def test_notifications_daily_average_peak_and_buckets(session, data):
    f = _fig(session, data["manager"])
    nt = f["notifications"]
    assert (nt["total"], nt["crime"], nt["non_crime"], nt["crime_pct"]) == (7, 3, 4, 42.9)
    assert nt["daily_average"] == 0.5  # 7 over 14 days, the weekend and the bank holiday included
    assert (nt["peak_day"], nt["peak_day_count"]) == ("2024-05-06", 2)  # the bank holiday
    assert nt["days_with_none"] == 14 - 6
    assert [(b["bucket"], b["crime"], b["non_crime"], b["total"]) for b in nt["by_bucket"]] == [
        ("2024-04-01", 1, 0, 1), ("2024-05-01", 2, 4, 6)]
    assert {d["day"]: d["total"] for d in nt["by_day"]} == {
        "2024-04-29": 1, "2024-05-04": 1, "2024-05-05": 1, "2024-05-06": 2, "2024-05-08": 1, "2024-05-12": 1}
    w = _fig(session, data["manager"], "week")["notifications"]
    assert [(b["bucket"], b["crime"], b["non_crime"]) for b in w["by_bucket"]] == [
        ("2024-04-29", 2, 1), ("2024-05-06", 1, 3)]  # ISO weeks: the Sunday belongs to the week before


def test_range_boundaries(session, data):
    one_day = dashboard(session, data["manager"], dt.date(2024, 4, 29), dt.date(2024, 4, 29), now=NOW)
    assert one_day["notifications"]["total"] == 1  # 00:00 included, 28/04 23:59 not
    last = dashboard(session, data["manager"], dt.date(2024, 5, 12), dt.date(2024, 5, 12), now=NOW)
    assert last["notifications"]["total"] == 1  # 23:59 included, 13/05 00:00 not
    assert last["notifications"]["daily_average"] == 1.0
    with pytest.raises(ValueError):
        dashboard(session, data["manager"], END, START, now=NOW)


def test_risk_children_repeats(session, data):
    f = _fig(session, data["coordinator"])
    risk = {r["risk"]: (r["crime"], r["non_crime"], r["total"], r["pct"]) for r in f["risk"]["rows"]}
    assert risk == {"high": (2, 0, 2, 28.6), "medium": (0, 2, 2, 28.6), "standard": (1, 1, 2, 28.6),
                    "not_assessed": (0, 1, 1, 14.3)}
    ch = f["children"]
    assert (ch["with_children"], ch["children"], ch["with_under5"]) == (3, 4, 2)  # born 06/05/2019: exactly 5
    assert (ch["with_children_pct"], ch["with_under5_pct"]) == (42.9, 28.6)
    rp = f["repeats"]
    assert (rp["with_victim"], rp["repeat"], rp["repeat_pct"]) == (6, 3, 50.0)  # n1, n2, n4 (n6's is > 365 days)
    # n2 is V1's 3rd; n2 follows V1's MARAC referral on 29/04 (n1's case), n4 V3's on 04/03
    assert (rp["escalation"], rp["marac_repeat"]) == (1, 2)
    assert [(b["bucket"], b["repeat"]) for b in rp["by_bucket"]] == [("2024-04-01", 1), ("2024-05-01", 2)]


def test_force_and_district(session, data):
    f = _fig(session, data["manager"])
    assert f["areas"]["by_force"] == [{"force": "Test Police", "notifications": 6}, {"force": "=cmd", "notifications": 1}]
    assert f["areas"]["by_district"][:1] == [{"district": "NG5", "notifications": 4}]
    assert {d["district"] for d in f["areas"]["by_district"]} == {"NG5", "S1", "NG7"}
    assert f["areas"]["no_postcode"] == 1
    ng5 = _fig(session, data["manager"], district="ng5")
    assert ng5["notifications"]["total"] == 4 and ng5["range"]["district"] == "NG5"
    assert ng5["encompass"]["alerts"] == 2  # n1 and n2's alerts
    hostile = _fig(session, data["manager"], force="=cmd")
    assert hostile["notifications"]["total"] == 1 and hostile["repeats"]["marac_repeat"] == 1
    assert hostile["actions"]["total"]["agreed"] == 0 and hostile["meetings"]["cases"] == 0


def test_meeting_figures_and_attendance(session, data):
    mt = _fig(session, data["manager"])["meetings"]
    assert (mt["meetings"], mt["cases"], mt["cases_per_meeting"]) == (2, 4, 2.0)  # the draft M5 was never held
    assert mt["median_minutes_per_case"] == 7.5  # 120, 300, 600, 900 s -> 450 s
    assert mt["mean_minutes_per_case"] == 8.0  # 1920 s / 4
    decisions = {d["decision"]: d["cases"] for d in mt["decisions"]}
    assert decisions == {"no_further_action": 1, "information_shared": 0, "early_help": 1, "csc_referral": 1,
                         "strategy_discussion": 1, "marac_referral": 1, "idva_referral": 0,
                         "adult_safeguarding_referral": 0, "clares_law": 0}
    assert (mt["csc_cases"], mt["csc_pct"]) == (2, 50.0)
    att = {a["agency"]: (a["meetings"], a["present"], a["apologies"], a["absent"], a["rate_pct"])
           for a in mt["attendance"]}
    assert att["Police"] == (2, 2, 0, 0, 100.0)
    assert att["Children's Social Care"] == (2, 1, 1, 0, 50.0)  # apologies beats absent at the same meeting
    assert att["Health"] == (2, 0, 0, 2, 0.0)  # absent once, nobody the other time
    assert att["Housing"] == (2, 0, 0, 2, 0.0)
    week = _fig(session, data["manager"], "week")["meetings"]["by_bucket"]
    assert [(b["bucket"], b["meetings"], b["cases"]) for b in week] == [("2024-04-29", 1, 2), ("2024-05-06", 1, 2)]


def test_actions_per_agency(session, data):
    ac = _fig(session, data["manager"])["actions"]
    rows = {r["agency"]: r for r in ac["rows"]}
    pol, csc = rows["Police"], rows["Children's Social Care"]
    assert (pol["agreed"], pol["done"], pol["on_time"], pol["late"], pol["overdue"], pol["not_done"],
            pol["not_possible"], pol["open"], pol["median_days"]) == (4, 2, 1, 1, 1, 1, 0, 1, 1.5)
    assert (csc["agreed"], csc["done"], csc["on_time"], csc["late"], csc["overdue"], csc["not_done"],
            csc["not_possible"], csc["open"], csc["median_days"]) == (3, 1, 1, 0, 0, 0, 1, 1, 2.0)
    t = ac["total"]
    assert (t["agreed"], t["on_time"], t["late"], t["overdue"], t["median_days"], t["on_time_pct"]) == \
        (7, 2, 1, 1, 2.0, 66.7)
    assert rows["Health"]["agreed"] == 0 and rows["Health"]["median_days"] is None


def test_encompass(session, data):
    en = _fig(session, data["manager"])["encompass"]
    assert (en["alerts"], en["notified"], en["on_time"], en["acknowledged"], en["unresolved"]) == (3, 2, 1, 1, 1)
    assert (en["on_time_pct"], en["acknowledged_pct"]) == (33.3, 33.3)
    assert en["median_hours_to_notification"] == 33.4  # median of 8.0 and 58.75
    assert [(b["bucket"], b["alerts"], b["on_time"]) for b in en["by_bucket"]] == [("2024-04-01", 1, 1),
                                                                                 ("2024-05-01", 2, 0)]


def test_forecast_line(session, data, monkeypatch):
    assert _fig(session, data["manager"])["notifications"]["by_bucket"][0]["forecast"] is None
    monkeypatch.setenv("DV_FORECAST_PER_MONTH", "3100")
    f = _fig(session, data["manager"])
    assert f["notifications"]["forecast_per_month"] == 3100
    # April: 2 of 30 days; May: 12 of 31 days
    assert [b["forecast"] for b in f["notifications"]["by_bucket"]] == [206.7, 1200.0]
    w = _fig(session, data["manager"], "week")
    assert [b["forecast"] for b in w["notifications"]["by_bucket"]] == [706.7, 700.0]
    full = dashboard(session, data["manager"], dt.date(2024, 1, 1), dt.date(2024, 12, 31), now=NOW)
    assert {b["forecast"] for b in full["notifications"]["by_bucket"]} == {3100.0}


def test_bst_periods_match_zoneinfo():
    for wall in (D(2024, 3, 31, 1, 59), D(2024, 3, 31, 2, 0), D(2024, 10, 27, 1, 30), D(2024, 10, 27, 2, 0),
                 D(2024, 7, 1, 12), D(2024, 12, 1, 12)):
        in_bst = any(a <= wall < b for a, b in bst_periods([2024]))
        assert (wall - london_to_utc(wall)) == dt.timedelta(hours=1 if in_bst else 0), wall


def test_view_is_audited_once_and_others_are_refused(session, data):
    def events(action):
        return session.execute(select(AuditEvent.username, AuditEvent.outcome, AuditEvent.details)
                               .where(AuditEvent.entity == "dashboard", AuditEvent.action == action)).all()

    _fig(session, data["manager"])
    session.commit()
    assert [(u, o) for u, o, _ in events("view")] == [("morgan", "ok")]
    _fig(session, data["manager"], record_view=False)
    session.commit()
    assert len(events("view")) == 1
    agency = _user(session, UserRole.agency, "ann", agency_id=data["agencies"]["Police"])
    school = _user(session, UserRole.school, "sam", school_urn="100001")
    admin = _user(session, UserRole.admin, "ada")
    for u in (agency, school, admin):
        with pytest.raises(Refused):
            _fig(session, u)
        with pytest.raises(Refused):
            export_dashboard(session, u, {"range": {}})
    refused = session.execute(select(AuditEvent.username, AuditEvent.details)
                              .where(AuditEvent.outcome == "refused")).all()
    assert sorted({u for u, d in refused if "view_dashboard" in (d or "")}) == ["ada", "ann", "sam"]
    assert len(refused) == 6


def test_nothing_record_level(session, data):
    text = json.dumps(_fig(session, data["manager"]), default=str)
    assert "REF-" not in text and "Victim" not in text and "PC One" not in text


def _sheet_values(ws) -> list[list]:
    return [list(r) for r in ws.iter_rows(values_only=True)]


def test_export_sheets_charts_formula_safety_and_suppression(session, data):
    f = _fig(session, data["coordinator"])
    data_open = export_dashboard(session, data["coordinator"], f, suppress=False)
    data_out = export_dashboard(session, data["coordinator"], f, suppress=True)
    session.commit()
    exports = session.execute(select(AuditEvent.details).where(AuditEvent.action == "export",
                                                               AuditEvent.entity == "dashboard")
                              .order_by(AuditEvent.id)).scalars().all()
    assert [json.loads(d)["suppress"] for d in exports] == [False, True]
    book = load_workbook(io.BytesIO(data_open))
    assert book.sheetnames == ["Cover", *tables(f)]
    for name in ("Notifications", "Risk", "Actions", "Encompass", "Attendance"):
        assert book[name]._charts, name
    cover = {r[0]: r[1] for r in _sheet_values(book["Cover"]) if r and r[0]}
    assert cover["From"] == "2024-04-29" and cover["To"] == "2024-05-12"
    assert "Generated (UTC)" in cover
    # a hostile force name stays text
    areas = _sheet_values(book["Areas"])
    assert ["'=cmd", "force", 1] in areas
    assert not any(isinstance(c, str) and c.startswith("=") for row in areas for c in row)
    # the live numbers in the open export; "<5" only in the one for outside the hub
    notif = _sheet_values(book["Notifications"])
    assert notif[1][:4] == ["2024-04-01", 1, 0, 1]
    assert cover["Crime"] == 3
    out = load_workbook(io.BytesIO(data_out))
    notif_out = _sheet_values(out["Notifications"])
    assert notif_out[1][:4] == ["2024-04-01", "<5", 0, "<5"]  # zero stays zero
    assert notif_out[2][:4] == ["2024-05-01", "<5", "<5", 6]
    cover_out = {r[0]: r[1] for r in _sheet_values(out["Cover"]) if r and r[0]}
    assert cover_out["Notifications"] == 7 and cover_out["Crime"] == "<5"
    assert cover_out["% crime"] == "<5 cases"  # a share of a suppressed count is suppressed too
    assert "<5" not in json.dumps(f, default=str)  # the live figures never suppress


def test_suppression_threshold_is_a_setting(session, data, monkeypatch):
    monkeypatch.setenv("DV_SUPPRESS_BELOW", "10")
    f = _fig(session, data["manager"])
    book = load_workbook(io.BytesIO(workbook_bytes(f, suppress=True, settings=get_settings())))
    cover = {r[0]: r[1] for r in _sheet_values(book["Cover"]) if r and r[0]}
    assert cover["Notifications"] == "<10"


def test_report_cli(tmp_path):
    from core.db import get_engine, migrate
    from sqlmodel import Session

    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    migrate(url)
    engine = get_engine(url)
    with Session(engine, expire_on_commit=False) as s:
        build(s)
    engine.dispose()
    out = tmp_path / "report.xlsx"
    env = dict(os.environ, DATABASE_URL=url)
    run = subprocess.run([sys.executable, "-m", "dv", "report", "--from", "2024-04-29", "--to", "2024-05-12",
                          "--xlsx", str(out), "--bucket", "week", "--suppress", "--json"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    payload = json.loads(run.stdout)
    assert (payload["notifications"], payload["meetings"], payload["actions_agreed"], payload["suppressed"]) == \
        (7, 2, 7, True)
    book = load_workbook(out)
    assert book.sheetnames[0] == "Cover" and "Actions" in book.sheetnames
    assert _sheet_values(book["Notifications"])[1][0] == "2024-04-29"
    assert book["Notifications"]._charts
    bad = subprocess.run([sys.executable, "-m", "dv", "report", "--from", "2024-05-12", "--to", "2024-04-29",
                          "--xlsx", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "before" in bad.stderr
    engine = get_engine(url)
    with Session(engine) as s:
        rows = s.execute(select(AuditEvent.action, AuditEvent.username).where(AuditEvent.entity == "dashboard")).all()
    engine.dispose()
    assert sorted(a for a, _ in rows) == ["export", "view"] and all(u.startswith("cli") for _, u in rows)


# ------------------------------------------------------------------------------------------------------------------
# Added with the speed work (issue 7): the cheaper SQL must give the same answers as the plain definitions.


def test_done_by_the_due_time_shortcut_matches_the_conversion(session):
    """``_utc_not_after_wall`` (text shortcuts on SQLite) = ``utc <= _wall_to_utc(wall)`` for every case: summer
    and winter, the 00:xx hour, the clock changes, a microsecond either side of the hour, earlier dates, NULLs."""
    from sqlalchemy import case as case_
    from sqlalchemy import literal as literal_

    from meetings.dashboard import _Sql, _utc_not_after_wall, _wall_to_utc

    agencies = [a for (a,) in session.execute(select(Agency.id)).all()]
    walls = [D(2024, 7, 10, 17), D(2024, 7, 10, 0, 30), D(2024, 7, 10, 1, 0), D(2024, 7, 10, 0, 59, 59, 999999),
             D(2024, 3, 31, 1, 59), D(2024, 3, 31, 2, 0), D(2024, 3, 31, 3, 0), D(2024, 10, 27, 1, 30),
             D(2024, 10, 27, 2, 0), D(2024, 12, 2, 9, 15, 30, 250000), D(2025, 1, 1, 0, 0), None]
    offsets = [None, dt.timedelta(days=-3), dt.timedelta(hours=-25), dt.timedelta(hours=-1, microseconds=-1),
               dt.timedelta(hours=-1), dt.timedelta(minutes=-59, seconds=-59, microseconds=-999999),
               dt.timedelta(minutes=-30), dt.timedelta(0), dt.timedelta(microseconds=1), dt.timedelta(hours=2)]
    with unaudited():
        person = Person(force="Test Police", surname="S", forename="M", match_key="s")
        session.add(person)
        session.flush()
        n = Notification(force="Test Police", police_ref="REF-T", incident_at=D(2024, 7, 1), stream="crime",
                         stream_reason="test", risk="high")
        session.add(n)
        session.flush()
        for wall in walls:
            for off in offsets:
                done = None if off is None or wall is None else wall + off
                if wall is None and off is not None:
                    done = D(2024, 7, 10, 12) + off
                session.add(Action(notification_id=n.id, agency_id=agencies[0], description="t",
                                   created_at_utc=D(2024, 7, 1), due_at=wall, status="done", completed_at_utc=done))
        session.flush()
    A = Action.__table__
    sql = _Sql(session.connection().dialect.name)
    years = range(2023, 2027)

    def as_int(cond):
        return case_((cond, literal_(1)), (~cond, literal_(0)), else_=literal_(None))

    rows = session.execute(select(A.c.due_at, A.c.completed_at_utc,
                                  as_int(_utc_not_after_wall(sql, A.c.completed_at_utc, A.c.due_at, years)),
                                  as_int(A.c.completed_at_utc <= _wall_to_utc(sql, A.c.due_at, years)))).all()
    assert len(rows) == len(walls) * len(offsets)
    assert [r for r in rows if r[2] != r[3]] == []
    # and both agree with zoneinfo where neither is NULL (to the millisecond: SQLite's date functions round
    # to it, so a wall-clock time a microsecond before the hour moves by an hour to the hour, as it always did)
    for wall, done, fast, _ in rows:
        if wall is not None and done is not None and wall.microsecond % 1000 == 0 and done.microsecond % 1000 == 0:
            assert fast == int(done <= london_to_utc(wall)), (wall, done)


def test_same_time_incidents_and_victimless_notifications(session):
    """Earlier means strictly earlier (two incidents of one victim at the same minute are not each other's
    repeat), and notifications without a victim are neither repeats nor a victim's earlier incidents."""
    manager = _user(session, UserRole.manager, "mona")
    with unaudited():
        v = Person(force="Test Police", surname="V", forename="M", match_key="v")
        session.add(v)
        session.flush()
        k = 0
        for at, victim in ((D(2024, 5, 1, 10), v.id), (D(2024, 5, 1, 10), v.id), (D(2024, 5, 2, 10), v.id),
                           (D(2024, 5, 1, 9), None), (D(2024, 5, 1, 10), None), (D(2024, 5, 3, 10), None)):
            k += 1
            session.add(Notification(force="Test Police", police_ref=f"REF-S{k}", incident_at=at, stream="crime",
                                     stream_reason="test", risk="high", victim_id=victim))
        session.commit()
    rp = dashboard(session, manager, dt.date(2024, 5, 1), dt.date(2024, 5, 31), now=NOW)["repeats"]
    # the two at 10:00 on 1 May have no earlier incident; 2 May has both: a repeat and the 3rd incident
    assert (rp["notifications"], rp["with_victim"], rp["repeat"], rp["escalation"]) == (6, 3, 1, 1)


def test_medians_over_many_values_match_sorting(session):
    """The binned medians (SQLite) and percentile_cont (PostgreSQL) equal the median of the sorted values, per
    agency (odd and even counts) and over all agencies; and for minutes per case and hours to notification."""
    import random
    import statistics

    manager = _user(session, UserRole.manager, "mina")
    agencies = [a for (a,) in session.execute(select(Agency.id).order_by(Agency.name)).all()][:3]
    rng = random.Random(7)
    hours = {agencies[0]: [rng.randint(0, 24 * 40) for _ in range(101)],
             agencies[1]: [rng.choice([5, 5, 5, 30, 31, 200]) for _ in range(60)],
             agencies[2]: [rng.randint(0, 3) for _ in range(2)]}
    seconds = [rng.randint(0, 1800) for _ in range(37)] + [600] * 5
    alert_hours = [rng.randint(0, 90) + 0.25 for _ in range(50)]
    with unaudited():
        n = Notification(force="Test Police", police_ref="REF-M", incident_at=D(2024, 6, 3, 8), stream="crime",
                         stream_reason="test", risk="high")
        session.add(n)
        session.flush()
        created = D(2024, 6, 3, 9)
        for agency, hs in hours.items():
            for h in hs:
                session.add(Action(notification_id=n.id, agency_id=agency, description="t", created_at_utc=created,
                                   due_at=D(2024, 9, 1, 17), status="done",
                                   completed_at_utc=created + dt.timedelta(hours=h)))
        m = Meeting(meeting_date=dt.date(2024, 6, 4), window_start=D(2024, 6, 3, 9), window_end=D(2024, 6, 4, 9),
                    status="closed", opened_at_utc=D(2024, 6, 4, 9))
        session.add(m)
        session.flush()
        for i, s in enumerate(seconds):
            note = Notification(force="Test Police", police_ref=f"REF-C{i}", incident_at=D(2024, 6, 2, 8),
                                stream="crime", stream_reason="test", risk="high")
            session.add(note)
            session.flush()
            item = AgendaItem(meeting_id=m.id, notification_id=note.id, section="other")
            session.add(item)
            session.flush()
            session.add(CaseRecord(meeting_id=m.id, agenda_item_id=item.id, notification_id=note.id,
                                   seconds_spent=s, discussed=True))
        incident = D(2024, 6, 3, 8)  # BST: 07:00 UTC
        for h in alert_hours:
            session.add(EncompassAlert(notification_id=n.id, incident_at=incident, due_at=D(2024, 6, 4, 8, 30),
                                       status="notified", resolution="resolved", school_urn="100001",
                                       notified_at_utc=incident - dt.timedelta(hours=1) + dt.timedelta(hours=h)))
        session.commit()
    f = dashboard(session, manager, dt.date(2024, 6, 1), dt.date(2024, 6, 30), now=NOW)
    got = {r["agency"]: r["median_days"] for r in f["actions"]["rows"]}
    names = dict(session.execute(select(Agency.id, Agency.name)).all())
    for agency, hs in hours.items():
        assert got[names[agency]] == round(statistics.median(hs) / 24, 1), names[agency]
    every = [h for hs in hours.values() for h in hs]
    assert f["actions"]["total"]["median_days"] == round(statistics.median(every) / 24, 1)
    assert f["meetings"]["median_minutes_per_case"] == round(statistics.median(seconds) / 60, 1)
    assert f["meetings"]["mean_minutes_per_case"] == round(statistics.mean(seconds) / 60, 1)
    assert f["encompass"]["median_hours_to_notification"] == round(statistics.median(alert_hours), 1)


def test_histogram_positions():
    """The middle rows of a histogram, by bin and rank within it, for odd and even counts and a single bin."""
    import random
    import statistics

    from meetings.dashboard import _histogram_median, _positions

    assert _positions({}) == [] and _histogram_median({}) is None
    assert _positions({3: 1}) == [(3, 1)]
    assert _positions({1: 2, 2: 2}) == [(1, 2), (2, 1)]
    assert _positions({1: 1, 2: 2, 9: 1}) == [(2, 1), (2, 2)]
    rng = random.Random(3)
    for _ in range(200):
        values = [rng.randint(-5, 40) for _ in range(rng.randint(1, 60))]
        hist: dict = {}
        for v in values:
            hist[v] = hist.get(v, 0) + 1
        assert _histogram_median(hist) == statistics.median(values)


def test_page_split_check_and_audit_then_read_only_figures(engine, session, data):
    """The page checks and audits in a short write (``record_view``) and computes the figures in a read-only
    session (no write lock on SQLite): the audit row is the one ``dashboard`` writes, the figures are the same,
    and a refusal is still refused and audited."""
    from core.db import read_scope
    from meetings.dashboard import record_view

    def views():
        return session.execute(select(AuditEvent.username, AuditEvent.details)
                               .where(AuditEvent.entity == "dashboard", AuditEvent.action == "view")
                               .order_by(AuditEvent.id)).all()

    record_view(session, data["manager"], START, END, "week", " ng5 ", force=" Test Police ")
    session.commit()
    _fig(session, data["manager"], "week", district=" ng5 ", force=" Test Police ")
    session.commit()
    (u1, d1), (u2, d2) = views()
    assert u1 == u2 == "morgan" and d1 == d2
    record_view(session, data["manager"], START, END, audited=False)
    session.commit()
    assert len(views()) == 2
    with read_scope(engine) as ro:
        figures = dashboard(ro, data["manager"], START, END, now=NOW, record_view=False)
    expected = _fig(session, data["manager"], record_view=False)
    for f in (figures, expected):
        f["range"].pop("generated_at_utc")
    assert json.dumps(figures, default=str, sort_keys=True) == json.dumps(expected, default=str, sort_keys=True)
    agency = _user(session, UserRole.agency, "ari", agency_id=data["agencies"]["Police"])
    with pytest.raises(Refused):
        record_view(session, agency, START, END)
    assert session.execute(select(AuditEvent.username).where(AuditEvent.outcome == "refused")).scalars().all() == ["ari"]
