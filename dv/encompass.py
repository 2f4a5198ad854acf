"""Operation Encompass: an alert for every school-age child of every imported notification, due at the start of
the child's setting's next school day, delivered through the school portal with an email notice, and proved.

* **Which children**: every child 4 to 17 on the incident date (nursery settings, under 4, only with
  ``DV_ENCOMPASS_NURSERY``), crime or non-crime, present or not, whose setting is known or to be resolved. A child
  with no date of birth gets an alert when a setting was typed (the age cannot rule them out).
* **Setting**: the name the police typed is resolved by ``dv.schools.SchoolResolver``. Not certain: the alert
  waits in the coordinator's **To resolve** queue with the candidates and why. "Home educated": the council's
  elective home education officer (setting ``EHE``).
* **Deadline**: ``dv.schooldays`` (that setting's term dates, INSET days, weekends, bank holidays).
* **Content**: ``ALERT_FIELDS`` (or the subset ``DV_ENCOMPASS_FIELDS``); ``disclosed`` holds exactly what the
  setting is shown, frozen once the notice is sent.
* **Delivery**: ``send_notices`` emails the setting's key adults that an alert is waiting (no names, no details)
  and marks it notified; the key adult reads and acknowledges it in the portal. ``escalate`` flags alerts still
  not acknowledged ``DV_ALERT_ESCALATION_MINUTES`` after their deadline and tells the coordinators.

A school key adult sees only its own URN's alerts, and only the fields that were disclosed.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import re
import statistics
import unicodedata
from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import insert, select, update
from sqlmodel import Session

from core import audit
from core.db import checked_update
from core.models import AuditEvent, User, UserRole
from core.scope import changeable, refuse, require, visible
from core.settings import Settings, get_settings
from core.timeutil import london_now, london_to_utc, utc_to_london, utcnow
from dv.models import (AlertStatus, EncompassAlert, Notification, NotificationPerson, PersonRole, School,
                       SchoolResolution)

E = EncompassAlert.__table__
N = Notification.__table__
NP = NotificationPerson.__table__
S = School.__table__
EHE_URN = "EHE"
ALERT_FIELDS = ("child", "child_dob", "setting", "police_ref", "incident_date", "incident_time", "place",
                "present", "circumstances", "risk")
FIELD_LABELS = {"child": "Child", "child_dob": "Date of birth", "setting": "Setting", "police_ref": "Police reference",
                "incident_date": "Date", "incident_time": "Time", "place": "Place", "present": "Child present",
                "circumstances": "What happened", "risk": "Risk level"}
CIRCUMSTANCES_MAX = 600  # "brief circumstances"
NOTICE_SUBJECT = "DA Daily: a new Operation Encompass notification is waiting"
# Alerts still waiting for their school to read them: not acknowledged, and not withdrawn (see generate_alerts)
WAITING = E.c.status.not_in([AlertStatus.acknowledged.value, AlertStatus.withdrawn.value])


class Conflict(Exception):
    def __init__(self, current: dict | None, message: str | None = None):
        super().__init__(message or "This alert was changed by someone else after you opened it; look again.")
        self.current = current


# ------------------------------------------------------------------------------------------------ who gets one


def age_on(dob: dt.date, day: dt.date) -> int:
    return day.year - dob.year - ((day.month, day.day) < (dob.month, dob.day))


def child_key(surname: str | None, forename: str | None, dob: dt.date | None) -> str:
    return f"{_key_part(surname)}|{_key_part(forename)}|{dob.isoformat() if dob else ''}"[:255]


@functools.lru_cache(maxsize=16384)  # names repeat across an import; a pure function of its argument
def _key_part(text: str | None) -> str:
    text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z]", "", text)


def _in_scope(dob: dt.date | None, typed: str | None, incident: dt.date, settings: Settings) -> bool:
    if dob is None:
        return bool((typed or "").strip())
    age = age_on(dob, incident)
    if 4 <= age <= 17:
        return True
    return settings.encompass_nursery and 0 <= age < 4 and bool((typed or "").strip())


def _disclosed(child: dict, setting_name: str | None, settings: Settings) -> dict:
    """What the setting is shown: the issue's minimum, or the configured subset of it."""
    full = _notification_part(child)
    full.update(_child_part(child, setting_name))
    return {k: full[k] for k in _wanted(settings)}


def _wanted(settings: Settings) -> list[str]:
    return [f for f in (settings.encompass_fields or ALERT_FIELDS) if f in ALERT_FIELDS]


def _notification_part(child: dict) -> dict:
    """The disclosed fields that come from the notification (the same for each of its children)."""
    incident = child["incident_at"]
    text = (child.get("circumstances") or "").strip()
    if len(text) > CIRCUMSTANCES_MAX:
        text = text[:CIRCUMSTANCES_MAX].rsplit(" ", 1)[0] + " …"
    return {
        "police_ref": child["police_ref"],
        "incident_date": _dmy(incident) if incident else None,
        "incident_time": f"{incident.hour:02d}:{incident.minute:02d}" if incident else None,
        "place": child.get("location") or child.get("postcode"),
        "circumstances": text or None,
        "risk": (getattr(child.get("risk"), "value", child.get("risk")) or "not_assessed").replace("_", " "),
    }


_PRESENT = {True: "yes", False: "no"}


def _dmy(day: dt.date) -> str:
    """``day.strftime("%d/%m/%Y")``, without strftime's cost for the usual four-digit year."""
    return f"{day.day:02d}/{day.month:02d}/{day.year}" if day.year >= 1000 else day.strftime("%d/%m/%Y")


def _child_part(child: dict, setting_name: str | None) -> dict:
    """The disclosed fields that are the child's own."""
    dob = child.get("dob")
    return {
        "child": ", ".join(x for x in (child.get("surname"), child.get("forename")) if x) or None,
        "child_dob": _dmy(dob) if dob else None,
        "setting": setting_name,
        "present": _PRESENT.get(child.get("present"), "not known"),
    }


def _children(conn, notification_ids: list[int]) -> list[dict]:
    stmt = (select(NP.c.id.label("link_id"), NP.c.notification_id, NP.c.surname, NP.c.forename, NP.c.dob,
                   NP.c.school_name, NP.c.present, N.c.police_ref, N.c.incident_at, N.c.location, N.c.postcode,
                   N.c.circumstances, N.c.risk)
            .join(N, N.c.id == NP.c.notification_id)
            .where(NP.c.notification_id.in_(notification_ids), NP.c.role == PersonRole.child.value)
            .order_by(NP.c.notification_id, NP.c.position))
    return [dict(r) for r in conn.execute(stmt).mappings()]


def _school_names(conn, urns: Iterable[str]) -> dict[str, str]:
    urns = sorted({u for u in urns if u})
    return dict(conn.execute(select(S.c.urn, S.c.name).where(S.c.urn.in_(urns))).all()) if urns else {}


# json.dumps(value, sort_keys=True), without building an encoder for every alert
_dumps_sorted = json.JSONEncoder(sort_keys=True).encode

_encode_text = json.encoder.encode_basestring_ascii  # what json.dumps writes for a str key or value
_CHILD_FIELDS = frozenset({"child", "child_dob", "setting", "present"})  # _child_part's keys


def _json_pair(key: str, value: str | None) -> str:
    """One '"key": value' of ``json.dumps``'s default output, for a text or None value."""
    return f"{_encode_text(key)}: {'null' if value is None else _encode_text(value)}"


ALERT_COLUMNS = ("notification_id", "child_link_id", "child_key", "school_urn", "school_typed", "resolution",
                 "candidates", "incident_at", "due_at", "status", "disclosed", "created_at_utc", "version")


class AlertRows:
    """Makes the alert rows (``ALERT_COLUMNS``) of children, with everything that repeats across an import worked
    out once: each typed school's resolution, each setting's name, each deadline. ``counts`` adds up as it goes.

    ``resolver`` returns the ``SchoolResolver`` (called once, when the first child needs a school);
    ``school_name(urn)`` the name of a setting. ``generate_alerts`` reads both from the database; an import
    (``dv.importer``) builds the resolver on its writer thread and makes the rows of the notifications it creates
    as it writes them, straight from the parsed values (the same values the database would give back)."""

    def __init__(self, settings: Settings, resolver, school_name):
        from dv.schooldays import load_term_dates

        self.settings = settings
        self.terms = load_term_dates()
        self.starts = self.terms.school_day_starts
        self._resolver_factory = resolver
        self._resolver = None
        self._school_name = school_name
        self.deadlines: dict[tuple, dt.datetime] = {}  # (calendar, day, before the school day starts) -> deadline
        self.calendars: dict[str | None, int] = {}  # urn -> its calendar's identity (self.terms holds them all)
        self.resolved: dict[str, tuple] = {}  # typed name -> (urn, resolution, candidates JSON): an extract repeats
        self.names: dict[str, str | None] = {}  # urn -> school name
        self.wanted = _wanted(settings)
        self.wanted_set = frozenset(self.wanted)
        self.sorted_wanted = sorted(self.wanted_set)  # json.dumps(..., sort_keys=True) order
        self.now = utcnow()
        self.counts = {"created": 0, "to_resolve": 0, "home_educated": 0, "relinked": 0, "not_school_age": 0,
                       "rerouted": 0, "withdrawn": 0}

    def deadline(self, urn: str | None, incident: dt.datetime) -> dt.datetime:
        # Settings on the authority's calendar (nearly all) share one answer per day: keyed by calendar, not URN.
        calendar = self.calendars.get(urn)
        if calendar is None:
            calendar = self.calendars[urn] = id(self.terms.calendar(urn))
        key = (calendar, incident.date(), incident.time() < self.starts)
        found = self.deadlines.get(key)
        if found is None:
            found = self.deadlines[key] = self.terms.deadline(urn, incident)
        return found

    def _resolve(self, typed: str) -> tuple:
        if self._resolver is None:
            self._resolver = self._resolver_factory()
        res = self._resolver.resolve(typed)
        if res.home_educated:
            urn, resolution = EHE_URN, SchoolResolution.home_educated
        elif res.urn and res.certain:
            urn, resolution = res.urn, SchoolResolution.resolved
        else:
            urn, resolution = None, SchoolResolution.to_resolve
        if urn is not None and urn not in self.names:
            self.names[urn] = self._school_name(urn)
        candidates = (json.dumps({"why": res.reason, "candidates": res.candidates}, default=str)
                      if resolution == SchoolResolution.to_resolve else None)
        return urn, resolution, candidates

    def resolve(self, typed: str) -> tuple:
        """(urn, resolution, candidates JSON) of a typed name, each name resolved once."""
        found = self.resolved.get(typed)
        if found is None:
            found = self.resolved[typed] = self._resolve(typed)
        return found

    def row(self, child: dict, key: str, notification_part: dict | None = None) -> tuple | None:
        """The alert row of one child (``_children``'s keys; ``key``: its ``child_key``), or None when the child
        gets none (counted as not of school age). ``notification_part``: ``_notification_part(child)``, when the
        caller has it already (it is the same for every child of a notification)."""
        counts = self.counts
        incident = child["incident_at"]
        if incident is None or not _in_scope(child["dob"], child["school_name"], incident.date(), self.settings):
            counts["not_school_age"] += 1
            return None
        typed = child["school_name"] or ""
        urn, resolution, candidates = self.resolve(typed)
        counts["created"] += 1
        counts["to_resolve"] += resolution == SchoolResolution.to_resolve
        counts["home_educated"] += resolution == SchoolResolution.home_educated
        return (child["notification_id"], child["link_id"], key, urn, typed or None, resolution, candidates,
                incident, self.deadline(urn if resolution == SchoolResolution.resolved else None, incident),
                AlertStatus.queued, self._disclosed_json(child, self.names.get(urn), notification_part), self.now, 1)

    def rows_for(self, notification: dict, children: list[tuple]) -> list[tuple]:
        """The alert rows of a new notification's children, none of whom can have an alert yet: ``row`` for
        each, with the notification's part of what is disclosed encoded once. ``notification``: police_ref,
        incident_at, location, postcode, circumstances, risk; ``children``: (notification id, link id, surname,
        forename, dob, typed school, present) tuples."""
        out = []
        incident = notification["incident_at"]
        if incident is None:
            self.counts["not_school_age"] += len(children)
            return out
        day, settings, counts, resolved = incident.date(), self.settings, self.counts, self.resolved
        child_wanted = self.wanted_set & _CHILD_FIELDS
        pieces = None
        for notification_id, link_id, surname, forename, dob, typed, present in children:
            if not _in_scope(dob, typed, day, settings):
                counts["not_school_age"] += 1
                continue
            if pieces is None:
                pieces = {k: _json_pair(k, v) for k, v in _notification_part(notification).items()
                          if k in self.wanted_set}
            typed = typed or ""
            found = resolved.get(typed)
            if found is None:
                found = resolved[typed] = self._resolve(typed)
            urn, resolution, candidates = found
            counts["created"] += 1
            counts["to_resolve"] += resolution == SchoolResolution.to_resolve
            counts["home_educated"] += resolution == SchoolResolution.home_educated
            disclosed = dict(pieces)  # and the child's own part, as _child_part makes it
            if child_wanted:
                if "child" in child_wanted:
                    disclosed["child"] = _json_pair("child", ", ".join([x for x in (surname, forename) if x]) or None)
                if "child_dob" in child_wanted:
                    disclosed["child_dob"] = _json_pair("child_dob", _dmy(dob) if dob else None)
                if "setting" in child_wanted:
                    disclosed["setting"] = _json_pair("setting", self.names.get(urn))
                if "present" in child_wanted:
                    disclosed["present"] = _json_pair("present", _PRESENT.get(present, "not known"))
            out.append((notification_id, link_id, child_key(surname, forename, dob), urn, typed or None, resolution,
                        candidates, incident,
                        self.deadline(urn if resolution == SchoolResolution.resolved else None, incident),
                        AlertStatus.queued, "{" + ", ".join([disclosed[k] for k in self.sorted_wanted]) + "}",
                        self.now, 1))
        return out

    def _disclosed_json(self, child: dict, setting_name: str | None, notification_part: dict | None) -> str:
        """``json.dumps(_disclosed(...), sort_keys=True)``, the notification's part worked out once."""
        full = dict(notification_part) if notification_part is not None else _notification_part(child)
        full.update(_child_part(child, setting_name))
        return _dumps_sorted({k: full[k] for k in self.wanted})


def generate_alerts(session: Session, notification_ids: Iterable[int], *, user: User | None = None,
                    actor: str | None = None, settings: Settings | None = None, rows: AlertRows | None = None,
                    notifications: int | None = None) -> dict:
    """Create the alerts the imported (or updated) notifications need. Idempotent: a child who already has an
    alert on that notification (found by link, or by child key after a re-import rewrote the people) gets none.

    A re-import that changes where a known child goes is not ignored (``_follow_the_extract``): the police may have
    typed the wrong school first. A queued alert no school has been shown is re-routed to the new setting; one a
    school has been sent or shown is withdrawn from that school's view and a new alert raised for the new setting,
    naming the withdrawn one for the coordinator (who tells the first school). A child the record no longer lists
    has their alert withdrawn. Each of these is audited on its own row.

    Runs in the caller's transaction (the import's), audited as one row. Works 500 notifications at a time and
    writes each chunk at once (``core.db.bulk_insert``), so a 100,000-row import holds one chunk's alerts.

    An import passes the ``AlertRows`` it already used for the notifications it created (their alerts are
    written with them; their counts are in it) and how many notifications it created or changed in all:
    the one audit row covers both."""
    from core.db import bulk_insert

    settings = settings or get_settings()
    ids = sorted(set(notification_ids))
    if rows is None:
        if not ids:
            return {"created": 0, "to_resolve": 0, "home_educated": 0, "relinked": 0, "not_school_age": 0,
                    "rerouted": 0, "withdrawn": 0}
        rows = _rows_from_database(session, settings)
    counts = rows.counts
    for key in ("rerouted", "withdrawn"):  # an AlertRows made before these were counted
        counts.setdefault(key, 0)
    who = {"username": actor} if user is None and actor else {}
    conn = session.connection()
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        existing = conn.execute(  # a withdrawn alert is history: a child listed again gets a new one
            select(E.c.id, E.c.notification_id, E.c.child_key, E.c.child_link_id, E.c.school_urn, E.c.school_typed,
                   E.c.resolution, E.c.status, E.c.version)
            .where(E.c.notification_id.in_(chunk), E.c.status != AlertStatus.withdrawn.value)).all()
        by_link = {r.child_link_id: r for r in existing if r.child_link_id is not None}
        by_key = {(r.notification_id, r.child_key): r for r in existing}
        matched: set[int] = set()  # the alerts of children the record still lists
        raised: set[tuple] = set()  # (notification, child key) of the alerts raised here
        out = []
        for child in _children(conn, chunk):
            key = child_key(child["surname"], child["forename"], child["dob"])
            alert = by_link.get(child["link_id"])
            if alert is None:
                alert = by_key.get((child["notification_id"], key))
                if alert is None:
                    if (child["notification_id"], key) not in raised:
                        row = rows.row(child, key)
                        if row is not None:
                            out.append(row)
                            raised.add((child["notification_id"], key))
                    continue
                if alert.id in matched:  # another child of the same key has it
                    continue
                if alert.child_link_id is None:  # the import rewrote the people: the new link
                    conn.execute(update(E).where(E.c.id == alert.id).values(child_link_id=child["link_id"]))
                    counts["relinked"] += 1
            matched.add(alert.id)
            if (child["school_name"] or None) != alert.school_typed:
                _follow_the_extract(session, user, who, rows, alert, child, key)
        for alert in existing:
            # Its person link went with the rewritten people and no child listed now has its key: the police took
            # the child off the record, so the setting no longer sees the alert (alerts made by hand have no key).
            if alert.id not in matched and alert.child_link_id is None and alert.child_key is not None:
                _withdraw(session, user, who, alert, "The police no longer list this child on the notification.")
                counts["withdrawn"] += 1
        bulk_insert(conn, E, out, columns=ALERT_COLUMNS)
    if counts["created"] or counts["relinked"] or counts["rerouted"] or counts["withdrawn"]:
        audit.record(session, user, "change", "encompass_alert", None, created=counts["created"],
                     to_resolve=counts["to_resolve"], home_educated=counts["home_educated"],
                     relinked=counts["relinked"], rerouted=counts["rerouted"], withdrawn=counts["withdrawn"],
                     notifications=len(ids) if notifications is None else notifications, **who)
    return dict(counts)


def _shown(conn, alert) -> bool:
    """Whether a school has had the alert: its notice was sent, or a key adult opened it in the portal (which
    shows queued alerts too, and audits each disclosure)."""
    if getattr(alert.status, "value", alert.status) != AlertStatus.queued.value:
        return True
    A = AuditEvent.__table__
    return conn.execute(select(A.c.id).where(A.c.entity == "encompass_alert", A.c.entity_id == str(alert.id),
                                             A.c.action == "disclosure").limit(1)).first() is not None


def _withdraw(session: Session, user: User | None, who: dict, alert, why: str) -> None:
    """Take the alert out of its setting's view (status withdrawn), kept as the record of what it was shown."""
    shown = _shown(session.connection(), alert)
    if shown and alert.school_urn:
        why = f"{why} {alert.school_urn} had already been sent or shown it: tell them to disregard it."
    session.connection().execute(
        update(E).where(E.c.id == alert.id, E.c.status != AlertStatus.withdrawn.value)
        .values(status=AlertStatus.withdrawn, withdrawn_at_utc=utcnow(), withdrawn_why=why[:255],
                child_link_id=None, version=E.c.version + 1))  # the link goes to the child's new alert, if any
    audit.record(session, user, "withdraw", "encompass_alert", alert.id, school_urn=alert.school_urn,
                 shown_to_school=shown, why=why, **who)


def _follow_the_extract(session: Session, user: User | None, who: dict, rows: AlertRows, alert, child: dict,
                        key: str) -> None:
    """The police now type another school for a child who has an alert: send the alert where the extract now
    says (see ``generate_alerts``)."""
    conn, counts = session.connection(), rows.counts
    typed = child["school_name"] or ""
    incident = child["incident_at"]
    if incident is None or not _in_scope(child["dob"], typed, incident.date(), rows.settings):
        _withdraw(session, user, who, alert, "The police no longer give a setting for this child.")
        counts["withdrawn"] += 1
        return
    urn, resolution, candidates = rows.resolve(typed)
    old_resolution = getattr(alert.resolution, "value", alert.resolution)
    offered = {c.get("urn") for c in json.loads(candidates)["candidates"]} if candidates else set()
    if (urn, resolution.value) == (alert.school_urn, old_resolution) or (
            resolution == SchoolResolution.to_resolve and alert.school_urn and alert.school_urn in offered):
        # The same setting typed another way (or an uncertain name that still offers it): only the typed name,
        # and the candidates of one still to resolve, follow the extract.
        values = {"school_typed": typed or None}
        if old_resolution == SchoolResolution.to_resolve.value:
            values["candidates"] = candidates
        conn.execute(update(E).where(E.c.id == alert.id).values(**values, version=E.c.version + 1))
        audit.record(session, user, "change", "encompass_alert", alert.id, old={"school_typed": alert.school_typed},
                     new={"school_typed": typed or None}, why="re-import: the same setting typed another way",
                     **who)
        return
    old = {"school_urn": alert.school_urn, "school_typed": alert.school_typed, "resolution": old_resolution}
    new = {"school_urn": urn, "school_typed": typed or None, "resolution": resolution.value}
    if not _shown(conn, alert):
        # No school has had it: re-routed where it stands (version-checked: a notice sent meanwhile withdraws it)
        due = rows.deadline(urn if resolution == SchoolResolution.resolved else None, incident)
        if conn.execute(update(E).where(E.c.id == alert.id, E.c.version == alert.version,
                                        E.c.status == AlertStatus.queued.value)
                        .values(school_urn=urn, school_typed=typed or None, resolution=resolution,
                                candidates=candidates, due_at=due, version=E.c.version + 1,
                                disclosed=rows._disclosed_json(child, rows.names.get(urn), None))).rowcount == 1:
            counts["rerouted"] += 1
            counts["to_resolve"] += resolution == SchoolResolution.to_resolve
            audit.record(session, user, "change", "encompass_alert", alert.id, old=old, new=new | {"due_at": due},
                         why="re-import: the police changed the school", **who)
            return
    # A school has been sent or shown it: never moved silently. Withdrawn from that school's view, and a new
    # alert raised for the new setting that names it, for the coordinator.
    _withdraw(session, user, who, alert, f"The police changed the school to “{typed}”.")
    counts["withdrawn"] += 1
    row = rows.row(child, key)
    if row is not None:
        new_id = conn.execute(insert(E).values(**dict(zip(ALERT_COLUMNS, row)), replaces_id=alert.id)
                              ).inserted_primary_key[0]
        audit.record(session, user, "change", "encompass_alert", new_id, old=old, new=new, replaces_id=alert.id,
                     why="re-import: the police changed the school after the first was shown the alert", **who)


def _rows_from_database(session: Session, settings: Settings) -> AlertRows:
    from dv.schools import SchoolResolver

    conn = session.connection()
    return AlertRows(settings, lambda: SchoolResolver(session, preferred_las=list(settings.local_authorities) or None),
                     lambda urn: _school_names(conn, [urn]).get(urn))


def create_alert(session: Session, user: User | None, *, notification_id: int, school_urn: str | None,
                 disclosed: dict, due_at: dt.datetime | None = None, child_link_id: int | None = None) -> int:
    """Queue one alert with exactly what will be disclosed (set-up and tests; imports use ``generate_alerts``)."""
    if user is not None:
        require(session, user, "manage_alerts")
    alert_id = session.connection().execute(insert(E).values(
        notification_id=notification_id, child_link_id=child_link_id, school_urn=school_urn, due_at=due_at,
        resolution=SchoolResolution.resolved if school_urn else SchoolResolution.to_resolve,
        status=AlertStatus.queued, disclosed=json.dumps(disclosed, sort_keys=True, default=str),
        created_at_utc=utcnow(), version=1)).inserted_primary_key[0]
    audit.record(session, user, "change", "encompass_alert", alert_id, new={"school_urn": school_urn})
    return alert_id


# ------------------------------------------------------------------------------------------------ the portal


def list_alerts(session: Session, user: User) -> list[dict]:
    """The alerts the user may see (a school: its own URN's), not yet acknowledged first, then newest; with only
    the disclosed fields. A withdrawn alert is not listed."""
    stmt = (select(E.c.id, E.c.school_urn, E.c.due_at, E.c.status, E.c.disclosed, E.c.notified_at_utc,
                   E.c.acknowledged_at_utc, E.c.version)
            .where(visible(user, "encompass_alert"), E.c.school_urn.is_not(None),
                   E.c.status != AlertStatus.withdrawn.value)  # moved to another setting or the child taken off
            .order_by((E.c.status == AlertStatus.acknowledged.value), E.c.due_at.desc(), E.c.id.desc())
            .limit(500))
    rows = []
    for r in session.connection().execute(stmt).mappings():
        row = dict(r)
        row["disclosed"] = json.loads(row["disclosed"] or "{}")
        rows.append(row)
    return rows


def acknowledge_alert(session: Session, user: User | None, alert_id: int) -> None:
    """The key adult confirms they have read the alert. Another school's alert is refused and audited."""
    result = session.connection().execute(
        update(E).where(E.c.id == alert_id, changeable(user, "encompass_alert"), WAITING)
        .values(status=AlertStatus.acknowledged, acknowledged_at_utc=utcnow(),
                acknowledged_by_id=user.id if user else None, version=E.c.version + 1))
    if result.rowcount == 1:
        audit.record(session, user, "acknowledge", "encompass_alert", alert_id)
        return
    mine = session.connection().execute(
        select(E.c.status).where(E.c.id == alert_id, changeable(user, "encompass_alert"))).first()
    if mine is None:  # not this user's school's alert (or no such alert): refused, whatever the id
        raise refuse(session, user, "acknowledge_alert", "encompass_alert", alert_id)
    # already acknowledged, or withdrawn (no longer this school's to read): nothing to do


def record_disclosure(session: Session, user: User, alert_id: int) -> None:
    """The alert's content was shown to this school user (audited once per alert per page visit)."""
    audit.record(session, user, "disclosure", "encompass_alert", alert_id)


# ------------------------------------------------------------------------------------------------ coordinator


def _rows(conn, stmt) -> list[dict]:
    out = []
    for r in conn.execute(stmt).mappings():
        row = dict(r)
        row["status"] = getattr(row["status"], "value", row["status"])
        row["resolution"] = getattr(row.get("resolution"), "value", row.get("resolution"))
        if row.get("candidates"):
            row["candidates"] = json.loads(row["candidates"])
        out.append(row)
    return out


def _select():
    return (select(E.c.id, E.c.notification_id, E.c.school_urn, S.c.name.label("school_name"), E.c.school_typed,
                   E.c.resolution, E.c.candidates, E.c.incident_at, E.c.due_at, E.c.status, E.c.notified_at_utc,
                   E.c.acknowledged_at_utc, E.c.escalated_at_utc, E.c.withdrawn_at_utc, E.c.withdrawn_why,
                   E.c.replaces_id, E.c.version, N.c.police_ref,
                   NP.c.surname, NP.c.forename, NP.c.dob)
            .join(N, N.c.id == E.c.notification_id).outerjoin(S, S.c.urn == E.c.school_urn)
            .outerjoin(NP, NP.c.id == E.c.child_link_id))


def encompass_overview(session: Session, user: User, *, now: dt.datetime | None = None, limit: int = 500,
                       log_view: bool = True) -> dict:
    """The coordinator's Encompass page: due next, overdue (not acknowledged after the deadline), to resolve,
    escalated, recently acknowledged, withdrawn (with why: the setting that had been shown one is to be told), and
    the timeliness of the last 28 days. The lists name children, so ``log_view`` audits the view as one row with
    how many each list holds: pages pass it once per page visit (``pages.common.mark_viewed``)."""
    require(session, user, "manage_alerts")
    now = now or london_now()
    conn = session.connection()
    base = _select().where(visible(user, "encompass_alert"))
    waiting = WAITING
    resolved = E.c.resolution != SchoolResolution.to_resolve.value
    view = {
        "due_next": _rows(conn, base.where(waiting, resolved, E.c.due_at >= now).order_by(E.c.due_at).limit(limit)),
        "overdue": _rows(conn, base.where(waiting, E.c.due_at < now).order_by(E.c.due_at).limit(limit)),
        "to_resolve": _with_remembered(conn, _rows(conn, base.where(
            E.c.resolution == SchoolResolution.to_resolve.value, waiting).order_by(E.c.due_at).limit(limit))),
        "escalated": _rows(conn, base.where(waiting, E.c.escalated_at_utc.is_not(None))
                           .order_by(E.c.due_at).limit(limit)),
        "acknowledged": _rows(conn, base.where(E.c.status == AlertStatus.acknowledged.value)
                              .order_by(E.c.acknowledged_at_utc.desc()).limit(100)),
        "withdrawn": _rows(conn, base.where(E.c.status == AlertStatus.withdrawn.value)
                           .order_by(E.c.withdrawn_at_utc.desc()).limit(100)),
    }
    view["figures"] = timeliness(session, user, now - dt.timedelta(days=28), now, log_view=False)
    if log_view:
        audit.record(session, user, "view", "encompass_alert", None, what="overview",
                     listed={k: len(v) for k, v in view.items() if k != "figures"})
    return view


def _with_remembered(conn, rows: list[dict]) -> list[dict]:
    """Each alert to resolve with its typed name's remembered school as it stands (``alias_urn``,
    ``alias_version``; None when none is): what the coordinator sees, so ``resolve_alert(remember=True)`` can tell
    a spelling a colleague remembered meanwhile from one nobody had."""
    from dv.models import SchoolAlias
    from dv.schools import normalise

    AL = SchoolAlias.__table__
    keys = {r["id"]: normalise(r["school_typed"] or "") for r in rows}
    wanted = sorted({k for k in keys.values() if k})
    found = {k: (u, v) for k, u, v in conn.execute(select(AL.c.name_key, AL.c.school_urn, AL.c.version)
                                                   .where(AL.c.name_key.in_(wanted)))} if wanted else {}
    for r in rows:
        r["alias_urn"], r["alias_version"] = found.get(keys[r["id"]], (None, None))
    return rows


def timeliness(session: Session, user: User, start: dt.datetime, end: dt.datetime, *, log_view: bool = True) -> dict:
    """For alerts whose incident falls in [start, end) (wall-clock): how many, the share notified before the
    deadline, the share acknowledged (and before the deadline), the median hours from incident to notification,
    and how many still wait for their school to be resolved. A withdrawn alert is not counted (the child's alert
    for the right setting is). ``log_view`` audits the view (``encompass_overview`` audits its own, once)."""
    require(session, user, "manage_alerts")
    rows = session.connection().execute(
        select(E.c.incident_at, E.c.due_at, E.c.notified_at_utc, E.c.acknowledged_at_utc, E.c.resolution)
        .where(visible(user, "encompass_alert"), E.c.incident_at >= start, E.c.incident_at < end,
               E.c.status != AlertStatus.withdrawn.value)).all()
    if log_view:
        audit.record(session, user, "view", "encompass_alert", None, what="timeliness", start=start, end=end)
    total = len(rows)
    notified = [r for r in rows if r.notified_at_utc is not None]
    on_time = [r for r in notified if r.due_at and utc_to_london(r.notified_at_utc) <= r.due_at]
    acked = [r for r in rows if r.acknowledged_at_utc is not None]
    acked_on_time = [r for r in acked if r.due_at and utc_to_london(r.acknowledged_at_utc) <= r.due_at]
    hours = [(r.notified_at_utc - london_to_utc(r.incident_at)).total_seconds() / 3600 for r in notified
             if r.incident_at]

    def share(part, whole):
        return round(100 * len(part) / len(whole), 1) if whole else None

    return {"alerts": total, "notified": len(notified), "notified_on_time_pct": share(on_time, rows),
            "acknowledged_pct": share(acked, rows), "acknowledged_on_time_pct": share(acked_on_time, rows),
            "median_hours_to_notification": round(statistics.median(hours), 1) if hours else None,
            "to_resolve": sum(1 for r in rows if getattr(r.resolution, "value", r.resolution) == "to_resolve")}


def resolve_alert(session: Session, user: User, alert_id: int, *, urn: str, expected_version: int,
                  remember: bool = False, alias_version: int | None = None, settings: Settings | None = None) -> None:
    """The coordinator picks the child's setting: the deadline and the disclosed content follow it. ``remember``
    sends the next child with the same typed name straight there; ``alias_version`` is the version of that
    spelling's remembered school the coordinator was shown (``alias_version`` of ``encompass_overview``'s row; None:
    none was). ``Conflict`` (nothing saved) when the alert, or the remembered spelling, changed since."""
    from dv.schooldays import load_term_dates

    require(session, user, "manage_alerts")
    settings = settings or get_settings()
    conn = session.connection()
    alert = conn.execute(_select().add_columns(NP.c.present, N.c.location, N.c.postcode, N.c.circumstances, N.c.risk)
                         .where(E.c.id == alert_id, visible(user, "encompass_alert"))).mappings().first()
    if alert is None:
        raise refuse(session, user, "resolve_alert", "encompass_alert", alert_id)
    school = conn.execute(select(S.c.urn, S.c.name, S.c.is_open).where(S.c.urn == urn)).first()
    if school is None or not school.is_open:
        raise ValueError("Choose an open school: a closed one is never chosen.")
    if alert["status"] != AlertStatus.queued:
        raise ValueError("This alert has already been sent; it cannot be moved to another setting.")
    resolution = SchoolResolution.home_educated if urn == EHE_URN else SchoolResolution.resolved
    due = load_term_dates().deadline(None if urn == EHE_URN else urn, alert["incident_at"]) \
        if alert["incident_at"] else alert["due_at"]
    child = dict(alert) | {"incident_at": alert["incident_at"]}
    disclosed = _disclosed(child, school.name, settings)
    if not checked_update(session, update(E).where(E.c.id == alert_id, E.c.version == expected_version,
                                                    E.c.status == AlertStatus.queued.value)
                          .values(school_urn=urn, resolution=resolution, due_at=due, version=E.c.version + 1,
                                  disclosed=json.dumps(disclosed, sort_keys=True))):
        session.rollback()
        current = _rows(session.connection(), _select().where(E.c.id == alert_id))
        if not current:
            raise Conflict(None)
        now = current[0]
        where = now["school_name"] or now["school_urn"] or "no setting yet"
        raise Conflict(now, f"This alert was changed by someone else after you opened it: it is now "
                            f"{now['status']} ({where}). Nothing was saved; look again.")
    audit.record(session, user, "change", "encompass_alert", alert_id,
                 old={"school_urn": alert["school_urn"], "resolution": getattr(alert["resolution"], "value", None)},
                 new={"school_urn": urn, "resolution": resolution.value, "due_at": due}, remembered=remember)
    if remember and alert["school_typed"]:
        from dv.schools import AliasConflict, remember_resolution

        try:
            remember_resolution(session, user, alert["school_typed"], urn, expected_version=alias_version)
        except AliasConflict as exc:  # rolled back: the alert is not resolved either, so nothing half-saved
            raise Conflict(exc.current, f"“{alert['school_typed']}”: {exc}") from None


# ------------------------------------------------------------------------------------------------ sending


def _notice_body(settings: Settings, count: int, first_due: dt.datetime | None) -> str:
    due = f" The first is due to be read by {first_due:%H:%M on %A %d %B %Y}." if first_due else ""
    return (f"There {'is a new Operation Encompass notification' if count == 1 else f'are {count} new Operation Encompass notifications'}"
            f" waiting for your setting in DA Daily.{due}\n\n"
            f"Please sign in to read and acknowledge {'it' if count == 1 else 'them'}: {settings.app_url}\n\n"
            "This email deliberately contains no names or details.\n")


def send_notices(session: Session, *, send: bool = True, now_utc: dt.datetime | None = None,
                 actor: str = "encompass job", settings: Settings | None = None) -> list[dict]:
    """Email each setting with queued alerts that they are waiting (one email per setting, no names, no details)
    and mark the alerts notified; the key adult reads them in the portal. A setting with no key adult email, or
    an email the server refused, is reported and its alerts stay queued (and visible to the coordinator)."""
    from core.mail import send_mail
    from dv.schools import key_adult_emails

    settings = settings or get_settings()
    now_utc = now_utc or utcnow()
    conn = session.connection()
    queued = conn.execute(select(E.c.id, E.c.school_urn, E.c.due_at)
                          .where(E.c.status == AlertStatus.queued.value, E.c.school_urn.is_not(None),
                                 E.c.resolution != SchoolResolution.to_resolve.value)
                          .order_by(E.c.school_urn, E.c.due_at)).all()
    by_school: dict[str, list] = defaultdict(list)
    for r in queued:
        by_school[r.school_urn].append(r)
    report = []
    for urn, alerts in by_school.items():
        to = key_adult_emails(conn, urn)
        entry = {"school_urn": urn, "alerts": len(alerts), "recipients": to, "sent": False, "error": None}
        if not to:
            entry["error"] = "no key adult email"
        elif send:
            try:
                send_mail(to, NOTICE_SUBJECT, _notice_body(settings, len(alerts), alerts[0].due_at), settings)
            except Exception as exc:  # one setting's failure never stops the others
                entry["error"] = f"{type(exc).__name__}: {exc}"
            else:
                ids = [a.id for a in alerts]
                conn.execute(update(E).where(E.c.id.in_(ids), E.c.status == AlertStatus.queued.value)
                             .values(status=AlertStatus.notified, notified_at_utc=now_utc,
                                     version=E.c.version + 1))
                entry["sent"] = True
                audit.record(session, None, "notify", "encompass_alert", None, username=actor, school_urn_to=urn,
                             alert_ids=ids, recipients=len(to))
        report.append(entry)
    return report


def escalate(session: Session, *, send: bool = True, now: dt.datetime | None = None, actor: str = "encompass job",
             settings: Settings | None = None) -> dict:
    """Alerts not acknowledged ``alert_escalation_minutes`` after their deadline are flagged (once) for the
    coordinators, who are emailed a count (no names) when SMTP is set up."""
    from core.mail import MailNotConfigured, send_mail

    settings = settings or get_settings()
    now = now or london_now()
    limit = now - dt.timedelta(minutes=settings.alert_escalation_minutes)
    conn = session.connection()
    ids = list(conn.execute(select(E.c.id).where(WAITING, E.c.escalated_at_utc.is_(None),
                                                E.c.due_at < limit)).scalars())
    result = {"escalated": len(ids), "emailed": [], "error": None}
    if not ids:
        return result
    conn.execute(update(E).where(E.c.id.in_(ids)).values(escalated_at_utc=utcnow(), version=E.c.version + 1))
    audit.record(session, None, "escalate", "encompass_alert", None, username=actor, alert_ids=ids)
    U = User.__table__
    to = [e for e in conn.execute(select(U.c.email).where(U.c.role == UserRole.coordinator.value,
                                                          U.c.disabled.is_(False), U.c.email.is_not(None))).scalars()]
    if send and to:
        try:
            send_mail(to, "DA Daily: Operation Encompass alerts not acknowledged",
                      f"{len(ids)} Operation Encompass alert(s) have not been acknowledged "
                      f"{settings.alert_escalation_minutes} minutes after their deadline.\n\nSee the Encompass page: "
                      f"{settings.app_url}\n", settings)
            result["emailed"] = to
        except MailNotConfigured:
            result["error"] = "SMTP is not set up"
        except Exception as exc:
            result["error"] = f"{type(exc).__name__}: {exc}"
    return result


def job_list(session: Session, *, start: dt.date | None = None, end: dt.date | None = None,
             actor: str = "cli") -> list[dict]:
    """``python -m dv encompass list``: alerts whose incident is on ``start``..``end`` (inclusive), as
    ``[{police_ref, child, child_dob, school_urn, school_name, due_at, status, notified_at, acknowledged_at}]``."""
    stmt = _select().order_by(E.c.due_at, E.c.id)
    if start:
        stmt = stmt.where(E.c.incident_at >= dt.datetime.combine(start, dt.time()))
    if end:
        stmt = stmt.where(E.c.incident_at < dt.datetime.combine(end + dt.timedelta(days=1), dt.time()))
    out = []
    for r in _rows(session.connection(), stmt):
        out.append({"police_ref": r["police_ref"],
                    "child": ", ".join(x for x in (r["surname"], r["forename"]) if x) or None,
                    "child_dob": r["dob"].isoformat() if r["dob"] else None, "school_urn": r["school_urn"],
                    "school_name": r["school_name"], "due_at": r["due_at"].isoformat() if r["due_at"] else None,
                    "status": r["status"],
                    "notified_at": r["notified_at_utc"].isoformat() + "Z" if r["notified_at_utc"] else None,
                    "acknowledged_at": r["acknowledged_at_utc"].isoformat() + "Z" if r["acknowledged_at_utc"]
                    else None})
    audit.record(session, None, "view", "encompass_alert", None, username=actor, listed=len(out))
    return out


__all__ = ["ALERT_FIELDS", "Conflict", "EHE_URN", "FIELD_LABELS", "acknowledge_alert", "age_on", "child_key",
           "create_alert", "encompass_overview", "escalate", "generate_alerts", "job_list", "list_alerts",
           "record_disclosure", "resolve_alert", "send_notices", "timeliness"]
