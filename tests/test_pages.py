"""Fast page tests with Streamlit's AppTest (the browser tests drive the real thing in Chromium)."""
from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from core.auth import create_user
from core.db import get_engine, migrate, session_scope
from core.models import UserRole
from dv.importer import import_file
from dv.profiles import load_profile
from tests.factories import extract, records

PASSWORD = "correct-horse-staple-7"


@pytest.fixture
def app_db(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'app.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", url)
    migrate(url)
    yield url
    get_engine(url).dispose()


def _app() -> AppTest:
    return AppTest.from_file("../app.py", default_timeout=30)


def _user(url, username, role, **kw):
    with session_scope(get_engine(url)) as s:
        user = create_user(s, None, username=username, display_name=username.title(), role=role, password=PASSWORD, **kw)
        return user.id


def _signed_in(user_id: int) -> AppTest:
    at = _app()
    now = time.time()
    at.session_state["auth"] = {"user_id": user_id, "login_at": now, "last_seen": now}
    return at


def test_first_run_creates_the_first_coordinator(app_db):
    at = _app().run()
    assert at.title[0].value == "Welcome to DA Daily"
    inputs = at.text_input
    inputs[0].input("Casey Coordinator")
    inputs[1].input("casey")
    inputs[3].input(PASSWORD)
    inputs[4].input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception
    assert at.title[0].value == "Notifications"


def test_wrong_password_is_refused(app_db):
    _user(app_db, "coord", UserRole.coordinator)
    at = _app().run()
    assert at.title[0].value == "DA Daily"
    at.text_input[0].input("coord")
    at.text_input[1].input("not-the-password")
    at.button[0].click().run()
    assert at.error[0].value == "The username or password is wrong."


def test_coordinator_sees_stream_counts(app_db, tmp_path):
    uid = _user(app_db, "coord", UserRole.coordinator)
    recs = records(9, seed=31, start=None, days=2)
    with session_scope(get_engine(app_db)) as s:
        result = import_file(s, extract(tmp_path, "niche_wide", recs), load_profile("niche_wide"))
    at = _signed_in(uid).run()
    assert not at.exception
    labels = [t.label for t in at.tabs]
    assert labels == [f"Crime stream ({result.crime})", f"Non-crime stream ({result.non_crime})"]


def test_agency_user_lands_on_my_actions_and_cannot_reach_notifications(app_db):
    uid = _user(app_db, "rep", UserRole.agency, agency_id=6)  # Probation (seeded by migration 0002)
    at = _signed_in(uid).run()
    assert at.title[0].value == "My actions"
    assert at.info[0].value == "Your agency has no open actions."
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/notifications.py")  # not registered for this role, so not reachable


def test_idle_session_is_signed_out(app_db):
    uid = _user(app_db, "coord", UserRole.coordinator)
    at = _app()
    long_ago = time.time() - 3600
    at.session_state["auth"] = {"user_id": uid, "login_at": long_ago, "last_seen": long_ago}
    at.run()
    assert at.title[0].value == "DA Daily"
    assert "inactivity" in at.info[0].value


def test_an_empty_hub_offers_the_demo_data_set(app_db):
    uid = _user(app_db, "coord", UserRole.coordinator)
    at = _signed_in(uid).run()
    assert "no notifications yet" in at.info[0].value
    at.button(key="load_demo").click().run()
    assert not at.exception
    assert sum(int(t.label.split("(")[1].rstrip(")")) for t in at.tabs) > 0


def test_a_temporary_password_must_be_changed_first(app_db):
    from core.models import User
    from sqlmodel import Session

    uid = _user(app_db, "newbie", UserRole.coordinator)
    with Session(get_engine(app_db)) as s:
        from tests.factories import unaudited

        with unaudited():
            user = s.get(User, uid)
            user.must_change_password = True
            s.add(user)
            s.commit()
    at = _signed_in(uid).run()
    assert at.title[0].value == "Choose a new password"
    at.text_input[0].input(PASSWORD)
    at.text_input[1].input("another-long-passphrase-3")
    at.text_input[2].input("another-long-passphrase-3")
    at.button[0].click().run()
    assert at.title[0].value == "Notifications"
    with Session(get_engine(app_db)) as s:
        assert s.get(User, uid).must_change_password is False


def test_a_disclosure_is_audited_once_per_page_visit_not_per_rerun(app_db):
    from sqlmodel import Session, select

    from core.models import AuditEvent
    from dv.encompass import create_alert
    from dv.importer import import_file as _import

    uid = _user(app_db, "dsl", UserRole.school, school_urn="300001")
    engine = get_engine(app_db)
    with Session(engine) as s:
        import pathlib
        import tempfile

        tmp = pathlib.Path(tempfile.mkdtemp())
        _import(s, extract(tmp, "niche_wide", records(1, seed=61)), load_profile("niche_wide"))
        nid = s.execute(select(__import__("dv.models", fromlist=["Notification"]).Notification.id)).scalar_one()
        create_alert(s, None, notification_id=nid, school_urn="300001", disclosed={"child": "Kit Example"})
        s.commit()

    def disclosures():
        with Session(engine) as s:
            return len(s.execute(select(AuditEvent).where(AuditEvent.action == "disclosure")).scalars().all())

    at = _signed_in(uid).run()
    assert at.subheader[0].value == "Kit Example"
    at.run()
    at.run()
    assert disclosures() == 1
    at.switch_page("pages/account.py").run()
    at.switch_page("pages/alerts.py").run()
    assert disclosures() == 2


def test_imported_text_cannot_smuggle_markdown():
    from pages.common import md_escape

    hostile = "NP/1 ![track](http://evil.invalid/p.png) [click](http://evil.invalid) **bold** # head"
    escaped = md_escape(hostile)
    import re

    assert not re.search(r"(?<!\\)[!\[\]()*#]", escaped)  # every Markdown character is escaped
    assert escaped.replace("\\", "") == hostile


def test_a_session_past_its_absolute_lifetime_is_signed_out(app_db, monkeypatch):
    monkeypatch.setenv("DV_SESSION_LIFETIME_HOURS", "1")
    uid = _user(app_db, "coord", UserRole.coordinator)
    at = _app()
    now = time.time()
    at.session_state["auth"] = {"user_id": uid, "login_at": now - 2 * 3600, "last_seen": now}  # active, but too old
    at.run()
    assert at.title[0].value == "DA Daily"
    assert "maximum length" in at.info[0].value


def test_server_config_keeps_the_settings_that_load_depends_on():
    """`.streamlit/config.toml` is read by every `streamlit run`; two of its lines are load fixes found by
    bench/meeting_load.py (a full garbage collection after every rerun took half the server's CPU) or hardening."""
    import tomllib
    from pathlib import Path

    config = tomllib.loads((Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False
    assert config["server"]["fileWatcherType"] == "none"
    assert config["client"]["showErrorDetails"] == "none"
