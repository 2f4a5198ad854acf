"""Chasing actions between meetings, for scheduled jobs (``python -m dv actions ...``): the daily digest each agency
gets of its open actions overdue or due today, and the job's action list.

The jobs have no signed-in user: they read the whole hub (like the 06:30 agenda job) and every read and every
email is audited with the job's ``actor`` name (e.g. ``cli:cron``).

A digest holds only what is in the agency's action rows: police reference, due date-time (Europe/London
wall-clock, as stored), status, description and the named owner. Never the people of the notification.
"""
from __future__ import annotations

import datetime as dt
import re
import smtplib

from sqlalchemy import select
from sqlmodel import Session

from core import audit
from core.mail import MailError, MailNotConfigured, send_mail
from core.models import Agency, User, UserRole
from core.settings import Settings, get_settings
from core.timeutil import london_now
from dv.models import Notification
from meetings.actions import CLOSED_STATUSES, OPEN_STATUSES, chase_list
from meetings.models import Action, ActionStatus

A = Action.__table__
N = Notification.__table__
G = Agency.__table__
U = User.__table__
DIGEST_LIMIT = 1000  # actions listed per agency; more are counted and the mail says so
_SPLIT = re.compile(r"[,;\s]+")


class UnknownAgency(ValueError):
    def __init__(self, name: str, known: list[str]):
        super().__init__(f"No agency called {name!r}. Known agencies: {', '.join(known) or 'none'}.")
        self.known = known


def _job(actor: str | None) -> dict:
    return {"username": actor or "scheduled job"}


def _status(value) -> str:
    return str(getattr(value, "value", value))


def _when(value: dt.datetime | None) -> str:
    return value.strftime("%d/%m/%Y %H:%M") if value else "no due date"


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


# ------------------------------------------------------------------------------------------------ the list


def job_list_actions(session: Session, agency_name: str | None = None, statuses=None, overdue_only: bool = False,
                     now: dt.datetime | None = None, *, actor: str | None = None) -> list[dict]:
    """Every action in the hub (the scheduled job's read; audited), optionally one agency's (by name, any case)
    and some statuses: overdue first (oldest due first), then due today, then the other open ones, then the closed
    ones, most recently closed first. ``overdue_only``: open actions due before ``now``. Raises UnknownAgency."""
    now = now or london_now()
    today_end = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time())
    wanted = {ActionStatus(s).value for s in statuses} if statuses else None
    conn = session.connection()
    agency_id = None
    if agency_name is not None:
        agencies = {name.lower(): (id_, name) for id_, name in conn.execute(select(G.c.id, G.c.name))}
        found = agencies.get(agency_name.strip().lower())
        if found is None:
            raise UnknownAgency(agency_name, sorted(name for _, name in agencies.values()))
        agency_id = found[0]
    base = (select(A.c.id, N.c.police_ref, G.c.name.label("agency"), A.c.description, A.c.owner, A.c.due_at,
                   A.c.status, A.c.note)
            .join(N, N.c.id == A.c.notification_id).join(G, G.c.id == A.c.agency_id))
    if agency_id is not None:
        base = base.where(A.c.agency_id == agency_id)

    def run(status_values, where, order) -> list[dict]:
        keep = [s for s in status_values if wanted is None or s in wanted]
        if not keep:
            return []
        return [dict(r) for r in conn.execute(base.where(A.c.status.in_(keep), *where).order_by(*order)).mappings()]

    rows = run(OPEN_STATUSES, [A.c.due_at < now], [A.c.due_at, A.c.id])
    if not overdue_only:
        rows += run(OPEN_STATUSES, [A.c.due_at >= now, A.c.due_at < today_end], [A.c.due_at, A.c.id])
        rows += run(OPEN_STATUSES, [(A.c.due_at >= today_end) | A.c.due_at.is_(None)],
                    [A.c.due_at.is_(None), A.c.due_at, A.c.id])
        rows += run(CLOSED_STATUSES, [], [A.c.completed_at_utc.desc(), A.c.id.desc()])
    out = []
    for r in rows:
        status = _status(r["status"])
        out.append({"id": r["id"], "police_ref": r["police_ref"], "agency": r["agency"],
                    "description": r["description"], "owner": r["owner"],
                    "due_at": r["due_at"].isoformat(timespec="minutes") if r["due_at"] else None,
                    "status": status, "note": r["note"],
                    "overdue": status in OPEN_STATUSES and r["due_at"] is not None and r["due_at"] < now})
    ids = [r["id"] for r in out]
    audit.record(session, None, "view", "action", None, listed="actions list", agency=agency_name,
                 statuses=sorted(wanted) if wanted else None, overdue_only=overdue_only, rows=len(out),
                 ids=ids if len(ids) <= 500 else None, **_job(actor))
    return out


# ------------------------------------------------------------------------------------------------ the digest


def agency_recipients(session: Session, agency_id: int, agency_email: str | None) -> tuple[list[str], str | None]:
    """The agency's own address(es) when set, else the emails of its active agency representatives.
    Returns (addresses, "agency" | "users" | None)."""
    own = [a for a in _SPLIT.split(agency_email or "") if a]
    if own:
        return list(dict.fromkeys(own)), "agency"
    users = session.connection().execute(
        select(U.c.email).where(U.c.agency_id == agency_id, U.c.role == UserRole.agency.value,
                                U.c.disabled.is_(False), U.c.email.is_not(None)).order_by(U.c.email)).scalars()
    found = list(dict.fromkeys(e.strip() for e in users if e and e.strip()))
    return found, ("users" if found else None)


def _row(r: dict) -> dict:
    return {"id": r["id"], "police_ref": r["police_ref"], "due_at": r["due_at"], "status": _status(r["status"]),
            "description": r["description"], "owner": r["owner"]}


def _lines(rows: list[dict]) -> list[str]:
    lines = []
    for i, r in enumerate(rows, 1):
        lines.append(f"{i}. {r['police_ref']} - due {_when(r['due_at'])} - {r['status'].replace('_', ' ')}")
        lines.append(f"   {_one_line(r['description'])}")
        lines.append(f"   Owner: {_one_line(r['owner']) or 'not named'}")
    return lines


def digest_text(agency: str, overdue: list[dict], due_today: list[dict], now: dt.datetime, app_url: str,
                more: int = 0) -> tuple[str, str]:
    """(subject, body) of one agency's digest."""
    subject = (f"DA Daily: {_one_line(agency)} - {len(overdue)} overdue, {len(due_today)} due today "
               f"({now:%d/%m/%Y})")
    body = [f"DA Daily - actions for {_one_line(agency)}",
            f"Open actions overdue or due today, as at {now:%d/%m/%Y %H:%M} (UK time).", ""]
    body += [f"OVERDUE ({len(overdue)})"] + (_lines(overdue) or ["None."]) + [""]
    body += [f"DUE TODAY ({len(due_today)})"] + (_lines(due_today) or ["None."]) + [""]
    if more:
        body += [f"{more} more not listed here: see DA Daily for all of them.", ""]
    body += [f"Update these actions (status and note) on the My actions page of DA Daily: {app_url}",
             "Sign in to see the case context. Please do not reply to this email or forward it.", ""]
    return subject, "\n".join(body)


def build_digests(session: Session, now: dt.datetime | None = None, settings: Settings | None = None) -> list[dict]:
    """One digest per active agency with at least one open action overdue or due today, by agency name: agency,
    recipients, overdue and due-today rows (overdue first, oldest due first), subject and plain-text body."""
    settings = settings or get_settings()
    now = now or london_now()
    conn = session.connection()
    digests = []
    for agency in conn.execute(select(G.c.id, G.c.name, G.c.email).where(G.c.active.is_(True))
                               .order_by(G.c.name)).mappings():
        rows = chase_list(None, None, agency_id=agency["id"], now=now, limit=DIGEST_LIMIT + 1, conn=conn)
        if not rows:
            continue
        more = 0
        if len(rows) > DIGEST_LIMIT:
            rows = rows[:DIGEST_LIMIT]
            more = None  # counted below
        overdue = [_row(r) for r in rows if r["overdue"]]
        due_today = [_row(r) for r in rows if not r["overdue"]]
        if more is None:
            more = _count_chased(conn, agency["id"], now) - DIGEST_LIMIT
        recipients, source = agency_recipients(session, agency["id"], agency["email"])
        subject, body = digest_text(agency["name"], overdue, due_today, now, settings.app_url, more)
        digests.append({"agency_id": agency["id"], "agency": agency["name"], "recipients": recipients,
                        "recipients_from": source, "overdue": overdue, "due_today": due_today, "more": more,
                        "subject": subject, "body": body})
    return digests


def _count_chased(conn, agency_id: int, now: dt.datetime) -> int:
    from sqlalchemy import func

    today_end = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time())
    return conn.execute(select(func.count()).where(A.c.agency_id == agency_id, A.c.status.in_(OPEN_STATUSES),
                                                   A.c.due_at < today_end)).scalar_one()


def send_digests(session: Session, now: dt.datetime | None = None, send: bool = False,
                 settings: Settings | None = None, *, actor: str | None = None) -> list[dict]:
    """Build the digests; with ``send`` email each to its agency through ``core.mail``. Returns, per agency, a
    JSON-able summary: agency, recipients, overdue and due_today counts, action ids, subject, body, sent, error.

    An agency without recipients, or whose mail the SMTP server refuses, is reported (``sent`` false, ``error``)
    and the others still go. Sending writes one audit row per agency (``digest``, outcome ok / failed /
    no_recipients) and commits after each, so the record of a mail that went survives a later failure. A dry run
    writes one ``view`` audit row. Raises MailNotConfigured when sending without an SMTP host."""
    settings = settings or get_settings()
    now = now or london_now()
    if send and not settings.smtp_host:
        raise MailNotConfigured("No SMTP host is set (DV_SMTP_HOST): nothing was sent.")
    results = []
    for d in build_digests(session, now, settings):
        ids = [r["id"] for r in d["overdue"] + d["due_today"]]
        result = {"agency_id": d["agency_id"], "agency": d["agency"], "recipients": d["recipients"],
                  "recipients_from": d["recipients_from"], "overdue": len(d["overdue"]),
                  "due_today": len(d["due_today"]), "more": d["more"], "action_ids": ids, "subject": d["subject"],
                  "body": d["body"], "sent": False, "error": None}
        if not d["recipients"]:
            result["error"] = ("No recipients: set the agency's email, or an email on one of its agency "
                               "representatives' accounts.")
        results.append(result)
        if not send:
            continue
        outcome = "no_recipients"
        if d["recipients"]:
            try:
                refused = send_mail(d["recipients"], d["subject"], d["body"], settings)
            except (MailError, ValueError, smtplib.SMTPException, OSError) as exc:
                result["error"] = f"{type(exc).__name__}: {exc}"
                outcome = "failed"
            else:
                result["sent"] = True
                outcome = "ok"
                if refused:
                    result["error"] = "Refused by the mail server: " + ", ".join(sorted(refused))
        audit.record(session, None, "digest", "agency", d["agency_id"], outcome=outcome,
                     recipients=d["recipients"], overdue=result["overdue"], due_today=result["due_today"],
                     action_ids=ids, error=result["error"], as_at=now.isoformat(timespec="minutes"), **_job(actor))
        session.commit()
    if not send:
        audit.record(session, None, "view", "action", None, listed="actions digest (dry run)",
                     agencies={r["agency"]: r["action_ids"] for r in results},
                     as_at=now.isoformat(timespec="minutes"), **_job(actor))
    return results
