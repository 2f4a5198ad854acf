"""Page-level checks (Streamlit AppTest) of what the pages audit and render: the audit log's own search, lists of
actions audited once per page visit and filter, imported or typed text never rendered as Markdown, and the UK date
(not the server's) as the pages' default."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select
from sqlmodel import Session

from core.db import get_engine, session_scope
from core.models import AuditEvent, UserRole
from dv.importer import import_file
from dv.models import Notification
from dv.profiles import load_profile
from meetings.actions import create_action
from tests.factories import extract, records
from tests.test_pages import _signed_in, _user, app_db  # noqa: F401  (app_db: a fixture)

PROBATION = 6  # seeded by migration 0002
HOSTILE_REF = "NP/1 ![x](https://host.invalid/p.png)"


def _events(url, action: str, entity: str) -> list[dict]:
    with Session(get_engine(url)) as s:
        return [json.loads(e.details or "{}") | {"by": e.username} for e in s.execute(
            select(AuditEvent).where(AuditEvent.action == action, AuditEvent.entity == entity)
            .order_by(AuditEvent.id)).scalars()]


@pytest.fixture
def hub(app_db, tmp_path):
    """Two notifications (one with a police reference carrying Markdown), a Probation action on each, overdue."""
    coord = _user(app_db, "coord", UserRole.coordinator)
    recs = records(2, seed=71)
    recs[0]["police_ref"] = HOSTILE_REF
    with session_scope(get_engine(app_db)) as s:
        import_file(s, extract(tmp_path, "niche_wide", recs), load_profile("niche_wide"))
    with session_scope(get_engine(app_db)) as s:
        from core.models import User

        user = s.get(User, coord)
        ids = dict(s.execute(select(Notification.police_ref, Notification.id)).all())
        actions = {ref: create_action(s, user, notification_id=nid, agency_id=PROBATION, description=f"Check {i}",
                                      due_at=dt.datetime(2026, 1, 5, 17, 0))
                   for i, (ref, nid) in enumerate(sorted(ids.items()))}
    return {"coord": coord, "actions": actions}



def _frozen_uk_clock(monkeypatch, uk: dt.datetime) -> None:
    """``core.timeutil.london_now`` fixed at ``uk`` for the pages (AppTest runs each page's imports afresh, so they
    take the patched clock). Every project module is imported first: one first imported while the clock is patched
    would keep the fake clock in its own name (``from core.timeutil import london_now``) after the test, and the
    next test's "now" would be years ahead."""
    import importlib
    import pkgutil

    import core.timeutil

    for package in ("core", "dv", "meetings"):
        for info in pkgutil.walk_packages(importlib.import_module(package).__path__, f"{package}."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)
    monkeypatch.setattr(core.timeutil, "london_now", lambda: uk)


def test_the_audit_log_search_is_audited_once_per_visit_and_search_from_the_uk_date(app_db, monkeypatch):
    uk = dt.datetime(2031, 6, 15, 0, 30)  # 00:30 BST: on a UTC server dt.date.today() is still the 14th
    _frozen_uk_clock(monkeypatch, uk)
    admin = _user(app_db, "admin", UserRole.admin)
    at = _signed_in(admin).run()
    at.switch_page("pages/audit_log.py").run()
    assert not at.exception
    assert at.title[0].value == "Audit log"
    assert at.date_input[0].value == (uk.date() - dt.timedelta(days=7), uk.date())
    at.run()
    at.run()  # reruns of the same search: not audited again
    searches = _events(app_db, "search", "audit_event")
    assert [(e["by"], e["filters"]["username"]) for e in searches] == [("admin", None)]
    assert searches[0]["filters"]["start"].startswith("2031-06-08")
    at.text_input[0].input("coord").run()  # a new search
    assert [e["filters"]["username"] for e in _events(app_db, "search", "audit_event")] == [None, "coord"]


def test_the_notifications_page_defaults_to_the_uk_date(app_db, monkeypatch):
    uk = dt.datetime(2031, 6, 15, 0, 30)
    _frozen_uk_clock(monkeypatch, uk)
    at = _signed_in(_user(app_db, "coord", UserRole.coordinator)).run()
    assert at.title[0].value == "Notifications"
    assert at.date_input[0].value == (uk.date() - dt.timedelta(days=2), uk.date())


def test_action_lists_are_audited_once_per_visit_and_filter(app_db, hub):
    at = _signed_in(hub["coord"]).run()
    at.switch_page("pages/actions.py").run()
    assert not at.exception
    at.run()
    at.selectbox[0].set_value(PROBATION).run()
    at.switch_page("pages/overdue.py").run()
    assert not at.exception
    at.run()
    got = [(e["by"], e["listed"], e["agency_id"], e["rows"]) for e in _events(app_db, "view", "action")]
    assert got == [("coord", "actions list", None, 2), ("coord", "actions list", PROBATION, 2),
                   ("coord", "chase list", None, 2)]


def test_my_actions_list_is_audited_and_the_police_reference_is_not_markdown(app_db, hub):
    rep = _user(app_db, "rep", UserRole.agency, agency_id=PROBATION)
    at = _signed_in(rep).run()
    assert at.title[0].value == "My actions"
    at.run()
    lists = [(e["by"], e["listed"], e["rows"]) for e in _events(app_db, "view", "action") if "listed" in e]
    assert lists == [("rep", "actions list", 2)]
    at.selectbox(key="chosen_action").set_value(hub["actions"][HOSTILE_REF]).run()
    assert not at.exception
    heading = at.subheader[0].value
    assert "\\!\\[x\\]\\(https://host\\.invalid/p\\.png\\)" in heading  # shown as text, not fetched as an image
    assert heading.replace("\\", "") == f"Action on {HOSTILE_REF}"


def test_the_dashboard_caption_does_not_render_a_typed_district_as_markdown(app_db):
    manager = _user(app_db, "manager", UserRole.manager)
    at = _signed_in(manager).run()
    assert at.title[0].value == "Dashboard"
    at.text_input(key="dash_district").input("**NG5**").run()
    assert not at.exception
    caption = next(c.value for c in at.caption if "district" in c.value)
    assert "\\*\\*NG5\\*\\*" in caption
