"""People: linking the same person across notifications, and each person's history.

Linking rule (automatic, at import): by the force's police person id when the profile maps one; otherwise by
normalised surname + forename + date of birth (``dv.parsing.match_key``). Someone with no date of birth and no
person id is never linked automatically (two "John Smith"s are not one man): they get their own record, which a
coordinator can later link through possible matches (issue 4).
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import select
from sqlmodel import Session

from core.db import bulk_insert, reserve_ids
from core.timeutil import utcnow
from dv.models import Notification, NotificationPerson, Person
from dv.parsing import match_key, normalise_name

CHUNK = 500


class PersonResolver:
    """Collects the people an import needs, then finds or creates them all with a few bulk statements.
    Each wanted person dict gets ``_person_id``."""

    def __init__(self, session: Session, force: str):
        self.session = session
        self.force = force
        self.wanted: list[tuple[dict, list[tuple[int, str]]]] = []

    def previous_links(self, notification_ids: list[int]) -> dict[tuple[int, str], list[tuple[int, str]]]:
        """(notification id, role) -> [(person id, normalised name)] as the last import linked them."""
        table = NotificationPerson.__table__
        out: dict[tuple[int, str], list[tuple[int, str]]] = defaultdict(list)
        conn = self.session.connection()
        for i in range(0, len(notification_ids), CHUNK):
            stmt = select(table.c.notification_id, table.c.role, table.c.person_id, table.c.surname,
                          table.c.forename).where(table.c.notification_id.in_(notification_ids[i : i + CHUNK]))
            for r in conn.execute(stmt):
                out[(r.notification_id, r.role)].append((r.person_id, _name_key(r.surname, r.forename)))
        return out

    def want(self, person: dict, previous: list[tuple[int, str]] | None = None) -> None:
        self.wanted.append((person, previous or []))

    def resolve(self) -> None:
        table = Person.__table__
        conn = self.session.connection()
        by_pid, by_key = {}, {}
        for p, _ in self.wanted:
            p["_key"] = _key(p)
        pids = sorted({p["person_id"] for p, _ in self.wanted if p.get("person_id")})
        keys = sorted({p["_key"] for p, _ in self.wanted if not p.get("person_id") and p["_key"]})
        for i in range(0, len(pids), CHUNK):
            stmt = select(table.c.id, table.c.police_person_id).where(
                table.c.force == self.force, table.c.police_person_id.in_(pids[i : i + CHUNK]))
            by_pid.update({r.police_person_id: r.id for r in conn.execute(stmt)})
        for i in range(0, len(keys), CHUNK):
            stmt = select(table.c.id, table.c.match_key).where(
                table.c.force == self.force, table.c.match_key.in_(keys[i : i + CHUNK]))
            for r in conn.execute(stmt):
                by_key.setdefault(r.match_key, r.id)

        now = utcnow()
        new_rows: list[dict] = []
        pending: dict[tuple, int] = {}  # identity -> index into new_rows (people new to DA Daily, shared in-file)
        assign: list[tuple[dict, int]] = []  # (person, index into new_rows)
        for person, previous in self.wanted:
            pid, key = person.get("person_id"), person["_key"]
            found = by_pid.get(pid) if pid else by_key.get(key) if key else None
            if found is None and not pid and not key:
                # No safe key: keep the person this notification already pointed at, if the name still matches.
                name = _name_key(person.get("surname"), person.get("forename"))
                found = next((p_id for p_id, n in previous if n == name), None)
            if found is not None:
                person["_person_id"] = found
                continue
            identity = ("pid", pid) if pid else ("key", key) if key else ("solo", id(person))
            if identity not in pending:
                pending[identity] = len(new_rows)
                new_rows.append({
                    "force": self.force, "police_person_id": pid, "surname": person.get("surname"),
                    "forename": person.get("forename"), "dob": person.get("dob"), "gender": person.get("gender"),
                    "match_key": key, "created_at_utc": now,
                })
            assign.append((person, pending[identity]))
        if new_rows:
            ids = reserve_ids(conn, table, len(new_rows))
            for row, new_id in zip(new_rows, ids):
                row["id"] = new_id
            bulk_insert(conn, table, new_rows)
            for person, index in assign:
                person["_person_id"] = ids[index]


def _key(person: dict) -> str | None:
    return match_key(person.get("surname"), person.get("forename"), person.get("dob"))


def _name_key(surname: str | None, forename: str | None) -> str:
    return f"{normalise_name(surname)}|{normalise_name(forename)}"


def describe_people(signature: list[list]) -> str:
    """'SMITH, Jane (12/03/1990); SMITH, Tom (01/02/2019)' from a people signature list."""
    parts = []
    for p in signature:
        surname, forename, dob = p[0], p[1], p[2]
        name = ", ".join(x for x in (surname, forename) if x) or "(no name)"
        if dob:
            name += f" ({dt.date.fromisoformat(dob):%d/%m/%Y})"
        if len(p) > 6 and p[6]:
            name += f", school {p[6]}"
        parts.append(name)
    return "; ".join(parts) or "(none)"


def prior_incident_counts(session: Session, notification_ids: list[int], days: int = 365) -> dict[int, int]:
    """For each notification, how many earlier notifications its victim was the victim in, within ``days``
    before this incident. Two indexed queries and a count in Python: date arithmetic in SQL differs between
    SQLite and PostgreSQL, and a victim's history is short."""
    if not notification_ids:
        return {}
    table = Notification.__table__
    conn = session.connection()
    targets = []
    for i in range(0, len(notification_ids), CHUNK):
        stmt = select(table.c.id, table.c.victim_id, table.c.incident_at).where(
            table.c.id.in_(notification_ids[i : i + CHUNK]), table.c.victim_id.is_not(None))
        targets.extend(conn.execute(stmt).all())
    history: dict[int, list[tuple[int, dt.datetime]]] = defaultdict(list)
    victims = sorted({t.victim_id for t in targets})
    if targets:
        earliest = min(t.incident_at for t in targets) - dt.timedelta(days=days)
        for i in range(0, len(victims), CHUNK):
            stmt = select(table.c.id, table.c.victim_id, table.c.incident_at).where(
                table.c.victim_id.in_(victims[i : i + CHUNK]), table.c.incident_at >= earliest)
            for r in conn.execute(stmt):
                history[r.victim_id].append((r.id, r.incident_at))
    out = {nid: 0 for nid in notification_ids}
    for t in targets:
        start = t.incident_at - dt.timedelta(days=days)
        out[t.id] = sum(1 for hid, at in history[t.victim_id] if hid != t.id and start <= at < t.incident_at)
    return out
