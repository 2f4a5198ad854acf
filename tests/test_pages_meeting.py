"""AppTest page tests of the Meeting, My actions and Overdue pages (the whole meeting also runs in Chromium:
tests/test_browser_meeting.py)."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from core.db import get_engine, session_scope
from core.models import UserRole
from meetings.models import Action, ActionChange, CaseDecision, Meeting, MeetingAttendee
from tests.test_agenda import MON, at as wall, build_and_view, load, rec, ref
from tests.test_pages import _signed_in, _user, app_db  # noqa: F401  (fixture)

CSC = 2


@pytest.fixture
def agenda_db(app_db, tmp_path):
    coord = _user(app_db, "coord", UserRole.coordinator)
    rep = _user(app_db, "csc.rep", UserRole.agency, agency_id=CSC)
    engine = get_engine(app_db)
    from sqlmodel import Session

    from core.models import User
    with Session(engine, expire_on_commit=False) as s:
        sat = wall("21/11/2026 22:00")
        load(s, tmp_path, [rec(1, sat, crime=True, risk="high", score=15), rec(2, sat, risk="medium", score=11)],
             "pages")
        build_and_view(s, s.get(User, coord), MON)
    return app_db, coord, rep


def meeting_page(uid):
    at = _signed_in(uid).run()
    at.switch_page("pages/meeting.py").run()
    at.date_input(key="meeting_date").set_value(MON).run()
    assert not at.exception, at.exception
    return at


def test_a_meeting_on_the_page(agenda_db):
    url, coord, rep = agenda_db
    at = meeting_page(coord)
    at.text_input(key="chair").set_value("Casey Chair")
    at.button(key="open_meeting").click().run()
    assert "Chair: Casey Chair – meeting open" in at.caption[0].value
    at.selectbox(key="att_agency").set_value(CSC)
    at.text_input(key="att_name").input("Sam")
    at.checkbox(key="att_accept").check()
    at.button[[b.label for b in at.button].index("Add attendee")].click().run()
    assert not at.exception and not at.error
    # the first case is on screen; record its risk and decisions, then an action
    at.multiselect[0].set_value(["csc_referral", "marac_referral"])
    at.button[[b.label for b in at.button].index("Save risk and decisions")].click().run()
    assert not at.error, [e.value for e in at.error]
    at.selectbox(key="action_agency").set_value(CSC)
    at.text_input(key="action_text").input("Strategy discussion today")
    at.button[[b.label for b in at.button].index("Add action")].click().run()
    assert not at.error, [e.value for e in at.error]
    at.button(key="next_case").click().run()
    # a raised grade without a rationale is refused with the rule's message
    [s for s in at.selectbox if s.label == "Confirmed risk"][0].set_value("high")
    at.button[[b.label for b in at.button].index("Save risk and decisions")].click().run()
    assert "rationale" in at.error[0].value
    at.button(key="close_meeting").click().run()
    assert "closed" in at.caption[0].value
    at.button(key="prepare_minutes").click().run()
    assert not at.exception
    with session_scope(get_engine(url)) as s:
        assert s.execute(select(Meeting.status, Meeting.chair)).one() == ("closed", "Casey Chair")
        assert s.execute(select(MeetingAttendee.name)).scalars().all() == ["Sam"]
        assert sorted(s.execute(select(CaseDecision.decision)).scalars()) == ["csc_referral", "marac_referral"]
        action = s.execute(select(Action)).scalar_one()
        assert (action.description, action.agency_id, action.meeting_id) == ("Strategy discussion today", CSC, 1)


def test_my_actions_update_and_a_stale_save(agenda_db):
    url, coord, rep = agenda_db
    from core.models import User
    from meetings import meeting as mt
    from sqlmodel import Session

    with Session(get_engine(url), expire_on_commit=False) as s:
        c = s.get(User, coord)
        view = mt.meeting_view(s, c, MON)
        mt.open_meeting(s, c, view["meeting_id"], chair="C", expected_version=view["version"])
        item = view["cases"][0]["item_id"]
        action_id = mt.add_case_action(s, c, view["meeting_id"], item, agency_id=CSC, description="Visit",
                                       now=dt.datetime(2026, 11, 23, 10, 0))
        mt.save_share(s, c, view["meeting_id"], item, 4, "GP: known to services", expected_version=None)
        s.commit()
    at = _signed_in(rep).run()
    assert at.title[0].value == "My actions"
    at.selectbox[0].set_value(action_id).run()
    assert "GP: known to services" in [t.value for t in at.text]
    at.selectbox(key=None) if False else None
    form_status = [s for s in at.selectbox if s.label == "Status"][0]
    form_status.set_value("done")
    at.text_area[0].input("Visited, family safe")
    # a colleague saves first
    with Session(get_engine(url), expire_on_commit=False) as s:
        from meetings.actions import update_action
        update_action(s, s.get(User, coord), action_id, expected_version=1, status="in_progress", note="On it")
        s.commit()
    at.button[[b.label for b in at.button].index("Save")].click().run()
    assert "changed by someone else" in at.error[0].value
    assert "Now: in progress – On it (owner none)" in [t.value for t in at.text]
    with session_scope(get_engine(url)) as s:
        assert s.get(Action, action_id).status.value == "in_progress"
        assert len(s.execute(select(ActionChange).where(ActionChange.action_id == action_id)).all()) == 3


def test_overdue_page_counts_by_agency(agenda_db):
    url, coord, rep = agenda_db
    from core.models import User
    from meetings.actions import create_action
    from sqlmodel import Session

    from dv.models import Notification
    with Session(get_engine(url), expire_on_commit=False) as s:
        nid = s.execute(select(Notification.id).where(Notification.police_ref == ref(1))).scalar_one()
        create_action(s, s.get(User, coord), notification_id=nid, agency_id=CSC, description="Long overdue",
                      due_at=dt.datetime(2026, 1, 5, 12, 0))
        s.commit()
    at = _signed_in(coord).run()
    at.switch_page("pages/overdue.py").run()
    assert not at.exception
    counts = at.dataframe[0].value
    assert counts.set_index("agency").loc["Children's Social Care", "overdue"] == 1
    assert list(at.dataframe[1].value["description"]) == ["Long overdue"]


def test_my_actions_choice_survives_a_new_action_for_the_agency(agenda_db):
    """The meeting adds an action for the agency while a representative has one open: the list of choices changes,
    and the representative's choice must stay on screen (found by bench/meeting_load.py:
    the choice was lost and the page went back to "Choose an action")."""
    url, coord, rep = agenda_db
    from sqlmodel import Session

    from core.models import User
    from meetings import meeting as mt

    def add(description: str) -> int:
        with Session(get_engine(url), expire_on_commit=False) as s:
            c = s.get(User, coord)
            view = mt.meeting_view(s, c, MON)
            if view["meeting"]["status"] != "open":
                mt.open_meeting(s, c, view["meeting_id"], chair="C", expected_version=view["version"])
            new = mt.add_case_action(s, c, view["meeting_id"], view["cases"][0]["item_id"], agency_id=CSC,
                                     description=description, now=dt.datetime(2026, 11, 23, 10, 0))
            s.commit()
            return new

    first = add("Visit")
    at = _signed_in(rep).run()
    at.selectbox[0].set_value(first).run()
    assert "Action on" in at.subheader[0].value
    add("Call the school")  # meanwhile, at the meeting
    at.run()
    assert at.subheader and "Action on" in at.subheader[0].value, "the choice was lost"
    assert at.selectbox(key="chosen_action").value == first
    assert "Call the school" in at.dataframe[0].value["description"].tolist()  # and the list shows the new one
