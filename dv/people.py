"""People: linking the same person across notifications, and each person's history.

Linking rule (automatic, at import): by the force's police person id when the profile maps one; otherwise by
normalised surname + forename + date of birth (``dv.parsing.match_key``). Someone with no date of birth and no
person id is never linked automatically (two "John Smith"s are not one man): they get their own record, which a
coordinator can later link through possible matches (issue 4).
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict, deque

from sqlalchemy import select
from sqlmodel import Session

from dv.models import Notification, NotificationPerson
from dv.parsing import match_key, normalise_name

CHUNK = 500


def previous_links(conn, notification_ids: list[int]) -> dict[tuple[int, str], list[tuple[int, str]]]:
    """(notification id, role) -> [(person id, normalised name)] as the last import linked them."""
    table = NotificationPerson.__table__
    out: dict[tuple[int, str], list[tuple[int, str]]] = defaultdict(list)
    for i in range(0, len(notification_ids), CHUNK):
        stmt = select(table.c.notification_id, table.c.role, table.c.person_id, table.c.surname,
                      table.c.forename).where(table.c.notification_id.in_(notification_ids[i : i + CHUNK]))
        for r in conn.execute(stmt):
            out[(r.notification_id, r.role)].append((r.person_id, _name_key(r.surname, r.forename)))
    return out


def lookup_people(conn, force: str, pids: list[str], keys: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    """The people already stored under these police person ids and match keys: (by id, by key). Plain SQL on the
    driver, as few statements as the driver allows: an import asks this for every chunk, from its writer thread,
    which should need the GIL as seldom as possible."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    per_statement = _max_in(conn)
    cursor = conn.connection.driver_connection.cursor()
    by_pid: dict[str, int] = {}
    by_key: dict[str, int] = {}
    for column, values, out in (("police_person_id", pids, by_pid), ("match_key", keys, by_key)):
        for i in range(0, len(values), per_statement):
            part = values[i : i + per_statement]
            # padded with NULLs (which match nothing) to a power of two: a few distinct statements in the driver's
            # cache of prepared statements, not one per chunk size
            size = min(per_statement, 1 << (len(part) - 1).bit_length())
            sql = (f"SELECT id, {column} FROM person WHERE force = {mark} AND {column} IN "
                   f"({', '.join([mark] * size)}) ORDER BY id")
            cursor.execute(sql, (force, *part, *[None] * (size - len(part))))
            for person_id, value in cursor.fetchall():
                out.setdefault(value, person_id)
    return by_pid, by_key


def _max_in(conn) -> int:
    """Values in one IN (...) besides the force: SQLite's bound-parameter limit (32766 since 3.32, 999 before)."""
    if conn.dialect.name != "sqlite":
        return 5000
    import sqlite3

    try:
        return min(30000, conn.connection.driver_connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - 1)
    except (AttributeError, sqlite3.Error):
        return 998


class PersonLinker:
    """Finds or creates the people of an import, one chunk of notifications at a time. Each wanted person dict
    gets ``_person_id``; ``link`` returns the rows (``PERSON_COLUMNS`` order) of the people to create.

    The stored people come from ``lookup_people`` (run by the caller, on its connection). A person new to DA Daily
    is created once per import and shared by every notification that names them: within a chunk through
    ``pending``; across chunks because a later chunk's look-up finds the rows already written or, for people not
    written yet when it ran (the importer writes behind), because they are remembered here until they are."""

    def __init__(self, force: str, take_ids, now: dt.datetime):
        self.force = force
        self.take_ids = take_ids  # n -> n fresh, increasing person ids
        self.now = now
        self.unwritten: dict[tuple, int] = {}  # identity -> id of the people created here, until surely written
        self.created: deque[tuple[int, list[tuple]]] = deque()  # (highest id, identities) per call, for forgetting

    @staticmethod
    def keys(wanted: list[tuple[dict, list]]) -> tuple[list[str], list[str]]:
        """Sets each person's match key; returns the police person ids and match keys to look up."""
        pids, keys = set(), set()
        for p, _ in wanted:
            pid = p.get("person_id")
            key = p["_key"] = match_key(p.get("surname"), p.get("forename"), p.get("dob"))
            if pid:
                pids.add(pid)
            elif key:
                keys.add(key)
        return sorted(pids), sorted(keys)

    def link(self, wanted: list[tuple[dict, list]], by_pid: dict[str, int], by_key: dict[str, int],
             visible_upto: int = 0) -> list[tuple]:
        """``by_pid``/``by_key``: the look-up's answer, which includes the people created here with ids below
        ``visible_upto`` (written before the look-up ran); the others are remembered."""
        created, unwritten = self.created, self.unwritten
        while created and created[0][0] < visible_upto:
            for identity in created.popleft()[1]:
                del unwritten[identity]
        new_rows: list[list] = []
        pending: dict[tuple, int] = {}  # identity -> index into new_rows (people new to DA Daily, shared in-file)
        assign: list[tuple[dict, int]] = []  # (person, index into new_rows)
        force, now = self.force, self.now
        for person, previous in wanted:
            pid, key = person.get("person_id"), person["_key"]
            if pid:
                identity = ("pid", pid)
                found = by_pid.get(pid)
            elif key:
                identity = ("key", key)
                found = by_key.get(key)
            else:
                # No safe key: keep the person this notification already pointed at, if the name still matches.
                identity = ("solo", id(person))
                name = _name_key(person.get("surname"), person.get("forename"))
                found = next((p_id for p_id, n in previous if n == name), None)
            if found is None and unwritten:  # created by this import but perhaps not written when the look-up ran
                found = unwritten.get(identity)
            if found is not None:
                person["_person_id"] = found
                continue
            index = pending.get(identity)
            if index is None:
                index = pending[identity] = len(new_rows)
                new_rows.append([None, force, pid, person.get("surname"), person.get("forename"), person.get("dob"),
                                 person.get("gender"), key, now])
            assign.append((person, index))
        for row, new_id in zip(new_rows, self.take_ids(len(new_rows))):
            row[0] = new_id
        for person, index in assign:
            person["_person_id"] = new_rows[index][0]
        if new_rows:
            remembered = [identity for identity in pending if identity[0] != "solo"]
            for identity in remembered:
                unwritten[identity] = new_rows[pending[identity]][0]
            created.append((new_rows[-1][0], remembered))
        return [tuple(row) for row in new_rows]


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
