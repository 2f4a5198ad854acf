"""The daily meeting's agenda (meetings/agenda.py): inclusion rules, the lookback window (weekend, bank holiday,
clock change), the order and its ties, late additions after publishing, adding and removing cases, exports and the
CLI. Data comes from synthetic records, edited to force each case, imported through ``dv.importer``; runs on
SQLite and PostgreSQL."""
from __future__ import annotations

import copy
import datetime as dt
import functools
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

import meetings.agenda as agenda
from core.auth import create_user
from core.models import AuditEvent, UserRole
from core.scope import Refused
from dv.importer import import_file
from dv.models import Notification
from dv.profiles import load_profile
from meetings.actions import create_action
from meetings.agenda import (AgendaRules, Conflict, NotAMeetingDay, RulesError, add_case, agenda_text, agenda_view,
                             agenda_window, agenda_workbook, build_agenda, load_rules, move_item, publish_agenda,
                             remove_case, restore_case)
from tests.factories import extract, records

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-staple-7"
MON = dt.date(2026, 11, 23)  # Monday: covers Fri 20/11 09:00 to Mon 23/11 09:00
IMPORT_NOW = dt.datetime(2026, 11, 23, 8, 59)  # the last import before Monday's cut-off (wall-clock)
CSC = 2  # agency seeded by migration 0002


def at(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%d/%m/%Y %H:%M")


@functools.cache
def _base() -> tuple[dict, ...]:
    return tuple(records(30, seed=7, repeat_share=0.0))


def victim(n: int) -> dict:
    """A victim nobody else shares (their own date of birth), so only the records meant to share one do."""
    return {"surname": "Okafor", "forename": "Grace", "dob": dt.date(1980, 1, 1) + dt.timedelta(days=n),
            "gender": "Female", "person_id": None, "address": "1 Mill Lane, Northtown, NX1 1AB"}


def child(dob: dt.date, name: str = "Ava") -> dict:
    return {"surname": "Okafor", "forename": name, "dob": dob, "gender": "Female", "present": True,
            "school": None}


def rec(n: int, when: dt.datetime, *, crime: bool = False, risk: str = "standard", score: int | None = 5,
        children: list[dict] | None = None, pregnant: bool = False, person: dict | None = None) -> dict:
    """A notification with exactly the features a rule looks at: non-crime standard risk, no children, no
    pregnancy and a victim of its own unless told otherwise. Police reference NP/26/9nnnnn."""
    r = copy.deepcopy(_base()[n % len(_base())])
    r.update(police_ref=f"NP/26/9{n:05d}", incident_at=when, reported_at=when, risk=risk, dash_score=score,
             flag_pregnancy=pregnant, children=children or [], victim=copy.deepcopy(person or victim(n)))
    if crime:
        r.update(classification="crime", crime_ref=f"CR/26/{n:05d}", ho_code="105A",
                 offence="Common assault and battery")
    else:
        r.update(classification="non_crime", crime_ref=None, ho_code=None,
                 offence="Domestic incident - verbal argument")
    return r


def ref(n: int) -> str:
    return f"NP/26/9{n:05d}"


def load(session, tmp_path, recs, name: str, now: dt.datetime = IMPORT_NOW):
    path = extract(tmp_path, "niche_wide", recs, name=f"{name}.xlsx")
    result = import_file(session, path, load_profile("niche_wide"), now=now)
    assert result.rejected == 0, result.errors
    session.commit()
    return result


@pytest.fixture
def coord(session):
    user = create_user(session, None, username="casey", display_name="Casey", role=UserRole.coordinator,
                       password=PASSWORD)
    session.commit()
    return user


def by_ref(view) -> dict[str, dict]:
    return {i["police_ref"]: i for i in view["items"] + view["information_only"]}


def build_and_view(session, user, day, **kw):
    build_agenda(session, user, day, now=dt.datetime.combine(day, dt.time(8, 45)), **kw)
    session.commit()
    view = agenda_view(session, user, day, **({"rules": kw["rules"]} if "rules" in kw else {}))
    session.commit()
    return view


# ------------------------------------------------------------------------------------------------- rules, window


def test_window_after_a_weekend_a_bank_holiday_and_christmas():
    rules = AgendaRules()
    assert agenda_window(MON, rules) == (at("20/11/2026 09:00"), at("23/11/2026 09:00"))
    assert agenda_window(dt.date(2026, 11, 25), rules) == (at("24/11/2026 09:00"), at("25/11/2026 09:00"))
    # Spring bank holiday Monday 25/05/2026: Tuesday's agenda covers from Friday
    assert agenda_window(dt.date(2026, 5, 26), rules) == (at("22/05/2026 09:00"), at("26/05/2026 09:00"))
    # Christmas Day (Fri), Boxing Day observed (Mon 28/12): Tuesday 29/12 covers from Thursday 24/12
    assert agenda_window(dt.date(2026, 12, 29), rules) == (at("24/12/2026 09:00"), at("29/12/2026 09:00"))
    # clocks go back on Sunday 25/10/2026: 72 wall-clock hours (73 real ones), no shift
    start, end = agenda_window(dt.date(2026, 10, 26), rules)
    assert (start, end) == (at("23/10/2026 09:00"), at("26/10/2026 09:00"))
    assert agenda_window(MON, AgendaRules(cutoff=dt.time(10, 30)))[0] == at("20/11/2026 10:30")
    for day in (dt.date(2026, 11, 22), dt.date(2026, 5, 25)):
        with pytest.raises(NotAMeetingDay, match="not a meeting day"):
            agenda_window(day, rules)


def test_rules_file_defaults_override_and_errors_name_the_key(tmp_path, monkeypatch):
    shipped = load_rules()
    assert shipped.cutoff == dt.time(9) and shipped.non_crime_risks == ("high", "medium")
    assert shipped.sections == agenda.ORDERED_SECTIONS and shipped.escalation_incidents == 3
    custom = tmp_path / "rules.toml"
    custom.write_text('cutoff = "08:30"\n[include]\nescalation_incidents = 4\n'
                      '[order]\nsections = ["high_risk", "high_risk_children", "repeat_escalating", '
                      '"medium_children", "other"]\n', encoding="utf-8")
    monkeypatch.setenv("DV_AGENDA_RULES", str(custom))
    rules = load_rules()
    assert (rules.cutoff, rules.escalation_incidents, rules.sections[0]) == (dt.time(8, 30), 4, "high_risk")
    assert rules.pregnancy is True and rules.title("high_risk") == "Other high risk"
    for text, key in [('[include]\nnon_crime_risk = ["high"]\n', "include.non_crime_risk"),
                      ('[include]\nnon_crime_risks = ["severe"]\n', "include.non_crime_risks"),
                      ('[include]\npregnancy = "yes"\n', "include.pregnancy"),
                      ('[marac]\nvisible_high_score = 0\n', "marac.visible_high_score"),
                      ('cutoff = "9am"\n', "cutoff"),
                      ('[order]\nsections = ["other", "high_risk"]\n', "order.sections"),
                      ('[odrer]\n', "[odrer]")]:
        custom.write_text(text, encoding="utf-8")
        with pytest.raises(RulesError, match=key.replace("[", r"\[").replace("]", r"\]")):
            load_rules()
    with pytest.raises(RulesError, match="could not be read"):
        load_rules(tmp_path / "missing.toml")


# ------------------------------------------------------------------------------------------------- inclusion


def test_each_inclusion_reason_and_information_only(session, tmp_path, coord):
    fri, sat, sun = at("20/11/2026 10:00"), at("21/11/2026 22:00"), at("22/11/2026 03:15")
    same, twice = victim(900), victim(901)
    recs = [
        rec(1, fri, crime=True),                                            # crime, standard risk
        rec(2, sat, risk="high", score=16, children=[child(dt.date(2019, 5, 1))]),  # non-crime high, children
        rec(3, sat, risk="medium", score=11),                               # non-crime medium
        rec(4, sun, risk="medium", score=12, children=[child(dt.date(2016, 2, 2))]),
        rec(5, fri, children=[child(dt.date(2026, 2, 3), "Baby")]),          # child under 1
        rec(6, sat, children=[child(dt.date(2025, 11, 1), "Toddler")]),      # just over 1: not a reason
        rec(7, sun, pregnant=True),                                         # pregnancy
        rec(8, sun, risk="standard", score=15),                             # graded standard, score 15
        rec(9, sat),                                                        # nothing: information only
        # escalation: two earlier incidents within 12 months, the third in the window
        rec(10, at("10/12/2025 20:00"), person=same), rec(11, at("15/10/2026 20:00"), person=same),
        rec(12, sat, person=same),
        # only two in 12 months (a third is 12 months and a day before): not escalation
        rec(13, at("20/11/2025 21:00"), person=twice), rec(14, at("01/10/2026 20:00"), person=twice),
        rec(15, sat, person=twice),
    ]
    load(session, tmp_path, recs, "inclusion")
    view = build_and_view(session, coord, MON)
    got = by_ref(view)
    assert set(got) == {ref(n) for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 15)}  # the earlier ones are not in the window

    assert got[ref(1)]["reasons"] == ["crime: crime reference CR/26/00001"]
    assert got[ref(1)]["section"] == "other" and got[ref(1)]["marac_flags"] == []
    assert got[ref(2)]["reasons"] == ["non-crime, high risk"]
    assert got[ref(2)]["section"] == "high_risk_children" and got[ref(2)]["marac_flags"] == ["visible high risk"]
    assert got[ref(2)]["children"] == 1
    assert (got[ref(3)]["reasons"], got[ref(3)]["section"]) == (["non-crime, medium risk"], "other")
    assert (got[ref(4)]["reasons"], got[ref(4)]["section"]) == (["non-crime, medium risk"], "medium_children")
    assert got[ref(5)]["reasons"] == ["child under 1 (born 03/02/2026)"]
    assert got[ref(6)]["section"] == "information_only" and got[ref(6)]["reasons"] == []
    assert got[ref(7)]["reasons"] == ["pregnancy recorded"]
    assert got[ref(8)]["reasons"] == ["non-crime, DASH score 15 (visible high risk)"]
    assert got[ref(8)]["section"] == "high_risk" and got[ref(8)]["marac_flags"] == ["visible high risk"]
    assert got[ref(9)]["section"] == "information_only" and got[ref(9)]["reasons"] == []

    esc = got[ref(12)]
    assert esc["reasons"] == ["victim's 3rd incident in 12 months"]
    assert esc["marac_flags"] == ["potential escalation (3 incidents in 12 months)"]
    assert (esc["section"], esc["prior_incidents_12m"]) == ("repeat_escalating", 2)
    not_esc = got[ref(15)]
    assert (not_esc["section"], not_esc["reasons"], not_esc["prior_incidents_12m"]) == ("information_only", [], 1)

    info = [i["police_ref"] for i in view["information_only"]]
    assert sorted(info) == sorted([ref(6), ref(9), ref(15)])  # listed beneath the agenda, never dropped
    assert all(i["position"] is not None for i in view["information_only"])
    # the escalation threshold is a setting: at 2 the second incident counts
    strict = AgendaRules(escalation_incidents=2, marac_escalation_incidents=2)
    build_agenda(session, coord, MON, rules=strict)
    session.commit()
    assert by_ref(agenda_view(session, coord, MON, rules=strict))[ref(15)]["section"] == "repeat_escalating"


def test_marac_repeat_uses_the_referrals_seam(session, tmp_path, coord, monkeypatch):
    assert agenda.marac_referrals(session, [1, 2]) == {}  # filled by the meeting record (issue 5)
    sat = at("21/11/2026 22:00")
    load(session, tmp_path, [rec(21, sat), rec(22, sat), rec(23, sat)], "marac")
    victims = dict(session.connection().execute(select(Notification.police_ref, Notification.victim_id)).all())
    referred = {victims[ref(21)]: [dt.date(2026, 3, 1), dt.date(2025, 1, 5)],  # the last within 12 months
                victims[ref(22)]: [dt.date(2025, 10, 1)],  # more than 12 months before the incident
                victims[ref(23)]: [dt.date(2026, 12, 1)]}  # after the incident: not a repeat of it
    asked = []

    def fake(session_, person_ids):
        asked.append(sorted(person_ids))
        return {p: d for p, d in referred.items() if p in set(person_ids)}

    monkeypatch.setattr(agenda, "marac_referrals", fake)
    got = by_ref(build_and_view(session, coord, MON))
    assert asked and set(referred) <= set(asked[0])  # one call for all the victims
    assert got[ref(21)]["reasons"] == ["victim referred to MARAC on 01/03/2026"]
    assert got[ref(21)]["marac_flags"] == ["repeat (MARAC referral on 01/03/2026)"]
    assert got[ref(21)]["section"] == "repeat_escalating"
    assert got[ref(22)]["section"] == got[ref(23)]["section"] == "information_only"


def test_confirmed_person_match_counts_towards_escalation(session, tmp_path, coord):
    from dv.models import MatchStatus, PersonMatch
    from tests.factories import unaudited

    a, b = victim(950), victim(951)  # the same woman recorded twice (different dates of birth)
    load(session, tmp_path, [rec(31, at("01/09/2026 20:00"), person=a), rec(32, at("01/10/2026 20:00"), person=b),
                             rec(33, at("21/11/2026 20:00"), person=a)], "matched")
    assert by_ref(build_and_view(session, coord, MON))[ref(33)]["section"] == "information_only"
    ids = dict(session.connection().execute(select(Notification.police_ref, Notification.victim_id)).all())
    pa, pb = sorted((ids[ref(31)], ids[ref(32)]))
    with unaudited():
        session.add(PersonMatch(person_a_id=pa, person_b_id=pb, status=MatchStatus.confirmed))
        session.commit()
    item = by_ref(build_and_view(session, coord, MON))[ref(33)]
    assert (item["section"], item["prior_incidents_12m"]) == ("repeat_escalating", 2)


# ------------------------------------------------------------------------------------------------- window in use


def test_lookback_after_a_weekend(session, tmp_path, coord):
    times = {41: "20/11/2026 08:59", 42: "20/11/2026 09:00", 43: "22/11/2026 12:00", 44: "23/11/2026 08:59",
             45: "23/11/2026 09:00"}
    load(session, tmp_path, [rec(n, at(t), crime=True) for n, t in times.items()], "weekend",
         now=at("23/11/2026 09:30"))
    view = build_and_view(session, coord, MON)
    assert (view["window_start"], view["window_end"]) == (at("20/11/2026 09:00"), at("23/11/2026 09:00"))
    assert set(by_ref(view)) == {ref(42), ref(43), ref(44)}


def test_lookback_after_a_bank_holiday(session, tmp_path, coord):
    times = {51: "22/05/2026 08:00", 52: "22/05/2026 10:00", 53: "25/05/2026 14:00", 54: "26/05/2026 08:30"}
    load(session, tmp_path, [rec(n, at(t), crime=True) for n, t in times.items()], "holiday",
         now=at("26/05/2026 08:45"))
    day = dt.date(2026, 5, 26)
    view = build_and_view(session, coord, day)
    assert view["window_start"] == at("22/05/2026 09:00")
    assert set(by_ref(view)) == {ref(52), ref(53), ref(54)}
    with pytest.raises(NotAMeetingDay):
        build_agenda(session, coord, dt.date(2026, 5, 25))
    assert agenda_view(session, coord, dt.date(2026, 5, 25))["meeting_day"] is False


def test_clock_change_weekend_counts_the_repeated_hour_once(session, tmp_path, coord):
    times = {61: "23/10/2026 08:59", 62: "23/10/2026 09:00", 63: "25/10/2026 01:30", 64: "26/10/2026 08:59"}
    load(session, tmp_path, [rec(n, at(t), crime=True) for n, t in times.items()], "clocks",
         now=at("26/10/2026 08:59"))
    friday = build_and_view(session, coord, dt.date(2026, 10, 23))
    monday = build_and_view(session, coord, dt.date(2026, 10, 26))
    assert set(by_ref(friday)) == {ref(61)}
    assert (monday["window_start"], monday["window_end"]) == (at("23/10/2026 09:00"), at("26/10/2026 09:00"))
    assert [i["police_ref"] for i in monday["items"]].count(ref(63)) == 1
    assert set(by_ref(monday)) == {ref(62), ref(63), ref(64)}
    assert by_ref(monday)[ref(63)]["incident_at"] == at("25/10/2026 01:30")


def test_a_case_imported_after_the_previous_agenda_is_carried_over(session, tmp_path, coord):
    """An incident at 07:30 on Friday reaches DA Daily in Monday's extract: Friday's agenda was already built, and
    Monday's window starts at Friday 09:00. It goes on Monday's agenda rather than on none."""
    load(session, tmp_path, [rec(71, at("20/11/2026 06:00"), crime=True)], "friday", now=at("20/11/2026 06:30"))
    build_and_view(session, coord, dt.date(2026, 11, 20))
    load(session, tmp_path, [rec(72, at("20/11/2026 07:30"), crime=True), rec(73, at("21/11/2026 12:00"))], "monday")
    got = by_ref(build_and_view(session, coord, MON))
    assert set(got) == {ref(72), ref(73)}
    assert got[ref(72)]["reasons"][0].startswith("crime:") and "carried over" in got[ref(72)]["reasons"][-1]


# ------------------------------------------------------------------------------------------------- order


def test_sections_in_order_and_ties_by_score_time_and_reference(session, tmp_path, coord):
    sat, sun = at("21/11/2026 10:00"), at("22/11/2026 10:00")
    kid = [child(dt.date(2018, 1, 1))]
    recs = [
        rec(81, sun, crime=True),                                  # other
        rec(82, sat, risk="medium", score=11, children=kid),       # medium with children
        rec(83, sun, risk="high", score=None),                     # high, no score: last among high
        rec(84, sun, risk="high", score=16),                       # high 16, later
        rec(85, sat, risk="high", score=16),                       # high 16, earlier
        rec(86, sat, risk="high", score=20),                       # high 20
        rec(87, sat, risk="high", score=16),                       # high 16, same time as 85: by reference
        rec(88, sat, risk="high", score=18, children=kid),         # high with children
        rec(89, at("20/11/2026 12:00"), risk="medium", score=13),  # other, medium no children
    ]
    load(session, tmp_path, recs, "order")
    view = build_and_view(session, coord, MON)
    order = [(i["section"], i["police_ref"]) for i in view["items"]]
    assert order == [("high_risk_children", ref(88)), ("high_risk", ref(86)), ("high_risk", ref(85)),
                     ("high_risk", ref(87)), ("high_risk", ref(84)), ("high_risk", ref(83)),
                     ("medium_children", ref(82)), ("other", ref(89)), ("other", ref(81))]
    assert [i["position"] for i in view["items"]] == list(range(1, 10))
    assert [s["key"] for s in view["sections"]][:5] == list(agenda.ORDERED_SECTIONS)
    assert view["sections"][0]["title"] == "New high risk with children"
    # reordering the sections in the rules also changes which section a case goes in first
    rules = AgendaRules(sections=("high_risk", "high_risk_children", "repeat_escalating", "medium_children", "other"))
    view = build_and_view(session, coord, MON, rules=rules)
    assert by_ref(view)[ref(88)]["section"] == "high_risk"


# ------------------------------------------------------------------------------------------------- publish, edit


def test_draft_keeps_manual_order_published_agenda_only_gains_late_additions(session, tmp_path, coord):
    sat = at("21/11/2026 10:00")
    first = [rec(91, sat, crime=True, score=9), rec(92, sat, crime=True, score=8), rec(93, sat, crime=True, score=7)]
    load(session, tmp_path, first, "first", now=at("23/11/2026 06:30"))
    view = build_and_view(session, coord, MON)
    assert [i["police_ref"] for i in view["items"]] == [ref(91), ref(92), ref(93)]
    item93 = by_ref(view)[ref(93)]["item_id"]
    assert move_item(session, coord, item93, "up", expected_version=view["version"]) is True
    session.commit()
    assert move_item(session, coord, item93, new_position=1) is True
    session.commit()
    assert move_item(session, coord, item93, -1) is False  # already first
    load(session, tmp_path, [rec(94, sat, crime=True, score=10)], "second", now=at("23/11/2026 07:00"))
    view = build_and_view(session, coord, MON)  # a draft rebuild: the new case goes where the rules put it
    assert [i["police_ref"] for i in view["items"]] == [ref(94), ref(93), ref(91), ref(92)]

    with pytest.raises(Conflict):
        publish_agenda(session, coord, view["meeting_id"], view["version"] - 1)
    publish_agenda(session, coord, view["meeting_id"], view["version"], now=at("23/11/2026 08:00"))
    session.commit()
    published = agenda_view(session, coord, MON)
    assert published["status"] == "published"
    before = [(i["item_id"], i["section"], i["position"]) for i in published["items"]]

    # a later import: two new cases in the window, and one already on it upgraded to high risk
    changed = copy.deepcopy(first[2])
    changed.update(risk="high", dash_score=22)
    load(session, tmp_path, [changed, rec(95, at("23/11/2026 08:00"), risk="high", score=19),
                             rec(96, at("23/11/2026 08:10"))], "late", now=at("23/11/2026 08:30"))
    view = build_and_view(session, coord, MON)
    assert [(i["item_id"], i["section"], i["position"]) for i in view["items"][:4]] == before
    late = view["late_additions"]
    assert [(i["police_ref"], i["section"], i["late_addition"], i["position"]) for i in late] == [
        (ref(95), "late_additions", True, 5)]
    assert view["sections"][-1]["key"] == "late_additions" and view["sections"][-1]["items"] == late
    info = by_ref(view)[ref(96)]
    assert (info["section"], info["late_addition"]) == ("information_only", True)
    again = build_and_view(session, coord, MON)  # nothing new: nothing changes, not even the version
    assert again["version"] == view["version"]


def test_add_and_remove_cases_with_reasons(session, tmp_path, coord):
    load(session, tmp_path, [rec(101, at("21/11/2026 10:00"), crime=True), rec(102, at("21/11/2026 11:00")),
                             rec(103, at("02/11/2026 10:00"))], "edits")
    view = build_and_view(session, coord, MON)
    mid = view["meeting_id"]
    with pytest.raises(ValueError, match="Say why"):
        add_case(session, coord, mid, ref(103), "  ")
    with pytest.raises(ValueError, match="No notification"):
        add_case(session, coord, mid, "NP/00/000000", "check")
    with pytest.raises(ValueError, match="already on this agenda"):
        add_case(session, coord, mid, ref(101), "again")
    with pytest.raises(Conflict):
        add_case(session, coord, mid, ref(103), "stale", expected_version=view["version"] - 1)
    added = add_case(session, coord, mid, ref(103), "Earlier incident, new information from school",
                     expected_version=view["version"])
    add_case(session, coord, mid, ref(102), "Neighbour reports ongoing abuse")  # was information only
    session.commit()
    view = agenda_view(session, coord, MON)
    got = by_ref(view)
    assert (got[ref(103)]["section"], got[ref(103)]["added_reason"]) == (
        "added", "Earlier incident, new information from school")
    assert got[ref(102)]["section"] == "added" and view["information_only"] == []

    target = got[ref(101)]["item_id"]
    with pytest.raises(ValueError, match="Say why"):
        remove_case(session, coord, target, "")
    remove_case(session, coord, target, "Duplicate of a case discussed on Friday", expected_version=view["version"])
    session.commit()
    with pytest.raises(ValueError, match="already off"):
        remove_case(session, coord, target, "again")
    build_agenda(session, coord, MON)  # a rebuild keeps what the coordinator did
    session.commit()
    view = agenda_view(session, coord, MON)
    got = by_ref(view)
    assert got[ref(101)]["removed"] is True and got[ref(101)]["position"] == 1  # kept in place, marked removed
    assert got[ref(101)]["removed_reason"] == "Duplicate of a case discussed on Friday"
    assert got[ref(103)]["item_id"] == added and got[ref(103)]["section"] == "added"
    assert "REMOVED - " + ref(101) in agenda_text(view)
    assert json.loads(json.dumps(agenda.cli_payload(view), default=str))["items"][0]["section"] == "removed"
    restore_case(session, coord, target)
    session.commit()
    assert by_ref(agenda_view(session, coord, MON))[ref(101)]["removed"] is False

    rows = session.connection().execute(select(AuditEvent.entity, AuditEvent.details).where(
        AuditEvent.action == "change", AuditEvent.entity == "notification")).all()
    whats = [json.loads(d)["what"] for _, d in rows]
    assert whats.count("agenda: case added") == 2 and "agenda: case removed" in whats
    removal = next(json.loads(d) for _, d in rows if json.loads(d)["what"] == "agenda: case removed")
    assert removal["old"] == {"removed": False, "removed_reason": None}
    assert removal["new"]["removed_reason"] == "Duplicate of a case discussed on Friday"


def test_only_coordinators_build_read_and_edit(session, tmp_path, coord):
    load(session, tmp_path, [rec(111, at("21/11/2026 10:00"), crime=True)], "scope")
    view = build_and_view(session, coord, MON)
    item = view["items"][0]["item_id"]
    for role, kw in [(UserRole.agency, {"agency_id": CSC}), (UserRole.admin, {}), (UserRole.manager, {})]:
        other = create_user(session, None, username=f"u.{role.value}", display_name="x", role=role,
                            password=PASSWORD, **kw)
        session.commit()
        for call in (lambda: agenda_view(session, other, MON), lambda: build_agenda(session, other, MON),
                     lambda: remove_case(session, other, item, "no"), lambda: move_item(session, other, item, 1),
                     lambda: add_case(session, other, view["meeting_id"], ref(111), "x"),
                     lambda: publish_agenda(session, other, view["meeting_id"], view["version"])):
            with pytest.raises(Refused):
                call()
    refused = session.connection().execute(select(AuditEvent.id).where(AuditEvent.outcome == "refused")).all()
    assert len(refused) == 18
    for call in (lambda: remove_case(session, None, item, "no"), lambda: agenda_view(session, None, MON)):
        with pytest.raises(Refused):
            call()
    assert by_ref(agenda_view(session, coord, MON))[ref(111)]["removed"] is False


# ------------------------------------------------------------------------------------------------- exports, CLI


def test_export_and_print_view_are_safe_and_complete(session, tmp_path, coord):
    load(session, tmp_path, [rec(121, at("21/11/2026 10:00"), risk="high", score=17),
                             rec(122, at("21/11/2026 11:00")), rec(123, at("10/11/2026 10:00"))], "export")
    view = build_and_view(session, coord, MON)
    nid = view["items"][0]["notification_id"]
    create_action(session, coord, notification_id=nid, agency_id=CSC, description="=cmd|' /C calc'!A0",
                  due_at=at("20/11/2026 17:00"))
    create_action(session, coord, notification_id=nid, agency_id=CSC, description="Home visit",
                  due_at=at("23/11/2026 15:00"))
    create_action(session, coord, notification_id=nid, agency_id=CSC, description="Next week",
                  due_at=at("30/11/2026 15:00"))
    add_case(session, coord, view["meeting_id"], ref(123), "=HYPERLINK(\"http://example.invalid\")")
    session.commit()
    view = agenda_view(session, coord, MON)
    assert [(a["description"], a["overdue"]) for a in view["overdue_actions"]] == [
        ("=cmd|' /C calc'!A0", True), ("Home visit", False)]

    book = load_workbook(io.BytesIO(agenda_workbook(view)))
    assert book.sheetnames == ["Agenda", "Overdue actions"]
    sheet, actions = book["Agenda"], book["Overdue actions"]
    assert [c.value for c in sheet[1]] == list(agenda.AGENDA_HEADERS)
    assert [c.value for c in actions[1]] == list(agenda.ACTION_HEADERS)
    refs = [r[2] for r in sheet.iter_rows(min_row=2, values_only=True)]
    assert refs == [ref(121), ref(123), ref(122)]  # the agenda in order, then information only
    for ws in (sheet, actions):
        assert ws.page_setup.orientation == "landscape" and str(ws.page_setup.paperSize) == "9"  # A4
        assert ws.freeze_panes == "A2"
        for row in ws.iter_rows(values_only=True):
            assert not any(isinstance(v, str) and v.startswith(("=", "+", "-", "@")) for v in row), row
    assert actions["D2"].value == "'=cmd|' /C calc'!A0"
    assert sheet["M3"].value.startswith("'=HYPERLINK")
    assert [sheet["B2"].value, sheet["B3"].value] == ["Other high risk", "Added by the coordinator"]
    assert sheet["B4"].value == "Information only"

    text = agenda_text(view)
    for expected in ("agenda for Monday 23/11/2026 (draft)", "Fri 20/11/2026 09:00", "OTHER HIGH RISK",
                     "ADDED BY THE COORDINATOR", "INFORMATION ONLY", "ACTIONS OVERDUE OR DUE TODAY", "OVERDUE",
                     "MARAC: visible high risk", ref(122)):
        assert expected in text, expected


def dv_cli(*args, db_url: str):
    env = dict(os.environ, DATABASE_URL=db_url)
    return subprocess.run([sys.executable, "-m", "dv", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_cli_prints_the_agenda_json(tmp_path):
    from sqlmodel import Session

    from core.db import get_engine, migrate
    from tests.conftest import dispose_engine

    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    migrate(url)
    try:
        with Session(get_engine(url), expire_on_commit=False) as s:
            load(s, tmp_path, [rec(131, at("21/11/2026 10:00"), crime=True, risk="high", score=15),
                               rec(132, at("21/11/2026 11:00"))], "cli")
    finally:
        dispose_engine(url)
    out = dv_cli("agenda", "--date", "2026-11-23", "--json", "--publish", db_url=url)
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert list(body) == ["date", "window_start", "window_end", "items", "information_only", "overdue_actions"]
    assert (body["date"], body["window_start"], body["window_end"]) == (
        "2026-11-23", "2026-11-20T09:00:00", "2026-11-23T09:00:00")
    assert list(body["items"][0]) == ["position", "section", "police_ref", "stream", "risk", "reasons",
                                      "marac_flags", "prior_incidents_12m"]
    assert body["items"] == [{"position": 1, "section": "high_risk", "police_ref": ref(131), "stream": "crime",
                              "risk": "high", "reasons": ["crime: crime reference CR/26/00131"],
                              "marac_flags": ["visible high risk"], "prior_incidents_12m": 0}]
    assert [i["police_ref"] for i in body["information_only"]] == [ref(132)]
    assert body["overdue_actions"] == []
    text = dv_cli("agenda", "--date", "2026-11-23", db_url=url)
    assert text.returncode == 0 and "(published)" in text.stdout and ref(131) in text.stdout
    for bad, message in [("23/11/2026", "YYYY-MM-DD"), ("2026-11-22", "not a meeting day")]:
        out = dv_cli("agenda", "--date", bad, "--json", db_url=url)
        assert out.returncode == 2 and out.stdout == "" and message in out.stderr


@pytest.mark.parametrize("message,calls", [("database is locked", 2), ("database or disk is full", 1)])
def test_a_build_retries_a_lost_race_but_not_a_real_fault(session, coord, monkeypatch, message, calls):
    """A concurrent build committing first is read again; a full disk is not retried as if it were a race."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    import meetings.agenda as agenda

    made, real = [], agenda._build

    def flaky(*args, **kwargs):
        made.append(1)
        if len(made) == 1:
            raise OperationalError("INSERT ...", (), sqlite3.OperationalError(message))
        return real(*args, **kwargs)

    monkeypatch.setattr(agenda, "_build", flaky)
    if calls == 1:
        with pytest.raises(OperationalError):
            build_agenda(session, coord, MON)
    else:
        build_agenda(session, coord, MON)
    assert len(made) == calls
