"""Possible matches between person records, and each person's history across the records a coordinator linked.

The importer links people automatically only on safe keys (police person id, or normalised surname + forename +
date of birth). Everyone else keeps their own record, and "each incident managed in isolation" is how repeat
victims are missed. This module suggests the records that may be the same person, shows why, and lets a
coordinator confirm (the histories are then read together), reject (never suggested again) or undo a link.

Finding candidates never scans people in Python: for the people asked about (one day's agenda), candidates come
from indexed lookups only ("blocking"):

* (a) the same date of birth, or the same date with day and month swapped (``person.dob``: a lookup once
  ``person`` has an index on ``dob``, best ``(dob, surname, forename)`` so only the index is read);
* (b) for someone with no date of birth, records with the same normalised surname + forename and a date of birth
  (a range on the ``ix_person_match_key`` index: ``match_key`` starts with ``surname|forename|``);
* (c) the same address as typed on a ``notification_person`` row (a lookup once it has an index on ``address``);
* (d) the same other party: someone else who was in a notification with the same victim or perpetrator
  (``ix_np_person`` and the ``notification_id`` index).

Each candidate pair is then judged by :func:`assess` (the rules are in its docstring) with rapidfuzz.

Histories (:func:`person_history`, :func:`case_history`, :func:`case_histories`) read earlier notifications, the
meeting's decisions on them, their open actions and their children through ``core.scope.visible`` for the person
and everyone linked to them by confirmed matches (:func:`linked_person_ids`). ``case_histories`` does a whole
agenda in a fixed number of queries.
"""
from __future__ import annotations

import calendar
import datetime as dt
import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from rapidfuzz import fuzz, process
from sqlalchemy import and_, insert, or_, select, union_all, update
from sqlmodel import Session

from core import audit
from core.db import checked_update
from core.models import Agency, User
from core.scope import refuse, require, visible
from core.timeutil import london_now, utcnow
from dv.models import MatchStatus, Notification, NotificationPerson, Person, PersonMatch, PersonRole
from dv.parsing import normalise_name

P = Person.__table__
N = Notification.__table__
NP = NotificationPerson.__table__
PM = PersonMatch.__table__

CHUNK = 500
NAME_THRESHOLD = 85  # rapidfuzz token_sort_ratio of the normalised "forename surname"
PARTY_ROLES = (PersonRole.victim.value, PersonRole.perpetrator.value)
OPEN_ACTION = ("open", "in_progress")

# Words that say there is no address: two people "of no fixed abode" do not share an address.
NO_ADDRESS = frozenset({"", "nfa", "no fixed abode", "no fixed address", "unknown", "not known", "nk", "n k",
                        "refused", "none", "not given", "withheld", "no address"})
_ADDRESS_WORDS = {"rd": "road", "ave": "avenue", "av": "avenue", "ln": "lane", "cl": "close", "dr": "drive",
                  "cres": "crescent", "ct": "court", "gdns": "gardens", "gr": "grove", "gro": "grove", "pl": "place",
                  "sq": "square", "tce": "terrace", "terr": "terrace", "wk": "walk", "hse": "house"}
_POSTCODE_TAIL = re.compile(r"([a-z]{1,2}\d[a-z\d]?) (\d[a-z]{2})$")


class MatchConflict(Exception):
    """The match changed since the coordinator's page was loaded. ``current`` holds what is stored now."""

    def __init__(self, current: dict):
        status = _plain(current.get("status"))
        super().__init__(f"This possible match was changed by someone else after you opened it: it is now "
                         f"{status}. Look at it again before deciding.")
        self.current = current


class InvalidDecision(ValueError):
    """The decision does not apply to the match's current status (e.g. undoing a link that was never confirmed)."""

    def __init__(self, message: str, current: dict):
        super().__init__(message)
        self.current = current


# ---------------------------------------------------------------------------------------------- small helpers


def _chunks(values: Iterable, size: int = CHUNK) -> Iterator[list]:
    items = sorted(set(values))
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _plain(value):
    return getattr(value, "value", value)


@lru_cache(maxsize=65536)  # names repeat; a pure function of its arguments
def name_tokens(forename: str | None, surname: str | None) -> str:
    """'zoe obrien' from ('Zoë', "O'Brien"): each word normalised as the importer does (case, accents, apostrophes
    ignored), hyphens and spaces separating words."""
    words = []
    for part in (forename, surname):
        for word in re.split(r"[\s\-]+", part or ""):
            n = normalise_name(word)
            if n:
                words.append(n)
    return " ".join(words)


@lru_cache(maxsize=65536)
def normalise_address(value: str | None) -> str:
    """Case, accents, punctuation and common abbreviations ignored; the postcode's space is optional.
    '12 Elm Rd., NX1 2AB' = '12 ELM ROAD NX12AB'. '' when it says there is no address."""
    if not value:
        return ""
    decomposed = unicodedata.normalize("NFKD", value)
    text = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    words = "".join(ch if ch.isalnum() else " " for ch in text).split()
    joined = " ".join(_ADDRESS_WORDS.get(w, w) for w in words)
    if joined in NO_ADDRESS:
        return ""
    return _POSTCODE_TAIL.sub(lambda m: m.group(1) + m.group(2), joined)


def _swapped(a: dt.date, b: dt.date) -> bool:
    """03/04/1990 and 04/03/1990: the same date typed with day and month the other way round."""
    return a != b and a.year == b.year and a.day == b.month and a.month == b.day


def _swap(d: dt.date) -> dt.date | None:
    if d.day > 12 or d.day == d.month:
        return None
    try:
        return d.replace(month=d.day, day=d.month)
    except ValueError:
        return None


def _months_before(t: dt.datetime, months: int) -> dt.datetime:
    y, m = divmod(t.year * 12 + t.month - 1 - months, 12)
    m += 1
    return t.replace(year=y, month=m, day=min(t.day, calendar.monthrange(y, m)[1]))


def _display(surname: str | None, forename: str | None) -> str:
    """'Zoë O'Brien' (forename first, as typed)."""
    return " ".join(x for x in (forename, surname) if x) or "(no name)"


def _listing(surname: str | None, forename: str | None) -> str:
    """"O'BRIEN, Zoë" (the notifications pages' style)."""
    return ", ".join(x for x in (surname, forename) if x) or "(no name)"


def _kind(role) -> str:
    return "child" if _plain(role) == PersonRole.child.value else "adult"


# ---------------------------------------------------------------------------------------------- linked records


def linked_components(session: Session, person_ids: Iterable[int]) -> dict[int, frozenset[int]]:
    """For each person, the person plus everyone linked to them through confirmed matches, transitively. A small
    breadth-first search: one indexed query (``uq_person_match_pair`` / ``ix_person_match_b``) per step."""
    start = {int(p) for p in person_ids}
    conn = session.connection()
    adjacent: dict[int, set[int]] = defaultdict(set)
    seen, frontier = set(start), set(start)
    while frontier:
        found: set[int] = set()
        for chunk in _chunks(frontier):
            confirmed = MatchStatus.confirmed.value
            stmt = union_all(
                select(PM.c.person_a_id, PM.c.person_b_id).where(PM.c.person_a_id.in_(chunk), PM.c.status == confirmed),
                select(PM.c.person_a_id, PM.c.person_b_id).where(PM.c.person_b_id.in_(chunk), PM.c.status == confirmed))
            for a, b in conn.execute(stmt):
                adjacent[a].add(b)
                adjacent[b].add(a)
                found.update((a, b))
        frontier = found - seen
        seen |= frontier
    out: dict[int, frozenset[int]] = {}
    for p in start:
        if p in out:
            continue
        component, stack = {p}, [p]
        while stack:
            for q in adjacent[stack.pop()]:
                if q not in component:
                    component.add(q)
                    stack.append(q)
        frozen = frozenset(component)
        for q in component:
            out[q] = frozen
    return {p: out[p] for p in start}


def linked_person_ids(session: Session, person_id: int) -> set[int]:
    """The person plus everyone linked to them through confirmed matches, transitively."""
    return set(linked_components(session, [person_id])[int(person_id)])


# ---------------------------------------------------------------------------------------------- what we know


@dataclass
class Who:
    """One person record as the matching rules see it."""

    id: int
    force: str | None
    surname: str | None
    forename: str | None
    dob: dt.date | None
    tokens: str = ""
    dobs: set[dt.date] = field(default_factory=set)  # the record's date of birth and any given on its notifications
    addresses: dict[str, str] = field(default_factory=dict)  # normalised -> as first typed
    kinds: set[str] = field(default_factory=set)  # "adult" / "child": the parts the person has played
    # (other party's person id, this person's kind then) -> (other party's roles, other party's name as typed)
    parties: dict[tuple[int, str], tuple[set[str], str]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return _display(self.surname, self.forename)


# What matching reads of a candidate: with an index on (dob, surname, forename) the date-of-birth lookup reads the
# index alone, never the table.
PERSON_COLUMNS = (P.c.id, P.c.surname, P.c.forename, P.c.dob)


def _person_rows(conn, ids: Iterable[int], *extra) -> dict[int, object]:
    out = {}
    for chunk in _chunks(ids):
        out.update((r.id, r) for r in conn.execute(select(*PERSON_COLUMNS, *extra).where(P.c.id.in_(chunk))))
    return out


def _who(r) -> Who:
    return Who(r.id, getattr(r, "force", None), r.surname, r.forename, r.dob,
               tokens=name_tokens(r.forename, r.surname), dobs={r.dob} if r.dob else set())


def _links_of_people(conn, ids: Iterable[int]) -> list:
    rows = []
    for chunk in _chunks(ids):
        rows += conn.execute(select(NP.c.person_id, NP.c.notification_id, NP.c.role, NP.c.dob, NP.c.address)
                             .where(NP.c.person_id.in_(chunk))).all()
    return rows


def _parties_in(conn, notification_ids: Iterable[int]) -> dict[int, list]:
    """notification id -> its victims and perpetrators (person id, role, surname, forename as typed)."""
    out: dict[int, list] = defaultdict(list)
    for chunk in _chunks(notification_ids):
        stmt = select(NP.c.notification_id, NP.c.person_id, NP.c.role, NP.c.surname, NP.c.forename).where(
            NP.c.notification_id.in_(chunk), NP.c.role.in_(PARTY_ROLES))
        for r in conn.execute(stmt):
            out[r.notification_id].append(r)
    return out


def _fill(conn, people: dict[int, Who]) -> None:
    """Add each person's dates of birth, addresses, parts and other parties from their notifications."""
    todo = [p for p in people.values() if not p.kinds]
    if not todo:
        return
    links = _links_of_people(conn, (p.id for p in todo))
    parties = _parties_in(conn, {r.notification_id for r in links})
    for r in links:
        who = people[r.person_id]
        kind = _kind(r.role)
        who.kinds.add(kind)
        if r.dob:
            who.dobs.add(r.dob)
        key = normalise_address(r.address)
        if key:
            who.addresses.setdefault(key, r.address)
        for q in parties.get(r.notification_id, ()):
            if q.person_id == who.id:
                continue
            roles, _ = who.parties.setdefault((q.person_id, kind), (set(), _display(q.surname, q.forename)))
            roles.add(_plain(q.role))


# ---------------------------------------------------------------------------------------------- the rules


def assess(x: Who, y: Who) -> tuple[float, list[str]] | None:
    """(score, reasons) when ``x`` and ``y`` may be the same person, else None. The rules:

    * the names must be alike: rapidfuzz ``token_sort_ratio`` of the normalised "forename surname" >= 85
      (so word order, case, accents, apostrophes and hyphens do not matter);
    * both dates of birth known: suggested when they are equal, or the same date with day and month swapped
      (03/04 vs 04/03, a common typing error, said so in the reasons); any other difference is never suggested
      (two John Smiths born on different days are two men);
    * a date of birth missing on one (or both) records: suggested only with corroboration, the same address
      (normalised) or the same other party (the same victim or perpetrator record in both), and only when both
      have been in the same part (adult or child: a father and a son with his name are not matched this way).

    The score is the name similarity. Same address and other parties are listed as reasons whenever present.
    """
    if not x.tokens or not y.tokens:
        return None
    score = fuzz.token_sort_ratio(x.tokens, y.tokens)
    if score < NAME_THRESHOLD:
        return None
    why = [f"names alike: '{x.name}' and '{y.name}' ({score:.0f}%)"]
    shared_address = next((x.addresses[k] for k in sorted(x.addresses) if k in y.addresses), None)
    shared_parties = sorted(set(x.parties) & set(y.parties))
    if x.dobs and y.dobs:
        same = x.dobs & y.dobs
        if same:
            why.append(f"same date of birth {min(same):%d/%m/%Y}")
        else:
            pair = next(((a, b) for a in sorted(x.dobs) for b in sorted(y.dobs) if _swapped(a, b)), None)
            if pair is None:
                return None
            why.append(f"dates of birth {pair[0]:%d/%m/%Y} and {pair[1]:%d/%m/%Y}: the same date with day and month "
                       f"swapped (a common typing error)")
    else:
        if not (x.kinds & y.kinds) or (shared_address is None and not shared_parties):
            return None
        why.append("no date of birth on one record" if (x.dobs or y.dobs) else "no date of birth on either record")
    if shared_address is not None:
        why.append(f"same address: {shared_address}")
    for key in shared_parties:
        roles = x.parties[key][0] & y.parties[key][0]
        what = "perpetrator" if roles == {"perpetrator"} else "victim" if roles == {"victim"} else "other party"
        why.append(f"same {what} in both: {x.parties[key][1]}")
    return float(score), why


# ---------------------------------------------------------------------------------------------- suggesting


def _candidates(conn, given: dict[int, Who]) -> tuple[dict[int, set[int]], dict[int, object]]:
    """Given person id -> candidate person ids, from indexed lookups only (the module docstring's a-d); and the
    person rows (PERSON_COLUMNS) the lookups already read."""
    out: dict[int, set[int]] = defaultdict(set)
    rows_read: dict[int, object] = {}

    # (a) the same date of birth, or day and month swapped
    wanted: dict[dt.date, set[int]] = defaultdict(set)
    for who in given.values():
        for d in who.dobs:
            wanted[d].add(who.id)
            if (s := _swap(d)) is not None:
                wanted[s].add(who.id)
    by_dob: dict[dt.date, list[int]] = defaultdict(list)
    for chunk in _chunks(wanted):
        for r in conn.execute(select(*PERSON_COLUMNS).where(P.c.dob.in_(chunk))).all():
            rows_read[r[0]] = r
            by_dob[r[3]].append(r[0])
    for d, gs in wanted.items():
        for g in gs:
            out[g].update(by_dob.get(d, ()))

    # (b) no date of birth: the same normalised name with a date of birth, on the (force, match_key) index. The
    # upper bound "a" sorts after the digits and "-" of a date in byte order and in the usual locale collations;
    # the Python check below keeps only true prefixes.
    ranges = []
    for who in given.values():
        s, f = normalise_name(who.surname), normalise_name(who.forename)
        if not who.dobs and s and f and who.force:
            ranges.append((who.id, who.force, f"{s}|{f}|"))
    for i in range(0, len(ranges), 100):
        part = ranges[i : i + 100]
        stmt = select(*PERSON_COLUMNS, P.c.force, P.c.match_key).where(or_(*(
            and_(P.c.force == force, P.c.match_key >= prefix, P.c.match_key < prefix + "a")
            for _, force, prefix in part)))
        rows = conn.execute(stmt).all()
        for g, force, prefix in part:
            for r in rows:
                if r.force == force and r.match_key.startswith(prefix):
                    out[g].add(r.id)
                    rows_read[r.id] = r

    # (c) the same address as typed on a notification
    links = _links_of_people(conn, given)
    by_address: dict[str, set[int]] = defaultdict(set)
    for r in links:
        if r.address and normalise_address(r.address):
            by_address[r.address].add(r.person_id)
    for chunk in _chunks(by_address):
        for r in conn.execute(select(NP.c.person_id, NP.c.address).where(NP.c.address.in_(chunk))):
            for g in by_address[r.address]:
                out[g].add(r.person_id)

    # (d) the same other party: the given person's notifications -> their victims/perpetrators -> those people's
    # other notifications -> the people in them
    parties = _parties_in(conn, {r.notification_id for r in links})
    party_of: dict[int, set[int]] = defaultdict(set)  # other party -> given people
    for r in links:
        for q in parties.get(r.notification_id, ()):
            if q.person_id != r.person_id:
                party_of[q.person_id].add(r.person_id)
    elsewhere: dict[int, set[int]] = defaultdict(set)  # notification id -> given people (through a party)
    for chunk in _chunks(party_of):
        stmt = select(NP.c.person_id, NP.c.notification_id).where(NP.c.person_id.in_(chunk), NP.c.role.in_(PARTY_ROLES))
        for r in conn.execute(stmt):
            elsewhere[r.notification_id].update(party_of[r.person_id])
    for chunk in _chunks(elsewhere):
        for r in conn.execute(select(NP.c.notification_id, NP.c.person_id).where(NP.c.notification_id.in_(chunk))):
            for g in elsewhere[r.notification_id]:
                out[g].add(r.person_id)

    for g, found in out.items():
        found.discard(g)
    return out, rows_read


def _decided_pairs(conn, ids: set[int]) -> set[frozenset[int]]:
    """Every pair with a person_match row (any status) touching ``ids``."""
    pairs = set()
    for chunk in _chunks(ids):
        stmt = union_all(select(PM.c.person_a_id, PM.c.person_b_id).where(PM.c.person_a_id.in_(chunk)),
                         select(PM.c.person_a_id, PM.c.person_b_id).where(PM.c.person_b_id.in_(chunk)))
        pairs.update(frozenset(r) for r in conn.execute(stmt))
    return pairs


def _insert_suggestion(session: Session, values: dict) -> int | None:
    """Insert unless the pair already has a row (another coordinator suggested it meanwhile): the id, or None."""
    conn = session.connection()
    name = conn.dialect.name
    if name in ("postgresql", "sqlite"):
        if name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        stmt = (dialect_insert(PM).values(**values)
                .on_conflict_do_nothing(index_elements=["person_a_id", "person_b_id"]).returning(PM.c.id))
        row = conn.execute(stmt).first()
        return row[0] if row else None
    exists = conn.execute(select(PM.c.id).where(PM.c.person_a_id == values["person_a_id"],
                                                PM.c.person_b_id == values["person_b_id"])).first()
    return None if exists else conn.execute(insert(PM).values(**values)).inserted_primary_key[0]


def suggest_matches(session: Session, user: User | None, person_ids: list[int]) -> list[dict]:
    """Find and store possible matches for the given people (e.g. everyone on today's agenda); return the open
    suggestions and confirmed links involving them (:func:`list_matches`). Coordinators only.

    Pairs already on one record, linked (through confirmed matches), or with any person_match row between their
    linked groups (suggested, confirmed, rejected or undone) are never suggested again. Each new suggestion is
    audited in the caller's transaction (the caller commits)."""
    require(session, user, "manage_matches")
    conn = session.connection()
    given = {i: _who(r) for i, r in _person_rows(conn, {int(p) for p in person_ids}, P.c.force).items()}
    _fill(conn, given)
    found, rows = _candidates(conn, given)
    rows.update(_person_rows(conn, {c for cs in found.values() for c in cs} - set(rows)))

    # names first, from the person rows alone (in rapidfuzz's C loop): only alike pairs are looked at more closely
    pairs: dict[frozenset[int], tuple[int, int]] = {}
    tokens = {c: name_tokens(r[2], r[1]) for c, r in rows.items()}  # (id, surname, forename, dob)
    for g, cands in found.items():
        x = given[g]
        if not x.tokens:
            continue
        if x.dob:  # two dates of birth known and different (not swapped): two people, whatever the names
            ids = [c for c in cands if c in rows and (not (d := rows[c][3]) or d == x.dob or _swapped(x.dob, d))]
        else:
            ids = [c for c in cands if c in rows]
        choices = [tokens[c] for c in ids]
        for _, _, i in process.extract(x.tokens, choices, scorer=fuzz.token_sort_ratio,
                                       score_cutoff=NAME_THRESHOLD, limit=None):
            pairs.setdefault(frozenset((g, ids[i])), (g, ids[i]))
    if not pairs:
        return list_matches(session, user, list(given))

    involved = {p for pair in pairs for p in pair}
    groups = linked_components(session, involved)
    decided = _decided_pairs(conn, set().union(*(groups[p] for p in involved)))
    people = {p: given.get(p) or _who(rows[p]) for p in involved}
    _fill(conn, people)
    now = utcnow()
    for _, (g, c) in sorted(pairs.items(), key=lambda kv: sorted(kv[0])):
        if c in groups[g] or any(frozenset((a, b)) in decided for a in groups[g] for b in groups[c]):
            continue
        a, b = sorted((g, c))
        verdict = assess(people[a], people[b])  # in id order: the reasons read the same whoever was asked about
        if verdict is None:
            continue
        score, why = verdict
        values = dict(person_a_id=a, person_b_id=b, status=MatchStatus.suggested.value, score=score,
                      why=json.dumps(why, ensure_ascii=False), created_at_utc=now, version=1)
        match_id = _insert_suggestion(session, values)
        decided.add(frozenset((a, b)))
        if match_id is not None:
            audit.record(session, user, "suggest", "person_match", match_id, person_a_id=a, person_b_id=b,
                         score=score, why=why, new={"status": MatchStatus.suggested.value})
    return list_matches(session, user, list(given))


# ---------------------------------------------------------------------------------------------- reading matches


def _person_details(session: Session, user: User | None, ids: set[int]) -> dict[int, dict]:
    conn = session.connection()
    out: dict[int, dict] = {}
    for chunk in _chunks(ids):
        stmt = select(P.c.id, P.c.force, P.c.surname, P.c.forename, P.c.dob, P.c.police_person_id).where(
            P.c.id.in_(chunk), visible(user, "person"))
        for r in conn.execute(stmt).mappings():
            d = dict(r)
            d["name"] = _listing(r["surname"], r["forename"])
            d["label"] = d["name"] + (f" ({r['dob']:%d/%m/%Y})" if r["dob"] else " (no date of birth)")
            d.update(notifications=0, roles=[], addresses=[], last_incident_at=None)
            out[r["id"]] = d
    for chunk in _chunks(out):
        stmt = (select(NP.c.person_id, NP.c.role, NP.c.address, N.c.incident_at)
                .select_from(NP.join(N, N.c.id == NP.c.notification_id))
                .where(NP.c.person_id.in_(chunk), visible(user, "notification"), visible(user, "notification_person"))
                .order_by(N.c.incident_at.desc()))
        for r in conn.execute(stmt):
            d = out[r.person_id]
            d["notifications"] += 1
            d["last_incident_at"] = d["last_incident_at"] or r.incident_at
            if _plain(r.role) not in d["roles"]:
                d["roles"].append(_plain(r.role))
            if r.address and r.address not in d["addresses"]:
                d["addresses"].append(r.address)
    return out


def _match_columns():
    return (PM.c.id, PM.c.person_a_id, PM.c.person_b_id, PM.c.status, PM.c.score, PM.c.why, PM.c.version,
            PM.c.decided_by_id, PM.c.decided_at_utc, PM.c.created_at_utc)


def _match_dict(row) -> dict:
    d = dict(row)
    d["status"] = _plain(d["status"])
    d["why"] = json.loads(d["why"]) if d["why"] else []
    return d


def list_matches(session: Session, user: User | None, person_ids: list[int],
                 statuses: tuple[str, ...] = (MatchStatus.suggested.value, MatchStatus.confirmed.value)) -> list[dict]:
    """Matches involving the given people (default: open suggestions and confirmed links), best first, each with
    ``why`` (a list of plain reasons), ``version`` (for the decision), ``a_name``/``b_name`` labels and both
    persons' details (``person_a``/``person_b``: name, date of birth, addresses as typed, notifications seen)."""
    ids = {int(p) for p in person_ids}
    conn = session.connection()
    rows = {}
    for chunk in _chunks(ids):
        for side in (PM.c.person_a_id, PM.c.person_b_id):
            stmt = select(*_match_columns()).where(side.in_(chunk), PM.c.status.in_(statuses),
                                                   visible(user, "person_match"))
            for r in conn.execute(stmt).mappings():
                rows[r["id"]] = _match_dict(r)
    details = _person_details(session, user, {p for r in rows.values() for p in (r["person_a_id"], r["person_b_id"])})
    out = []
    for r in rows.values():
        a, b = details.get(r["person_a_id"]), details.get(r["person_b_id"])
        if a is None or b is None:
            continue
        r.update(person_a=a, person_b=b, a_name=a["label"], b_name=b["label"])
        out.append(r)
    out.sort(key=lambda r: (r["status"] != MatchStatus.suggested.value, -r["score"], r["id"]))
    return out


def get_match(session: Session, user: User | None, match_id: int) -> dict | None:
    row = session.connection().execute(
        select(*_match_columns()).where(PM.c.id == match_id, visible(user, "person_match"))).mappings().first()
    return _match_dict(row) if row else None


# ---------------------------------------------------------------------------------------------- deciding

_DECISIONS = {  # attempted -> (from, to)
    "confirm_match": (MatchStatus.suggested, MatchStatus.confirmed),
    "reject_match": (MatchStatus.suggested, MatchStatus.rejected),
    "undo_match": (MatchStatus.confirmed, MatchStatus.undone),
}


def _decide(session: Session, user: User | None, match_id: int, expected_version: int, attempted: str) -> dict:
    require(session, user, "manage_matches")
    before, after = _DECISIONS[attempted]
    old = get_match(session, user, match_id)
    if old is None:
        raise refuse(session, user, attempted, "person_match", match_id)
    if old["version"] == expected_version and old["status"] != before.value:
        raise InvalidDecision(f"This match is {old['status']}: only a {before.value} match can be "
                              f"{after.value}.", old)
    if not checked_update(session, update(PM).where(
            PM.c.id == match_id, PM.c.version == expected_version, PM.c.status == before.value,
            visible(user, "person_match"))
            .values(status=after.value, version=PM.c.version + 1, decided_by_id=user.id, decided_at_utc=utcnow())):
        current = get_match(session, user, match_id)
        session.rollback()
        if current is None:
            raise refuse(session, user, attempted, "person_match", match_id)
        raise MatchConflict(current)
    audit.record(session, user, "change", "person_match", match_id, decision=attempted.removesuffix("_match"),
                 person_a_id=old["person_a_id"], person_b_id=old["person_b_id"],
                 old={"status": old["status"], "version": old["version"]},
                 new={"status": after.value, "version": old["version"] + 1})
    return get_match(session, user, match_id)


def confirm_match(session: Session, user: User | None, match_id: int, expected_version: int) -> dict:
    """The two records are the same person: their histories are read together from now on."""
    return _decide(session, user, match_id, expected_version, "confirm_match")


def reject_match(session: Session, user: User | None, match_id: int, expected_version: int) -> dict:
    """Not the same person: the pair is never suggested again."""
    return _decide(session, user, match_id, expected_version, "reject_match")


def undo_match(session: Session, user: User | None, match_id: int, expected_version: int) -> dict:
    """Undo a confirmed link: the histories separate again, and the pair is not suggested again."""
    return _decide(session, user, match_id, expected_version, "undo_match")


# ---------------------------------------------------------------------------------------------- history


def earlier_statement(user: User | None, person_ids: list[int], since: dt.datetime, until: dt.datetime):
    """Notifications of these people (any role) with incidents in ``since``..``until`` (inclusive), newest first.
    Driven by ``ix_np_person`` (person_id, role), then the notification by its primary key."""
    return (select(NP.c.person_id, NP.c.role, NP.c.surname, NP.c.forename, N.c.id.label("notification_id"),
                   N.c.police_ref, N.c.incident_at, N.c.stream, N.c.risk)
            .select_from(NP.join(N, N.c.id == NP.c.notification_id))
            .where(NP.c.person_id.in_(person_ids), N.c.incident_at >= since, N.c.incident_at <= until,
                   visible(user, "notification"), visible(user, "notification_person"))
            .order_by(N.c.incident_at.desc(), N.c.id.desc()))


@dataclass
class _Want:
    person_id: int
    since: dt.datetime
    until: dt.datetime
    inclusive: bool  # incidents at exactly ``until`` count (a case's history), else only before it
    exclude: int | None = None  # the case's own notification


def _histories(session: Session, user: User | None, wants: dict, months: int) -> dict:
    """key -> history for each ``_Want``; a fixed number of queries however many people."""
    from meetings.models import Action, AgendaItem, Meeting  # see the report: dv reading meetings' tables

    conn = session.connection()
    if not wants:
        return {}
    groups = linked_components(session, {w.person_id for w in wants.values()})
    everyone = set().union(*groups.values())
    since, until = min(w.since for w in wants.values()), max(w.until for w in wants.values())
    by_person: dict[int, list] = defaultdict(list)
    for chunk in _chunks(everyone):
        for r in conn.execute(earlier_statement(user, chunk, since, until)).mappings():
            by_person[r["person_id"]].append(r)

    per_want: dict = {}
    for key, w in wants.items():
        rows = [r for p in groups[w.person_id] for r in by_person.get(p, ())]
        rows.sort(key=lambda r: (r["incident_at"], r["notification_id"]), reverse=True)
        seen, earlier = set(), []
        for r in rows:
            at = r["incident_at"]
            if at < w.since or at > w.until or (not w.inclusive and at == w.until):
                continue
            if r["notification_id"] == w.exclude or (r["notification_id"], _plain(r["role"]), r["person_id"]) in seen:
                continue
            seen.add((r["notification_id"], _plain(r["role"]), r["person_id"]))
            earlier.append({"notification_id": r["notification_id"], "police_ref": r["police_ref"],
                            "incident_at": at, "stream": _plain(r["stream"]), "risk": _plain(r["risk"]),
                            "role": _plain(r["role"]), "surname": r["surname"], "forename": r["forename"],
                            "name": _listing(r["surname"], r["forename"]), "person_id": r["person_id"],
                            "linked": r["person_id"] != w.person_id})
        per_want[key] = earlier
    nids = {e["notification_id"] for es in per_want.values() for e in es}

    AI, M, A, G = AgendaItem.__table__, Meeting.__table__, Action.__table__, Agency.__table__
    decisions: dict[int, list[dict]] = defaultdict(list)
    actions: dict[int, list[dict]] = defaultdict(list)
    children: dict[int, list[dict]] = defaultdict(list)
    for chunk in _chunks(nids):
        stmt = (select(AI.c.notification_id, N.c.police_ref, M.c.meeting_date, AI.c.section, AI.c.position,
                       AI.c.reasons, AI.c.removed, AI.c.removed_reason, AI.c.late_addition)
                .select_from(AI.join(M, M.c.id == AI.c.meeting_id).join(N, N.c.id == AI.c.notification_id))
                .where(AI.c.notification_id.in_(chunk), visible(user, "notification")))
        for r in conn.execute(stmt).mappings():
            d = dict(r)
            d["reasons"] = json.loads(d["reasons"]) if d["reasons"] else []
            decisions[r["notification_id"]].append(d)
        stmt = (select(A.c.id, A.c.notification_id, N.c.police_ref, G.c.name.label("agency"), A.c.owner,
                       A.c.description, A.c.due_at, A.c.status)
                .select_from(A.join(N, N.c.id == A.c.notification_id).join(G, G.c.id == A.c.agency_id))
                .where(A.c.notification_id.in_(chunk), A.c.status.in_(OPEN_ACTION), visible(user, "action"),
                       visible(user, "notification")))
        for r in conn.execute(stmt).mappings():
            actions[r["notification_id"]].append(dict(r, status=_plain(r["status"])))
        stmt = (select(NP.c.notification_id, NP.c.person_id, NP.c.surname, NP.c.forename, NP.c.dob,
                       NP.c.school_name, NP.c.present)
                .where(NP.c.notification_id.in_(chunk), NP.c.role == PersonRole.child.value,
                       visible(user, "notification_person")))
        for r in conn.execute(stmt).mappings():
            children[r["notification_id"]].append(dict(r))

    headers = _person_details(session, user, everyone) if everyone else {}
    out = {}
    for key, w in wants.items():
        earlier = per_want[key]
        order = list(dict.fromkeys(e["notification_id"] for e in earlier))  # newest first
        refs = {e["notification_id"]: e["police_ref"] for e in earlier}
        kids: dict[int, dict] = {}
        for nid in order:
            for c in children.get(nid, ()):
                if c["person_id"] in groups[w.person_id]:
                    continue
                k = kids.setdefault(c["person_id"], {
                    "person_id": c["person_id"], "surname": c["surname"], "forename": c["forename"],
                    "name": _listing(c["surname"], c["forename"]), "dob": c["dob"], "schools": [],
                    "school_name": c["school_name"], "police_refs": []})
                if c["school_name"] and c["school_name"] not in k["schools"]:
                    k["schools"].append(c["school_name"])
                k["school_name"] = k["school_name"] or c["school_name"]
                k["dob"] = k["dob"] or c["dob"]
                if refs[nid] not in k["police_refs"]:
                    k["police_refs"].append(refs[nid])
        out[key] = {
            "person_id": w.person_id,
            "person": headers.get(w.person_id),
            "linked_person_ids": sorted(groups[w.person_id] - {w.person_id}),
            "since": w.since, "before": w.until, "months": months,
            "earlier": earlier,
            "decisions": sorted((d for nid in order for d in decisions.get(nid, ())),
                                key=lambda d: (d["meeting_date"], -d["position"]), reverse=True),
            "open_actions": sorted((a for nid in order for a in actions.get(nid, ())),
                                   key=lambda a: (a["due_at"] is None, a["due_at"] or dt.datetime.min, a["id"])),
            "children": list(kids.values()),
        }
    return out


def person_history(session: Session, user: User | None, person_id: int, *, before: dt.datetime | None = None,
                   months: int = 12, log_view: bool = True) -> dict:
    """A person's history, with everyone linked to them by confirmed matches: ``earlier`` notifications with
    incidents in the ``months`` before ``before`` (default now; wall-clock; any role, newest first), the meeting's
    ``decisions`` on them, their ``open_actions`` and the ``children`` on them with their schools as typed (one
    entry per child). Everything is filtered by ``core.scope.visible``. ``log_view`` audits the view."""
    until = before or london_now()
    want = _Want(int(person_id), _months_before(until, months), until, inclusive=before is None)
    history = _histories(session, user, {0: want}, months)[0]
    if log_view:
        audit.record(session, user, "view", "person", person_id, what="history", months=months,
                     linked=history["linked_person_ids"], notifications=len(history["earlier"]))
    return history


def case_histories(session: Session, user: User | None, notification_ids: list[int], *, months: int = 12) -> dict:
    """For each notification the user may see: its victim's and perpetrator's histories (:func:`person_history`
    as at its incident, the notification itself left out) and its own children with their schools. One batch of
    queries for a whole agenda. Returns ``{notification id: case}`` where a case has ``people`` (victims, then
    perpetrators: ``role``, ``person_id``, ``name`` as given here, and their history's keys), ``victim`` and
    ``perpetrator`` (the first of each, or None) and ``children``."""
    conn = session.connection()
    cases: dict[int, dict] = {}
    for chunk in _chunks({int(n) for n in notification_ids}):
        stmt = select(N.c.id, N.c.police_ref, N.c.incident_at).where(N.c.id.in_(chunk), visible(user, "notification"))
        for r in conn.execute(stmt):
            cases[r.id] = {"notification_id": r.id, "police_ref": r.police_ref, "incident_at": r.incident_at,
                           "months": months, "people": [], "victim": None, "perpetrator": None, "children": []}
    wants: dict[tuple[int, int], _Want] = {}
    links: dict[int, list] = defaultdict(list)
    for chunk in _chunks(cases):
        stmt = (select(NP.c.id, NP.c.notification_id, NP.c.person_id, NP.c.role, NP.c.position, NP.c.surname,
                       NP.c.forename, NP.c.dob, NP.c.school_name, NP.c.present)
                .where(NP.c.notification_id.in_(chunk), visible(user, "notification_person")))
        for r in conn.execute(stmt).mappings():
            links[r["notification_id"]].append(r)
    for nid, case in cases.items():
        at = case["incident_at"]
        for r in sorted(links[nid], key=lambda r: (_plain(r["role"]), r["position"])):
            if _plain(r["role"]) in PARTY_ROLES:
                wants[(nid, r["id"])] = _Want(r["person_id"], _months_before(at, months), at, True, exclude=nid)
            elif _plain(r["role"]) == PersonRole.child.value:
                case["children"].append({"person_id": r["person_id"], "surname": r["surname"],
                                         "forename": r["forename"], "name": _listing(r["surname"], r["forename"]),
                                         "dob": r["dob"], "school_name": r["school_name"], "present": r["present"]})
    histories = _histories(session, user, wants, months)
    for nid, case in cases.items():
        for r in sorted(links[nid], key=lambda r: (_plain(r["role"]) != "victim", _plain(r["role"]), r["position"])):
            if (nid, r["id"]) not in histories:
                continue
            person = {"role": _plain(r["role"]), "person_id": r["person_id"], "surname": r["surname"],
                      "forename": r["forename"], "name": _listing(r["surname"], r["forename"]), "dob": r["dob"],
                      **histories[(nid, r["id"])]}
            case["people"].append(person)
            if case[person["role"]] is None:
                case[person["role"]] = person
    return cases


def case_history(session: Session, user: User | None, notification_id: int, *, months: int = 12,
                 log_view: bool = True) -> dict | None:
    """One case's history for the agenda (:func:`case_histories`); None when the notification does not exist or
    is outside the user's scope (the refusal is audited). ``log_view`` audits the view of each person's history."""
    case = case_histories(session, user, [notification_id], months=months).get(int(notification_id))
    if case is None:
        audit.record(session, user, "view", "notification", notification_id, outcome="refused", what="history")
        return None
    if log_view:
        for person in case["people"]:
            audit.record(session, user, "view", "person", person["person_id"], what="history", months=months,
                         notification_id=notification_id, linked=person["linked_person_ids"],
                         notifications=len(person["earlier"]))
    return case


__all__ = ["MatchConflict", "InvalidDecision", "Who", "assess", "case_histories", "case_history", "confirm_match",
           "earlier_statement", "get_match", "linked_components", "linked_person_ids", "list_matches",
           "name_tokens", "normalise_address", "person_history", "reject_match", "suggest_matches", "undo_match"]
