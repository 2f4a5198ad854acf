"""Operation Encompass alerts (dv/encompass.py): which children get one, the setting resolved from the typed name
(or queued to resolve), deadlines, exactly what is disclosed, the email notice (a real SMTP server on loopback:
no names), acknowledgement and scope, escalation, the coordinator's queue and figures, the CLI listing.
Runs on SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, insert, select

from core.auth import create_user
from core.models import AuditEvent, UserRole
from core.scope import Refused
from dv import encompass as enc
from dv.models import EncompassAlert, KeyAdult, Notification, School, SchoolAlias
from tests.factories import unaudited
from tests.test_agenda import at, load, rec, victim
from tests.test_digest import smtp  # noqa: F401  (fixture: a real SMTP server on 127.0.0.1)

PASSWORD = "correct-horse-staple-7"
SAT = at("21/11/2026 22:00")  # Saturday night: due Monday 23/11 08:30 (default term dates)
SCHOOLS = [  # urn, name, LA, status, open
    ("100001", "St Mary's Church of England Primary School", "Northshire", "Open", True),
    ("100002", "Sherwood Academy", "Northshire", "Open", True),
    ("200002", "Sherwood Academy", "Southshire", "Open", True),
    ("100003", "Kexley Primary School", "Northshire", "Closed", False),
    ("100004", "Kexley Primary School", "Northshire", "Open", True),
]


def kid(forename: str, dob: dt.date | None, school: str | None, present: bool = True) -> dict:
    return {"surname": "Okafor", "forename": forename, "dob": dob, "gender": "Female", "present": present,
            "school": school}


@pytest.fixture
def hub(session, monkeypatch):
    monkeypatch.setenv("DV_LOCAL_AUTHORITIES", "Northshire")
    from dv.schools import normalise

    with unaudited():
        session.execute(insert(School), [
            {"urn": u, "name": n, "name_key": normalise(n), "la_name": la, "status": st, "is_open": op,
             "type_name": "Academy converter"} for u, n, la, st, op in SCHOOLS])
        session.execute(insert(KeyAdult), [
            {"school_urn": "100001", "name": "Dee Lead", "email": "dsl@stmarys.example", "active": True,
             "version": 1},
            {"school_urn": "100001", "name": "Dep Uty", "email": "deputy@stmarys.example", "active": True,
             "version": 1},
            {"school_urn": "EHE", "name": "EHE Officer", "email": "ehe@council.example", "active": True,
             "version": 1}])
        session.commit()
    coord = create_user(session, None, username="casey", display_name="Casey", role=UserRole.coordinator,
                        password=PASSWORD)
    stmarys = create_user(session, coord, username="dsl.stmarys", display_name="Dee Lead", role=UserRole.school,
                          school_urn="100001", password=PASSWORD)
    sherwood = create_user(session, coord, username="dsl.sherwood", display_name="Sam", role=UserRole.school,
                           school_urn="100002", password=PASSWORD)
    session.commit()
    return {"coord": coord, "stmarys": stmarys, "sherwood": sherwood}


def imported(session, tmp_path, children: list[dict], n: int = 1, when: dt.datetime = SAT, **kw) -> tuple[int, dict]:
    """Import one notification with these children; returns its id and the alerts the import raised."""
    record = rec(n, when, crime=False, risk="medium", children=children, **kw)
    record["circumstances"] = "Verbal argument overheard by neighbours; <b>children</b> upstairs."
    result = load(session, tmp_path, [record], f"enc{n}")
    nid = session.execute(select(Notification.id).where(Notification.police_ref == record["police_ref"])).scalar_one()
    return nid, result.alerts


def alerts(session) -> dict[str, dict]:
    rows = session.execute(select(EncompassAlert)).scalars().all()
    return {json.loads(a.disclosed).get("child", "").split(", ")[-1]: a for a in rows}


def test_which_children_get_an_alert_and_where_it_goes(session, tmp_path, hub):
    nid, first = imported(session, tmp_path, [
        kid("Ava", dt.date(2019, 5, 1), "St Marys CofE Primary"),  # 7: resolved
        kid("Ben", dt.date(2023, 1, 1), "Little Acorns Nursery"),  # 3: nursery, off by default
        kid("Cara", dt.date(2009, 6, 1), "Home educated", present=False),  # 17: the EHE officer
        kid("Dan", dt.date(2014, 2, 2), "Kexley Primary"),  # a closed school and its academy: the open one
        kid("Hal", dt.date(2017, 2, 2), "Sherwod Acadmy"),  # misspelt: to resolve, with candidates
        kid("Eve", dt.date(2008, 1, 1), "Sherwood Academy"),  # 18: not school age
    ])
    nid2, second = imported(session, tmp_path, [
        kid("Fay", dt.date(2022, 11, 21), None),  # 4 on the incident date (birthday), no school named
        kid("Gus", None, "Sherwood Academy"),  # no date of birth, a school named: alerted
    ], n=2, person=victim(2))
    counts = {k: first[k] + second[k] for k in first}  # raised by the imports themselves
    assert counts == {"created": 6, "to_resolve": 2, "home_educated": 1, "relinked": 0, "not_school_age": 2,
                      "rerouted": 0, "withdrawn": 0}
    assert enc.generate_alerts(session, [nid, nid2])["created"] == 0  # idempotent
    got = alerts(session)
    assert set(got) == {"Ava", "Cara", "Dan", "Fay", "Gus", "Hal"}
    assert (got["Ava"].school_urn, got["Ava"].resolution.value) == ("100001", "resolved")
    assert got["Ava"].due_at == at("23/11/2026 08:30")
    assert (got["Cara"].school_urn, got["Cara"].resolution.value) == ("EHE", "home_educated")
    assert (got["Dan"].school_urn, got["Dan"].resolution.value) == ("100004", "resolved")  # never the closed one
    assert (got["Hal"].school_urn, got["Hal"].resolution.value) == (None, "to_resolve")
    found = json.loads(got["Hal"].candidates)
    assert found["why"] and [c["urn"] for c in found["candidates"]][0] == "100002"  # this authority's first
    assert got["Fay"].resolution.value == "to_resolve" and got["Fay"].school_typed is None
    assert got["Gus"].school_urn == "100002"  # Northshire's Sherwood Academy, not Southshire's
    disclosed = json.loads(got["Ava"].disclosed)
    assert disclosed == {
        "child": "OKAFOR, Ava", "child_dob": "01/05/2019", "setting": "St Mary's Church of England Primary School",
        "police_ref": "NP/26/900001", "incident_date": "21/11/2026", "incident_time": "22:00",
        "place": disclosed["place"], "present": "yes", "risk": "medium",
        "circumstances": "Verbal argument overheard by neighbours; <b>children</b> upstairs."}
    assert json.loads(got["Cara"].disclosed)["present"] == "no"
    # idempotent: again, nothing new
    assert enc.generate_alerts(session, [nid])["created"] == 0
    assert session.execute(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.entity == "encompass_alert", AuditEvent.username == "import")).scalar_one() == 2  # one per import


def test_the_import_raises_the_alerts_in_its_own_transaction(session, tmp_path, hub):
    record = rec(5, SAT, children=[kid("Ava", dt.date(2019, 5, 1), "St Marys CofE Primary")])
    result = load(session, tmp_path, [record], "hook")
    assert result.alerts["created"] == 1
    assert alerts(session)["Ava"].school_urn == "100001"
    assert load(session, tmp_path, [record], "hook-again").alerts["created"] == 0  # unchanged: nothing new


def test_nursery_setting_and_a_smaller_disclosure_are_settings(session, tmp_path, hub, monkeypatch):
    monkeypatch.setenv("DV_ENCOMPASS_NURSERY", "1")
    monkeypatch.setenv("DV_ENCOMPASS_FIELDS", "child,setting,police_ref")
    nid, _ = imported(session, tmp_path, [kid("Ben", dt.date(2023, 1, 1), "Little Acorns Nursery"),
                                       kid("Ava", dt.date(2019, 5, 1), "St Marys CofE Primary")])
    enc.generate_alerts(session, [nid])
    session.commit()
    got = alerts(session)
    assert set(got) == {"Ben", "Ava"}
    assert json.loads(got["Ava"].disclosed) == {"child": "OKAFOR, Ava", "police_ref": "NP/26/900001",
                                                "setting": "St Mary's Church of England Primary School"}


def test_a_reimport_that_rewrites_the_children_raises_no_second_alert(session, tmp_path, hub):
    children = [kid("Ava", dt.date(2019, 5, 1), "St Marys CofE Primary")]
    nid, _ = imported(session, tmp_path, children)
    enc.generate_alerts(session, [nid])
    session.commit()
    children.append(kid("Zed", dt.date(2016, 3, 3), "St Marys CofE Primary"))  # the police add a sibling
    _, counts = imported(session, tmp_path, children)
    assert (counts["created"], counts["relinked"]) == (1, 1)
    assert sorted(alerts(session)) == ["Ava", "Zed"]
    assert session.execute(select(func.count()).select_from(EncompassAlert)
                           .where(EncompassAlert.child_link_id.is_(None))).scalar_one() == 0


def test_resolving_remembers_the_spelling(session, tmp_path, hub):
    coord = hub["coord"]
    nid, _ = imported(session, tmp_path, [kid("Hal", dt.date(2017, 2, 2), "Sherwod Acadmy")])
    enc.generate_alerts(session, [nid])
    session.commit()
    hal = alerts(session)["Hal"]
    with pytest.raises(ValueError, match="closed one is never chosen"):
        enc.resolve_alert(session, coord, hal.id, urn="100003", expected_version=hal.version)
    with pytest.raises(Refused):
        enc.resolve_alert(session, hub["stmarys"], hal.id, urn="100002", expected_version=hal.version)
    enc.resolve_alert(session, coord, hal.id, urn="100002", expected_version=hal.version, remember=True)
    session.commit()
    session.expire_all()
    hal = alerts(session)["Hal"]
    assert (hal.school_urn, hal.resolution.value, hal.due_at) == ("100002", "resolved", at("23/11/2026 08:30"))
    assert json.loads(hal.disclosed)["setting"] == "Sherwood Academy"
    with pytest.raises(enc.Conflict):
        enc.resolve_alert(session, coord, hal.id, urn="100002", expected_version=hal.version - 1)
    session.rollback()
    assert session.execute(select(SchoolAlias.school_urn)).scalars().all() == ["100002"]
    other, _ = imported(session, tmp_path, [kid("Ola", dt.date(2015, 2, 2), "SHERWOD ACADMY")], n=2,
                     person=victim(2))
    enc.generate_alerts(session, [other])
    session.commit()
    assert alerts(session)["Ola"].school_urn == "100002"


def test_notice_email_scope_acknowledgement_and_escalation(session, tmp_path, hub, smtp, monkeypatch):  # noqa: F811
    server, port = smtp
    monkeypatch.setenv("DV_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("DV_SMTP_PORT", str(port))
    nid, _ = imported(session, tmp_path, [kid("Ava", dt.date(2019, 5, 1), "St Marys CofE Primary"),
                                       kid("Gus", None, "Sherwood Academy")])
    enc.generate_alerts(session, [nid])
    session.commit()
    report = {r["school_urn"]: r for r in enc.send_notices(session, now_utc=at("22/11/2026 07:00"))}
    session.commit()
    assert report["100001"]["sent"] and report["100001"]["recipients"] == ["dsl@stmarys.example",
                                                                         "deputy@stmarys.example"]
    assert (report["100002"]["sent"], report["100002"]["error"]) == (False, "no key adult email")
    assert len(server.messages) == 1
    assert sorted(server.messages[0]["rcpt_tos"]) == ["deputy@stmarys.example", "dsl@stmarys.example"]
    message = server.messages[0]["msg"]
    body = message.get_content()
    assert message["Subject"] == enc.NOTICE_SUBJECT
    for secret in ("OKAFOR", "Okafor", "Ava", "NP/26/900001", "Verbal", "St Mary"):
        assert secret not in body and secret not in message["Subject"]
    got = alerts(session)
    assert got["Ava"].status.value == "notified" and got["Gus"].status.value == "queued"

    # the school portal: St Mary's sees only its pupil; Sherwood cannot acknowledge it
    mine = enc.list_alerts(session, hub["stmarys"])
    assert [a["disclosed"]["child"] for a in mine] == ["OKAFOR, Ava"]
    assert [a["disclosed"]["child"] for a in enc.list_alerts(session, hub["sherwood"])] == ["OKAFOR, Gus"]
    with pytest.raises(Refused):
        enc.acknowledge_alert(session, hub["sherwood"], got["Ava"].id)
    enc.acknowledge_alert(session, hub["stmarys"], got["Ava"].id)
    session.commit()

    # an hour after Monday's 08:30 deadline Gus's alert is escalated once; Ava's (acknowledged) is not
    assert enc.escalate(session, now=at("23/11/2026 09:29"))["escalated"] == 0
    result = enc.escalate(session, now=at("23/11/2026 09:31"), send=False)
    session.commit()
    assert result["escalated"] == 1
    assert enc.escalate(session, now=at("23/11/2026 12:00"))["escalated"] == 0
    view = enc.encompass_overview(session, hub["coord"], now=at("23/11/2026 09:31"))
    assert [a["forename"] for a in view["escalated"]] == ["Gus"]
    assert [a["forename"] for a in view["overdue"]] == ["Gus"]
    assert [a["forename"] for a in view["acknowledged"]] == ["Ava"]
    figures = view["figures"]
    assert (figures["alerts"], figures["notified"], figures["notified_on_time_pct"], figures["acknowledged_pct"]) == (
        2, 1, 50.0, 50.0)
    assert figures["median_hours_to_notification"] == 9.0  # 22:00 Saturday to 07:00 Sunday
    with pytest.raises(Refused):
        enc.encompass_overview(session, hub["stmarys"])


def test_cli_listing(session, tmp_path, hub):
    nid, _ = imported(session, tmp_path, [kid("Ava", dt.date(2019, 5, 1), "St Marys CofE Primary")])
    enc.generate_alerts(session, [nid])
    session.commit()
    rows = enc.job_list(session, start=dt.date(2026, 11, 21), end=dt.date(2026, 11, 21))
    assert rows == [{"police_ref": "NP/26/900001", "child": "OKAFOR, Ava", "child_dob": "2019-05-01",
                     "school_urn": "100001", "school_name": "St Mary's Church of England Primary School",
                     "due_at": "2026-11-23T08:30:00", "status": "queued", "notified_at": None,
                     "acknowledged_at": None}]
    assert enc.job_list(session, start=dt.date(2026, 11, 22)) == []


def test_cli_list_and_send(tmp_path, smtp, monkeypatch):  # noqa: F811
    import os
    import subprocess
    import sys

    from sqlmodel import Session

    from core.db import get_engine, migrate
    from dv.schools import normalise
    from tests.test_agenda import ROOT

    server, port = smtp
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    migrate(url)
    engine = get_engine(url)
    try:
        with Session(engine, expire_on_commit=False) as s:
            with unaudited():
                s.execute(insert(School), [{"urn": "100001", "name": SCHOOLS[0][1], "name_key": normalise(SCHOOLS[0][1]),
                                            "la_name": "Northshire", "status": "Open", "is_open": True}])
                s.execute(insert(KeyAdult), [{"school_urn": "100001", "name": "Dee", "email": "dsl@stmarys.example",
                                              "active": True, "version": 1}])
                s.commit()
            nid, _ = imported(s, tmp_path, [kid("Ava", dt.date(2019, 5, 1), "St Marys CofE Primary")])
            enc.generate_alerts(s, [nid], actor="test")
            s.commit()
    finally:
        engine.dispose()

    def dv(*args, **env):
        return subprocess.run([sys.executable, "-m", "dv", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=120, env={k: v for k, v in os.environ.items() if not k.startswith("DV_SMTP")}
                              | {"DATABASE_URL": url} | env)

    out = dv("encompass", "list", "--from", "2026-11-21", "--to", "2026-11-21", "--json")
    assert out.returncode == 0, out.stderr
    assert [(r["child"], r["school_urn"], r["due_at"], r["status"]) for r in json.loads(out.stdout)] == [
        ("OKAFOR, Ava", "100001", "2026-11-23T08:30:00", "queued")]
    assert dv("encompass", "list", "--from", "21/11/2026").returncode == 2
    out = dv("encompass", "send")
    assert out.returncode == 2 and "DV_SMTP_HOST" in out.stderr
    out = dv("encompass", "send", "--json", DV_SMTP_HOST="127.0.0.1", DV_SMTP_PORT=str(port))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["notices"][0]["sent"] is True
    assert len(server.messages) == 1 and "Ava" not in server.messages[0]["msg"].get_content()
    out = dv("encompass", "list", "--json")
    assert json.loads(out.stdout)[0]["status"] == "notified"
