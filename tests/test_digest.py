"""The daily action digest (meetings.digest), the SMTP sender (core.mail) and ``python -m dv actions ...``,
against a real SMTP server on loopback (aiosmtpd). The digest services run on SQLite and PostgreSQL; the CLI on a
SQLite file, in a subprocess as a scheduled job runs it."""
from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlmodel import Session

from core.auth import create_user
from core.mail import HeaderInjection, MailNotConfigured, send_mail
from core.models import Agency, AuditEvent, UserRole
from core.settings import get_settings
from dv.models import Notification, NotificationPerson, Person, PersonRole, Risk, Stream
from meetings.actions import create_action, update_action
from meetings.digest import UnknownAgency, build_digests, job_list_actions, send_digests
from tests.conftest import dispose_engine, free_port
from tests.factories import unaudited

ROOT = Path(__file__).resolve().parent.parent
POLICE, CSC, HEALTH, PROBATION, HOUSING, IDVA = 1, 2, 4, 6, 7, 8
PASSWORD = "correct-horse-staple-7"
NOW = dt.datetime(2026, 11, 23, 7, 0)  # Monday 07:00, Europe/London wall-clock
VICTIM = ("Rosalind", "Featherstonehaugh")
CHILD = ("Peregrine", "Featherstonehaugh")
APP_URL = "https://dadaily.northshire.example.gov.uk"
ACTOR = "cli:digest-test"


# ---------------------------------------------------------------------------------------------- SMTP on loopback


class Collector:
    """aiosmtpd handler: keeps every message; refuses any recipient whose address contains "reject"."""

    def __init__(self):
        self.messages: list[dict] = []
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if "reject" in address:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append({"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
                                  "msg": msg, "raw": envelope.original_content or envelope.content})
        return "250 Message accepted"

    def by_subject(self) -> dict[str, dict]:
        return {m["msg"]["Subject"]: m for m in self.messages}


@pytest.fixture
def smtp():
    from aiosmtpd.controller import Controller

    handler = Collector()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()


def mail_settings(port: int | None, **kw):
    base = dict(smtp_host="127.0.0.1" if port else None, smtp_port=port or 25, smtp_user=None, smtp_password=None,
                smtp_starttls=False, mail_from="da-daily@northshire.example.gov.uk", app_url=APP_URL)
    return dataclasses.replace(get_settings(), **(base | kw))


# ---------------------------------------------------------------------------------------------- the data


def seed(session: Session) -> dict[str, int]:
    """Notifications (one with a known victim and child), agencies' emails, representatives and actions.

    | agency | actions | recipients |
    |---|---|---|
    | Children's Social Care | 2 overdue (one in progress), 1 due today, 1 later, 1 done overdue | agency email |
    | Probation | 1 due today | its two active representatives (not the disabled one, not the coordinator) |
    | Health | 1 overdue | agency email the SMTP server refuses |
    | Police | 1 overdue | none |
    | Housing | 1 later | (no digest) |
    | IDVA (inactive) | 1 overdue | (no digest) |
    """
    with unaudited():
        refs = {}
        for ref, risk in (("NS/0001", Risk.high), ("NS/0002", Risk.medium), ("NS/0003", Risk.standard)):
            n = Notification(force="Northshire Constabulary", police_ref=ref, incident_at=dt.datetime(2026, 11, 18, 22),
                             stream=Stream.non_crime, stream_reason="no crime reference", risk=risk,
                             location=f"12 Larch Road, home of {' '.join(VICTIM)}",
                             circumstances=f"{VICTIM[0]} reported that her partner shouted at {CHILD[0]}.")
            session.add(n)
            session.flush()
            refs[ref] = n.id
        for (fore, sur), role in ((VICTIM, PersonRole.victim), (CHILD, PersonRole.child)):
            p = Person(force="Northshire Constabulary", forename=fore, surname=sur)
            session.add(p)
            session.flush()
            session.add(NotificationPerson(notification_id=refs["NS/0001"], person_id=p.id, role=role,
                                           forename=fore, surname=sur))
        session.execute(update(Agency).where(Agency.id == CSC).values(email="csc-mash@northshire.example.gov.uk"))
        session.execute(update(Agency).where(Agency.id == HEALTH).values(email="mash@reject.example.org"))
        session.commit()
    coord = create_user(session, None, username="coord", display_name="Casey Coordinator",
                        role=UserRole.coordinator, password=PASSWORD, email="casey@northshire.example.gov.uk")
    create_user(session, None, username="prob.two", display_name="Pat Two", role=UserRole.agency,
                agency_id=PROBATION, password=PASSWORD, email="p.two@probation.example.org")
    create_user(session, None, username="prob.one", display_name="Pat One", role=UserRole.agency,
                agency_id=PROBATION, password=PASSWORD, email="p.one@probation.example.org")
    gone = create_user(session, None, username="prob.gone", display_name="Pat Gone", role=UserRole.agency,
                       agency_id=PROBATION, password=PASSWORD, email="p.gone@probation.example.org")
    create_user(session, None, username="police.rep", display_name="Officer", role=UserRole.agency,
                agency_id=POLICE, password=PASSWORD)  # no email
    session.commit()
    with unaudited():
        gone.disabled = True
        session.add(gone)
        session.commit()

    def act(ref, agency, description, due, owner=None):
        return create_action(session, coord, notification_id=refs[ref], agency_id=agency, description=description,
                             due_at=due, owner=owner)

    a = {
        "csc_visit": act("NS/0001", CSC, "Visit the family home", dt.datetime(2026, 11, 20, 17, 0), "J Smith"),
        "csc_call": act("NS/0002", CSC, "Call the school\nabout attendance", dt.datetime(2026, 11, 19, 12, 0)),
        "csc_strategy": act("NS/0003", CSC, "Hold a strategy discussion", dt.datetime(2026, 11, 23, 16, 0)),
        "csc_later": act("NS/0001", CSC, "Review the plan", dt.datetime(2026, 11, 24, 10, 0)),
        "csc_done": act("NS/0002", CSC, "Share the chronology", dt.datetime(2026, 11, 18, 9, 0)),
        "prob_check": act("NS/0001", PROBATION, "Check licence conditions", dt.datetime(2026, 11, 23, 12, 30)),
        "health_gp": act("NS/0002", HEALTH, "Tell the GP", dt.datetime(2026, 11, 20, 9, 0), "Dr Patel"),
        "police_pnc": act("NS/0003", POLICE, "Update the PNC", dt.datetime(2026, 11, 22, 23, 59)),
        "housing": act("NS/0003", HOUSING, "Check the tenancy", dt.datetime(2026, 11, 30, 9, 0)),
        "idva": act("NS/0001", IDVA, "Offer IDVA support", dt.datetime(2026, 11, 20, 9, 0)),
    }
    session.commit()
    with unaudited():  # an agency closed after its action was agreed
        session.execute(update(Agency).where(Agency.id == IDVA).values(active=False))
        session.commit()
    update_action(session, coord, a["csc_call"], expected_version=1, status="in_progress")
    update_action(session, coord, a["csc_done"], expected_version=1, status="done", note="Sent on Friday")
    session.commit()
    return a


CSC_BODY = f"""DA Daily - actions for Children's Social Care
Open actions overdue or due today, as at 23/11/2026 07:00 (UK time).

OVERDUE (2)
1. NS/0002 - due 19/11/2026 12:00 - in progress
   Call the school about attendance
   Owner: not named
2. NS/0001 - due 20/11/2026 17:00 - open
   Visit the family home
   Owner: J Smith

DUE TODAY (1)
1. NS/0003 - due 23/11/2026 16:00 - open
   Hold a strategy discussion
   Owner: not named

Update these actions (status and note) on the My actions page of DA Daily: {APP_URL}
Sign in to see the case context. Please do not reply to this email or forward it.
"""

PROBATION_BODY = f"""DA Daily - actions for Probation
Open actions overdue or due today, as at 23/11/2026 07:00 (UK time).

OVERDUE (0)
None.

DUE TODAY (1)
1. NS/0001 - due 23/11/2026 12:30 - open
   Check licence conditions
   Owner: not named

Update these actions (status and note) on the My actions page of DA Daily: {APP_URL}
Sign in to see the case context. Please do not reply to this email or forward it.
"""

SUBJECTS = {
    "Children's Social Care": "DA Daily: Children's Social Care - 2 overdue, 1 due today (23/11/2026)",
    "Health": "DA Daily: Health - 1 overdue, 0 due today (23/11/2026)",
    "Police": "DA Daily: Police - 1 overdue, 0 due today (23/11/2026)",
    "Probation": "DA Daily: Probation - 0 overdue, 1 due today (23/11/2026)",
}


def no_person_names(text: str) -> None:
    for name in (*VICTIM, *CHILD, "Larch Road"):
        assert name.lower() not in text.lower(), name


# ---------------------------------------------------------------------------------------------- the digest


def test_digests_per_agency_overdue_first_and_no_people(session):
    a = seed(session)
    digests = build_digests(session, NOW, mail_settings(None))
    assert [d["agency"] for d in digests] == ["Children's Social Care", "Health", "Police", "Probation"]
    by = {d["agency"]: d for d in digests}
    csc = by["Children's Social Care"]
    assert [r["id"] for r in csc["overdue"]] == [a["csc_call"], a["csc_visit"]]
    assert [r["id"] for r in csc["due_today"]] == [a["csc_strategy"]]
    assert csc["overdue"][1] == {"id": a["csc_visit"], "police_ref": "NS/0001", "due_at": dt.datetime(2026, 11, 20, 17),
                                 "status": "open", "description": "Visit the family home", "owner": "J Smith"}
    assert csc["body"] == CSC_BODY
    assert by["Probation"]["body"] == PROBATION_BODY
    assert {d["agency"]: d["subject"] for d in digests} == SUBJECTS
    assert (csc["recipients"], csc["recipients_from"]) == (["csc-mash@northshire.example.gov.uk"], "agency")
    assert (by["Probation"]["recipients"], by["Probation"]["recipients_from"]) == (
        ["p.one@probation.example.org", "p.two@probation.example.org"], "users")
    assert (by["Police"]["recipients"], by["Police"]["recipients_from"]) == ([], None)
    assert [r["id"] for r in by["Police"]["overdue"]] == [a["police_pnc"]]  # 23:59 yesterday: overdue
    for d in digests:
        no_person_names(d["subject"] + d["body"])
    # a minute after the strategy discussion is due it moves to overdue, still oldest first
    later = {d["agency"]: d for d in build_digests(session, dt.datetime(2026, 11, 23, 16, 1), mail_settings(None))}
    assert [r["id"] for r in later["Children's Social Care"]["overdue"]] == [a["csc_call"], a["csc_visit"],
                                                                             a["csc_strategy"]]
    assert later["Children's Social Care"]["due_today"] == []
    # the next day: the review is due today, the done action never appears
    tomorrow = {d["agency"]: d for d in build_digests(session, dt.datetime(2026, 11, 24, 7), mail_settings(None))}
    assert [r["id"] for r in tomorrow["Children's Social Care"]["due_today"]] == [a["csc_later"]]
    assert a["csc_done"] not in [r["id"] for d in tomorrow.values() for r in d["overdue"] + d["due_today"]]


def test_send_mails_each_agency_reports_failures_and_audits(session, smtp):
    handler, port = smtp
    a = seed(session)
    results = send_digests(session, NOW, send=True, settings=mail_settings(port), actor=ACTOR)
    summary = {r["agency"]: (r["recipients"], r["overdue"], r["due_today"], r["sent"]) for r in results}
    assert summary == {
        "Children's Social Care": (["csc-mash@northshire.example.gov.uk"], 2, 1, True),
        "Health": (["mash@reject.example.org"], 1, 0, False),
        "Police": ([], 1, 0, False),
        "Probation": (["p.one@probation.example.org", "p.two@probation.example.org"], 0, 1, True),
    }
    errors = {r["agency"]: r["error"] for r in results}
    assert errors["Children's Social Care"] is None and errors["Probation"] is None
    assert errors["Health"].startswith("SMTPRecipientsRefused") and "No such mailbox" in errors["Health"]
    assert errors["Police"].startswith("No recipients")
    json.dumps(results)  # JSON-able

    # the server got exactly two messages, the one from Probation's fallback addressed to both representatives
    got = handler.by_subject()
    assert set(got) == {SUBJECTS["Children's Social Care"], SUBJECTS["Probation"]}
    csc = got[SUBJECTS["Children's Social Care"]]
    assert csc["mail_from"] == "da-daily@northshire.example.gov.uk"
    assert csc["rcpt_tos"] == ["csc-mash@northshire.example.gov.uk"]
    assert csc["msg"]["To"] == "csc-mash@northshire.example.gov.uk"
    assert csc["msg"].get_content_type() == "text/plain" and not csc["msg"].is_multipart()
    assert csc["msg"].get_content().replace("\r\n", "\n") == CSC_BODY
    prob = got[SUBJECTS["Probation"]]
    assert prob["rcpt_tos"] == ["p.one@probation.example.org", "p.two@probation.example.org"]
    assert prob["msg"].get_content().replace("\r\n", "\n") == PROBATION_BODY
    for m in handler.messages:
        no_person_names(m["raw"].decode("utf-8", "replace"))
        assert "p.gone@" not in m["raw"].decode() and "casey@" not in m["raw"].decode()

    # one audit row per agency, committed, with the job's name
    session.rollback()
    rows = session.execute(select(AuditEvent).where(AuditEvent.action == "digest").order_by(AuditEvent.id)).scalars().all()
    assert [(r.entity, r.entity_id, r.outcome, r.username, r.user_id) for r in rows] == [
        ("agency", str(CSC), "ok", ACTOR, None), ("agency", str(HEALTH), "failed", ACTOR, None),
        ("agency", str(POLICE), "no_recipients", ACTOR, None), ("agency", str(PROBATION), "ok", ACTOR, None)]
    details = json.loads(rows[0].details)
    assert details["recipients"] == ["csc-mash@northshire.example.gov.uk"]
    assert details["action_ids"] == [a["csc_call"], a["csc_visit"], a["csc_strategy"]]
    assert (details["overdue"], details["due_today"], details["as_at"]) == (2, 1, "2026-11-23T07:00")


def test_dry_run_sends_nothing_and_audits_the_read(session, smtp):
    handler, port = smtp
    seed(session)
    before = session.execute(select(AuditEvent.id)).scalars().all()
    results = send_digests(session, NOW, send=False, settings=mail_settings(port), actor=ACTOR)
    assert [(r["agency"], r["sent"]) for r in results] == [("Children's Social Care", False), ("Health", False),
                                                           ("Police", False), ("Probation", False)]
    assert results[0]["body"] == CSC_BODY and results[0]["error"] is None
    assert results[2]["error"].startswith("No recipients")
    assert handler.messages == []
    session.commit()
    new = session.execute(select(AuditEvent).where(AuditEvent.id.not_in(before))).scalars().all()
    assert [(e.action, e.entity, e.username) for e in new] == [("view", "action", ACTOR)]


def test_sending_without_a_host_is_refused_before_anything(session):
    seed(session)
    with pytest.raises(MailNotConfigured):
        send_digests(session, NOW, send=True, settings=mail_settings(None))
    assert session.execute(select(AuditEvent).where(AuditEvent.action == "digest")).first() is None


def test_an_injected_agency_address_fails_that_agency_only(session, smtp):
    handler, port = smtp
    seed(session)
    with unaudited():
        session.execute(update(Agency).where(Agency.id == HEALTH).values(
            email="health@nhs.example.org\r\nBcc: evil@example.org"))
        session.commit()
    results = {r["agency"]: r for r in send_digests(session, NOW, send=True, settings=mail_settings(port))}
    assert results["Health"]["sent"] is False and results["Health"]["error"].startswith("ValueError")
    assert results["Children's Social Care"]["sent"] and results["Probation"]["sent"]
    assert all("evil@" not in m["raw"].decode() and "nhs.example.org" not in str(m["rcpt_tos"])
               for m in handler.messages)
    assert len(handler.messages) == 2


def test_nothing_due_no_digest(session):
    assert build_digests(session, NOW, mail_settings(None)) == []


# ---------------------------------------------------------------------------------------------- core.mail


def test_send_mail_plain_text_utf8(smtp):
    handler, port = smtp
    body = "Line one – with a dash\n.starts with a dot\n" + "x" * 200 + "\n"
    refused = send_mail(["one@example.org", " two@example.org "], "Subject – ok", body, mail_settings(port))
    assert refused == {}
    [m] = handler.messages
    assert m["rcpt_tos"] == ["one@example.org", "two@example.org"]
    assert m["msg"]["Subject"] == "Subject – ok" and m["msg"]["Auto-Submitted"] == "auto-generated"
    assert m["msg"].get_content_type() == "text/plain" and m["msg"].get_content_charset() == "utf-8"
    assert m["msg"].get_content().replace("\r\n", "\n") == body  # CRLF on the wire


@pytest.mark.parametrize("to,subject", [
    (["a@example.org"], "Hello\r\nBcc: evil@example.org"),
    (["a@example.org"], "Hello\nX-Injected: 1"),
    (["a@example.org"], "Hello\rthere"),
    (["a@example.org\r\nBcc: evil@example.org"], "Hello"),
    (["a@example.org\n"], "Hello"),
])
def test_header_injection_is_refused_and_nothing_sent(smtp, to, subject):
    handler, port = smtp
    with pytest.raises(HeaderInjection):
        send_mail(to, subject, "body", mail_settings(port))
    assert handler.messages == []


@pytest.mark.parametrize("to", [[], ["not-an-address"], ["a@example.org, b@example.org"], ["Name <a@example.org>"]])
def test_bad_addresses_are_refused(smtp, to):
    handler, port = smtp
    with pytest.raises(ValueError):
        send_mail(to, "Hello", "body", mail_settings(port))
    assert handler.messages == []


def test_bad_sender_is_refused(smtp):
    handler, port = smtp
    with pytest.raises(HeaderInjection):
        send_mail(["a@example.org"], "Hello", "body", mail_settings(port, mail_from="x@example.org\nBcc: e@x.org"))
    assert handler.messages == []


def test_mail_not_configured():
    with pytest.raises(MailNotConfigured, match="DV_SMTP_HOST"):
        send_mail(["a@example.org"], "Hello", "body", mail_settings(None))


def test_all_recipients_refused_raises(smtp):
    import smtplib

    handler, port = smtp
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        send_mail(["x@reject.example.org"], "Hello", "body", mail_settings(port))
    assert send_mail(["x@reject.example.org", "ok@example.org"], "Hello", "body", mail_settings(port)) == {
        "x@reject.example.org": (550, b"5.1.1 No such mailbox here")}
    assert [m["rcpt_tos"] for m in handler.messages] == [["ok@example.org"]]


# ---------------------------------------------------------------------------------------------- job list


def test_job_list_actions(session):
    a = seed(session)
    rows = job_list_actions(session, "children's social care", ["open"], now=NOW, actor=ACTOR)
    assert rows == [
        {"id": a["csc_visit"], "police_ref": "NS/0001", "agency": "Children's Social Care",
         "description": "Visit the family home", "owner": "J Smith", "due_at": "2026-11-20T17:00", "status": "open",
         "note": None, "overdue": True},
        {"id": a["csc_strategy"], "police_ref": "NS/0003", "agency": "Children's Social Care",
         "description": "Hold a strategy discussion", "owner": None, "due_at": "2026-11-23T16:00", "status": "open",
         "note": None, "overdue": False},
        {"id": a["csc_later"], "police_ref": "NS/0001", "agency": "Children's Social Care",
         "description": "Review the plan", "owner": None, "due_at": "2026-11-24T10:00", "status": "open",
         "note": None, "overdue": False},
    ]
    every = [r["id"] for r in job_list_actions(session, "Children's Social Care", now=NOW)]
    assert every == [a["csc_call"], a["csc_visit"], a["csc_strategy"], a["csc_later"], a["csc_done"]]
    assert [r["id"] for r in job_list_actions(session, overdue_only=True, now=NOW)] == [
        a["csc_call"], a["health_gp"], a["idva"], a["csc_visit"], a["police_pnc"]]
    done = job_list_actions(session, statuses=["done"], now=NOW)
    assert [(r["id"], r["note"], r["overdue"]) for r in done] == [(a["csc_done"], "Sent on Friday", False)]
    with pytest.raises(UnknownAgency) as exc:
        job_list_actions(session, "Fire Service")
    assert str(exc.value) == ("No agency called 'Fire Service'. Known agencies: Adult Social Care, Children's Social "
                              "Care, Education, Health, Housing, IDVA, Police, Probation.")


# ---------------------------------------------------------------------------------------------- the CLI


def dv(*args, db_url: str, env: dict | None = None):
    full = {k: v for k, v in os.environ.items() if not k.startswith("DV_SMTP_")}
    full.update(DATABASE_URL=db_url, DV_APP_URL=APP_URL, DV_MAIL_FROM="da-daily@northshire.example.gov.uk")
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "dv", *args], cwd=ROOT, env=full, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def cli_db(tmp_path):
    """A migrated SQLite file holding ``seed``'s data; yields (url, action ids)."""
    from core.db import get_engine, migrate

    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    migrate(url)
    try:
        with Session(get_engine(url), expire_on_commit=False) as s:
            ids = seed(s)
    finally:
        dispose_engine(url)
    yield url, ids
    dispose_engine(url)


def test_cli_list(cli_db):
    url, a = cli_db
    out = dv("actions", "list", "--agency", "Children's Social Care", "--status", "open", "--json",
             "--now", "2026-11-23T07:00", db_url=url)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [(r["id"], r["due_at"], r["status"], r["overdue"]) for r in rows] == [
        (a["csc_visit"], "2026-11-20T17:00", "open", True), (a["csc_strategy"], "2026-11-23T16:00", "open", False),
        (a["csc_later"], "2026-11-24T10:00", "open", False)]
    assert set(rows[0]) == {"id", "police_ref", "agency", "description", "owner", "due_at", "status", "note",
                            "overdue"}
    out = dv("actions", "list", "--status", "in_progress", "done", "--json", "--now", "2026-11-23T07:00", db_url=url)
    assert [(r["id"], r["status"]) for r in json.loads(out.stdout)] == [(a["csc_call"], "in_progress"),
                                                                         (a["csc_done"], "done")]
    out = dv("actions", "list", "--overdue", "--agency", "health", "--now", "2026-11-23T07:00", db_url=url)
    assert out.returncode == 0
    assert out.stdout == (f"#{a['health_gp']} NS/0002 | Health | due 2026-11-20 09:00 | open | OVERDUE | "
                          "Tell the GP | owner Dr Patel\n")
    out = dv("actions", "list", "--agency", "Housing", "--status", "done", db_url=url)
    assert (out.returncode, out.stdout) == (0, "No actions.\n")


def test_cli_list_unknown_agency_and_bad_status(cli_db):
    url, _ = cli_db
    out = dv("actions", "list", "--agency", "Fire Service", "--json", db_url=url)
    assert out.returncode == 2 and out.stdout == ""
    assert "No agency called 'Fire Service'. Known agencies: Adult Social Care, Children's Social Care" in out.stderr
    out = dv("actions", "list", "--status", "finished", db_url=url)
    assert out.returncode == 2 and "invalid choice" in out.stderr


def test_cli_digest_dry_run(cli_db, smtp):
    url, a = cli_db
    handler, port = smtp
    out = dv("actions", "digest", "--json", "--now", "2026-11-23T07:00", db_url=url,
             env={"DV_SMTP_HOST": "127.0.0.1", "DV_SMTP_PORT": str(port)})
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert [(d["agency"], d["recipients"], d["overdue"], d["due_today"], d["sent"]) for d in body] == [
        ("Children's Social Care", ["csc-mash@northshire.example.gov.uk"], 2, 1, False),
        ("Health", ["mash@reject.example.org"], 1, 0, False),
        ("Police", [], 1, 0, False),
        ("Probation", ["p.one@probation.example.org", "p.two@probation.example.org"], 0, 1, False)]
    assert body[0]["body"] == CSC_BODY and body[0]["subject"] == SUBJECTS["Children's Social Care"]
    assert body[0]["action_ids"] == [a["csc_call"], a["csc_visit"], a["csc_strategy"]]
    assert handler.messages == []
    text = dv("actions", "digest", "--now", "2026-11-23T07:00", db_url=url)
    assert text.returncode == 0
    assert text.stdout.startswith("== Children's Social Care: 2 overdue, 1 due today; to "
                                  "csc-mash@northshire.example.gov.uk (dry run, not sent)\n"
                                  "Subject: " + SUBJECTS["Children's Social Care"] + "\n\n"
                                  + CSC_BODY)
    no_person_names(text.stdout)
    quiet = dv("actions", "digest", "--now", "2026-11-10T07:00", db_url=url)
    assert (quiet.returncode, quiet.stdout) == (0, "No agency has actions overdue or due today.\n")


def test_cli_digest_send(cli_db, smtp):
    from core.db import get_engine

    url, _ = cli_db
    handler, port = smtp
    out = dv("actions", "digest", "--send", "--json", "--now", "2026-11-23T07:00", db_url=url,
             env={"DV_SMTP_HOST": "127.0.0.1", "DV_SMTP_PORT": str(port)})
    assert out.returncode == 3, out.stderr  # Health refused, Police has nobody: reported, the others sent
    body = json.loads(out.stdout)
    assert [(d["agency"], d["sent"]) for d in body] == [("Children's Social Care", True), ("Health", False),
                                                         ("Police", False), ("Probation", True)]
    assert set(handler.by_subject()) == {SUBJECTS["Children's Social Care"], SUBJECTS["Probation"]}
    assert handler.by_subject()[SUBJECTS["Probation"]]["msg"].get_content().replace("\r\n", "\n") == PROBATION_BODY
    try:
        with Session(get_engine(url)) as s:
            rows = s.execute(select(AuditEvent.entity_id, AuditEvent.outcome, AuditEvent.username)
                             .where(AuditEvent.action == "digest").order_by(AuditEvent.id)).all()
    finally:
        dispose_engine(url)
    assert [(r[0], r[1]) for r in rows] == [(str(CSC), "ok"), (str(HEALTH), "failed"), (str(POLICE), "no_recipients"),
                                            (str(PROBATION), "ok")]
    assert all(r[2].startswith("cli") for r in rows)


def test_cli_digest_send_all_good_exits_0(cli_db, smtp):
    url, _ = cli_db
    _, port = smtp
    # on the 19th only CSC's call is due (today): every digest with something in it goes, exit 0
    out = dv("actions", "digest", "--send", "--now", "2026-11-19T07:00", db_url=url,
             env={"DV_SMTP_HOST": "127.0.0.1", "DV_SMTP_PORT": str(port)})
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout == ("== Children's Social Care: 0 overdue, 1 due today; to csc-mash@northshire.example.gov.uk "
                          "(sent)\n")


def test_cli_digest_send_without_host_exits_2(cli_db):
    url, _ = cli_db
    out = dv("actions", "digest", "--send", "--json", db_url=url)
    assert out.returncode == 2 and out.stdout == ""
    assert "No SMTP host is set: set DV_SMTP_HOST" in out.stderr
