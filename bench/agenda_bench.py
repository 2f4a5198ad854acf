#!/usr/bin/env python
"""Agenda benchmark: one meeting day's agenda, with each case's history, over five years of notifications.

    .venv/bin/python bench/agenda_bench.py [--notifications 500000] [--database-url URL | --postgres]
                                           [--json OUT] [--keep DB] [--seed N] [--end-date YYYY-MM-DD]
                                           [--runs 5] [--per-case 20] [--analyze] [--skip-page]

Targets from the issue, with 500,000 notifications (5 years at a large county) in SQLite and in PostgreSQL:

* the agenda for one day, with history, builds in <= 0.5 s: (a) ``build_agenda`` for the meeting day as the
  scheduled job (user None), plus (b) ``agenda_view`` and ``case_histories`` for every case on it, as the
  coordinator;
* the Agenda page renders on the server in <= 1 s: (d) Streamlit's ``AppTest`` running ``app.py`` signed in as a
  coordinator, on the meeting day, after a warm-up run.

Also measured, not against a target: (c) ``suggest_matches`` for everyone on the agenda at once, and for one case
at a time (the page calls it per case, when a case is chosen); the page with a case chosen, and the "Prepare the
export" click (the xlsx). And (e) the query plan of the history query (``dv.matching.earlier_statement``, compiled
with literal binds for the agenda's own people): ``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN`` and
``EXPLAIN (ANALYZE, BUFFERS)`` on PostgreSQL; plus the plan of ``agenda_view``'s slowest statement (overdue
actions). For the page, where a render's time goes: the services and each Streamlit element function timed
(``parts``), every SQL statement timed, and one cProfile'd render.

**The database** is written straight into the tables (no xlsx, no importer), from a seeded ``random.Random``
(made-up names from ``dv.synthetic``'s pools): ``import_batch`` (one a day), ``person``, ``notification``
(~270 a day over 5 years up to the meeting's cut-off; risk mix high/medium/standard/not assessed 15/35/45/5, half
crime), ``notification_person`` (victim, perpetrator, 0-3 children), about a quarter repeat victims (an earlier
victim, usually within months, usually with the same perpetrator and children; 3 % of repeats on a second,
variant person record — no date of birth, a typo, a swapped date — for the matcher to find), the past meetings and
their agenda items (every notification before the measured window was on a closed agenda, so histories have
decisions and ``build_agenda`` finds a previous meeting), and ``action`` rows (0.4 per notification, agencies
seeded by migration 0002; stale ones mostly done, recent ones mostly open). A coordinator account
``bench-coordinator`` is created. The meeting day is ``next_meeting_day(--end-date)``.

* SQLite (default): generated once into ``bench/.cache/`` (keyed by size, seed, end date, generator version and
  the migrations), then copied to a temporary folder for each benchmark run, so the cache is never changed. The
  app never runs ``ANALYZE`` on SQLite, so by default neither does the benchmark (``--analyze`` runs it on the copy).
* ``--postgres``: a throwaway PostgreSQL server in a temporary folder (``tests.conftest``'s helpers: initdb, trust
  auth, fsync off), generated with COPY (``core.db.bulk_insert``), then ``VACUUM ANALYZE`` (what autovacuum does
  after a bulk load). ``--database-url postgresql+psycopg://...``: an existing database whose ``public`` schema is
  DROPPED and recreated first.
* ``--keep DB``: SQLite — the database the run measured (agenda built, suggestions stored) is copied to ``DB``;
  PostgreSQL — a ``pg_dump -Fc`` of it is written to ``DB``.

Every measurement runs in a fresh interpreter (``--child``): one warm-up run (reported as ``cold_s``), then
``--runs`` timed runs (median reported) — build, view and matches each in a transaction that is rolled back, so
each run does the whole work again — and one more run with every SQL statement timed, so a slow target can be
traced to its queries. Results: a table, PASS/FAIL lines, and JSON (default ``bench/results/agenda.json``, or
``bench/results/agenda-postgres.json`` for PostgreSQL), with the git HEAD and a hash of each measured source file;
a source file changed while the benchmark ran is reported (the figures would mix two versions of the code).
Exit status 1 when a target fails or a measurement errs.
"""
from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from bisect import bisect_right
from itertools import accumulate
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the project importable
    sys.path.insert(0, str(ROOT))

CACHE_DIR = ROOT / "bench" / ".cache"
RESULTS_DIR = ROOT / "bench" / "results"
DEFAULT_NOTIFICATIONS = 500_000
DEFAULT_SEED = 1
DEFAULT_END = dt.date(2026, 11, 17)  # a Tuesday: the agenda covers Monday 09:00 to Tuesday 09:00
DEFAULT_RUNS = 5
YEARS = 5
CHILD_TIMEOUT_S = 3600
GENERATOR_VERSION = 1  # bump when the generated data changes: a cached database is never reused across versions

FORCE = "Example Police"  # the force of the shipped niche_wide profile
COORDINATOR = "bench-coordinator"
COORDINATOR_PASSWORD = "Bench-Lantern-Orchard-2026"

# Targets from the issue.
AGENDA_MAX_S = 0.5
PAGE_MAX_S = 1.0

# Shape of the data.
CRIME_SHARE = 0.5
REPEAT_SHARE = 0.25
REPEAT_MEAN_DAYS = 120  # how long ago a repeat victim's earlier incident was, on average (exponential)
VARIANT_SHARE = 0.03  # repeats recorded on a second person record (no dob, typo, swapped day and month)
ACTIONS_PER_NOTIFICATION = 0.4
CHILD_COUNTS = ((0, 45), (1, 25), (2, 18), (3, 12))
BENCH_RISKS = (("high", 15, 14, 27), ("medium", 35, 10, 13), ("standard", 45, 1, 9), ("not_assessed", 5, None, None))
CHUNK_ROWS = 100_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 4) if values else None


# ---------------------------------------------------------------------------------------------------------------
# Generation (child "generate"): rows made in Python, written with core.db.bulk_insert (COPY on PostgreSQL).
# ---------------------------------------------------------------------------------------------------------------


class _Generator:
    """One generation run: the random stream, the people made so far and the rows of every table."""

    def __init__(self, n: int, seed: int, end: dt.date):
        from dv import synthetic as syn
        from meetings.agenda import agenda_window, is_meeting_day, next_meeting_day

        self.syn = syn
        self.rng = random.Random(seed)
        self.n = n
        self.meeting_day = next_meeting_day(end)
        self.span_start = dt.datetime.combine(end - dt.timedelta(days=round(365.25 * YEARS)), dt.time())
        self.span_end = dt.datetime.combine(end, dt.time(9, 0))  # the data ends at the last day's cut-off
        # Meeting days from the first whole window to the measured one; each window ends at its day's cut-off.
        first = next_meeting_day(self.span_start.date() + dt.timedelta(days=1))
        days, d = [], first
        while d <= self.meeting_day:
            if is_meeting_day(d):
                days.append(d)
            d += dt.timedelta(days=1)
        self.meeting_days = days
        self.window_ends = [agenda_window(d)[1] for d in days]
        self.window_starts = [agenda_window(d)[0] for d in days]
        # people: parallel lists (surname, forename, dob, gender)
        self.p_surname: list[str] = []
        self.p_forename: list[str] = []
        self.p_dob: list[dt.date | None] = []
        self.p_gender: list[str] = []
        self._norm: dict[str, str] = {}
        self._cum: dict[int, list] = {}
        circ = []
        for _ in range(400):  # a pool of made-up circumstances texts (~250-400 characters, as officers write)
            parts = [self.rng.choice(syn.CALLERS), self.rng.choice(syn.FILLERS), self.rng.choice(syn.OUTCOMES),
                     self.rng.choice(syn.FILLERS)]
            text = " ".join(parts).format(vo="her", vs="she", vp="her", so="him", ss="he", sp="his")
            circ.append(text)
        self.circumstances = circ
        self.officers = [f"PC {c} {self.rng.choice(syn.SURNAMES)}" for c in self.rng.sample(range(1000, 10000), 120)]

    # -- helpers ------------------------------------------------------------------------------------------------

    def _weighted(self, items, at: int):
        cum = self._cum.get(id(items))
        if cum is None:
            cum = self._cum[id(items)] = list(accumulate(it[at] for it in items))
        return self.rng.choices(items, cum_weights=cum)[0]

    def normalise(self, value: str) -> str:
        out = self._norm.get(value)
        if out is None:
            from dv.parsing import normalise_name

            out = self._norm[value] = normalise_name(value)
        return out

    def person(self, surname: str, forename: str, dob: dt.date | None, gender: str) -> int:
        self.p_surname.append(surname)
        self.p_forename.append(forename)
        self.p_dob.append(dob)
        self.p_gender.append(gender)
        return len(self.p_surname) - 1

    def address(self) -> str:
        syn, rng = self.syn, self.rng
        town = rng.choice(syn.TOWNS)
        _, area, lo, hi = town
        postcode = f"{area}{rng.randint(lo, hi)} {rng.randint(1, 9)}{rng.choice(syn.UNIT_LETTERS)}" \
                   f"{rng.choice(syn.UNIT_LETTERS)}"
        if rng.random() < 0.15:
            line = f"Flat {rng.randint(1, 40)}, {rng.choice(syn.BLOCKS)}, {rng.choice(syn.STREETS)}"
        else:
            line = f"{rng.randint(1, 180)} {rng.choice(syn.STREETS)}"
        return f"{line}, {town[0]}, {postcode}"

    def dob(self, on: dt.date, age_years: int) -> dt.date:
        return on - dt.timedelta(days=int(age_years * 365.25) + self.rng.randint(1, 364))

    def new_adults(self, on: dt.date) -> tuple[int, str, int, str, str]:
        """A new victim and suspect: (victim, victim's address, suspect, suspect's address, relationship)."""
        syn, rng = self.syn, self.rng
        rel = self._weighted(syn.RELATIONSHIPS, 2)
        v_gender = syn.FEMALE if rng.random() < 0.78 else syn.MALE
        v_age = 16 + int(rng.triangular(0, 50, 12))
        v = self.person(rng.choice(syn.SURNAMES),
                        rng.choice(syn.FEMALE_FORENAMES if v_gender == syn.FEMALE else syn.MALE_FORENAMES),
                        self.dob(on, v_age), v_gender)
        s_gender = syn.MALE if v_gender == syn.FEMALE else (syn.FEMALE if rng.random() < 0.9 else syn.MALE)
        s_age = max(16, v_age + int(rng.gauss(2, 6)))
        s_surname = self.p_surname[v] if rng.random() < 0.25 else rng.choice(syn.SURNAMES)
        s = self.person(s_surname, rng.choice(syn.FEMALE_FORENAMES if s_gender == syn.FEMALE else syn.MALE_FORENAMES),
                        self.dob(on, s_age) if rng.random() < 0.97 else None, s_gender)
        v_addr = self.address()
        s_addr = v_addr if rng.random() < 0.5 else ("No fixed abode" if rng.random() < 0.04 else self.address())
        return v, v_addr, s, s_addr, rel[0]

    def new_child(self, on: dt.date, surname: str, baby: bool) -> tuple[int, str | None]:
        syn, rng = self.syn, self.rng
        age_days = rng.randint(7, 364) if baby else rng.randint(365, 17 * 365)
        gender = syn.FEMALE if rng.random() < 0.5 else syn.MALE
        c = self.person(surname, rng.choice(syn.GIRL_FORENAMES if gender == syn.FEMALE else syn.BOY_FORENAMES),
                        on - dt.timedelta(days=age_days), gender)
        age = age_days // 365
        school = None
        if age >= 4:
            pool = syn.PRIMARY_SCHOOLS if age <= 10 else syn.SECONDARY_SCHOOLS if age <= 15 else syn.COLLEGES
            school = rng.choice(rng.choice(pool))
        return c, school

    def new_children(self, on: dt.date, surname: str) -> tuple:
        count = self._weighted(CHILD_COUNTS, 1)[0]
        baby_at = self.rng.randrange(count) if count and self.rng.random() < 0.12 else -1
        return tuple(self.new_child(on, surname, i == baby_at) for i in range(count))

    def variant(self, p: int) -> int:
        """A second record for the same person, as another extract typed them: the matcher's job to find it."""
        rng = self.rng
        surname, forename, dob, gender = self.p_surname[p], self.p_forename[p], self.p_dob[p], self.p_gender[p]
        kind = rng.random()
        if kind < 0.5 or dob is None:
            dob = None
        elif kind < 0.8 and len(forename) > 3:
            i = rng.randrange(1, len(forename) - 1)
            forename = forename[:i] + forename[i + 1:]  # a letter dropped
        elif dob.day <= 12 and dob.day != dob.month:
            dob = dob.replace(day=dob.month, month=dob.day)
        else:
            dob = None
        return self.person(surname, forename, dob, gender)

    # -- the run ------------------------------------------------------------------------------------------------

    def incident_times(self) -> list[dt.datetime]:
        rng = self.rng
        span = int((self.span_end - self.span_start).total_seconds() // 60)
        n_days = -(-span // 1440)
        hour_cum = list(accumulate(self.syn.HOUR_WEIGHTS))
        hours = range(24)
        times = []
        start = self.span_start
        for _ in range(self.n):
            while True:
                minute = rng.randrange(n_days) * 1440 + rng.choices(hours, cum_weights=hour_cum)[0] * 60 \
                         + rng.randrange(60)
                if minute < span:
                    break
            times.append(start + dt.timedelta(minutes=minute))
        times.sort()
        return times

    def run(self) -> dict:
        """Every table's rows, with list indexes where ids go (ids are reserved when written)."""
        syn, rng = self.syn, self.rng
        times = self.incident_times()
        per_day = self.n / max(1, (self.span_end - self.span_start).days)
        mean_gap = max(1.0, per_day * REPEAT_MEAN_DAYS)
        notifications, links, cases = [], [], []
        risks = BENCH_RISKS
        for i, at in enumerate(times):
            on = at.date()
            prev = None
            if i and rng.random() < REPEAT_SHARE:
                j = i - 1 - int(rng.expovariate(1.0 / mean_gap))
                if j >= 0:
                    prev = cases[j]
            if prev is not None:
                v, v_addr, s, s_addr, rel, kids = prev
                if rng.random() < VARIANT_SHARE:
                    v = self.variant(v)
                if rng.random() >= 0.8:
                    _, _, s, s_addr, _ = self.new_adults(on)
                if rng.random() >= 0.85:
                    kids = self.new_children(on, self.p_surname[v])
                elif rng.random() < 0.04:
                    kids = (*kids, self.new_child(on, self.p_surname[v], True))
                repeat = True
            else:
                v, v_addr, s, s_addr, rel = self.new_adults(on)
                kids = self.new_children(on, self.p_surname[v])
                repeat = False
            cases.append((v, v_addr, s, s_addr, rel, kids))

            crime = rng.random() < CRIME_SHARE
            risk, _, lo, hi = self._weighted(risks, 1)
            dash = rng.randint(lo, hi) if lo is not None and rng.random() < 0.9 else None
            ref = f"NP/{at:%y}/{i + 1:07d}"
            if crime:
                offence, ho_code, _ = self._weighted(syn.CRIME_OFFENCES, 2)
                crime_ref = f"CR/{i + 1:07d}/{at:%y}"
                classification, reason = "Crime", f"crime reference {crime_ref}"
            else:
                offence, _ = self._weighted(syn.NON_CRIME_OFFENCES, 1)
                ho_code = crime_ref = None
                classification = "Domestic incident"
                reason = f"no crime reference or offence code; classified '{classification}'"
            pregnant = rng.random() < 0.03
            notifications.append({
                "force": FORCE, "police_ref": ref, "crime_ref": crime_ref, "classification": classification,
                "offence": offence, "ho_code": ho_code, "incident_at": at,
                "reported_at": at + dt.timedelta(minutes=rng.randint(1, 90)),
                "location": v_addr.rsplit(", ", 1)[0], "postcode": v_addr.rsplit(", ", 1)[-1][:10], "risk": risk,
                "dash_score": dash, "flag_pregnancy": pregnant, "flag_strangulation": rng.random() < 0.04,
                "flag_weapons": rng.random() < 0.03, "flags_other": None, "officer": rng.choice(self.officers),
                "circumstances": rng.choice(self.circumstances), "relationship": rel, "stream": "crime" if crime
                else "non_crime", "stream_reason": reason, "victim_id": v,  # an index until ids are reserved
                "people_signature": None, "source_hash": f"{rng.getrandbits(160):040x}", "legal_hold": False,
                "version": 1,
            })
            links.append((v, "victim", 0, v_addr, None, None))
            links.append((s, "perpetrator", 0, s_addr, None, None))
            for pos, (c, school) in enumerate(kids):
                links.append((c, "child", pos, None, school, rng.random() < 0.45))
            notifications[-1]["_links"] = len(links)
            notifications[-1]["_repeat"] = repeat
            notifications[-1]["_baby"] = any(self.p_dob[c] is not None and (on - self.p_dob[c]).days < 365
                                             for c, _ in kids)
            notifications[-1]["_kids"] = bool(kids)
        return {"notifications": notifications, "links": links}


def child_generate(url: str, n: int, seed: int, end: str) -> dict:
    from sqlalchemy import select
    from sqlmodel import Session

    from core.auth import create_user
    from core.db import bulk_insert, get_engine, migrate, reserve_ids
    from core.models import Agency, UserRole
    from dv.models import ImportBatch, Notification, NotificationPerson, Person
    from meetings.models import Action, AgendaItem, Meeting

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    migrate(url)
    timings["migrate_s"] = round(time.perf_counter() - t0, 2)
    gc.disable()  # millions of acyclic dicts and tuples: the cyclic collector would only rescan them
    t0 = time.perf_counter()
    gen = _Generator(n, seed, dt.date.fromisoformat(end))
    data = gen.run()
    timings["generate_people_and_notifications_s"] = round(time.perf_counter() - t0, 2)
    rng = gen.rng
    engine = get_engine(url)
    now = dt.datetime(gen.meeting_day.year, gen.meeting_day.month, gen.meeting_day.day, 6, 0)
    counts: dict[str, int] = {}

    def write(conn, table, rows: list[dict], what: str) -> None:
        t = time.perf_counter()
        for i in range(0, len(rows), CHUNK_ROWS):
            bulk_insert(conn, table, rows[i:i + CHUNK_ROWS])
        timings[f"write_{what}_s"] = round(time.perf_counter() - t, 2)
        counts[what] = len(rows)

    with engine.begin() as conn:
        agencies = [r[0] for r in conn.execute(select(Agency.__table__.c.id).order_by(Agency.__table__.c.id))]
        # import batches: one a day (the morning extract)
        first_day = gen.span_start.date()
        n_days = (gen.meeting_day - first_day).days + 1
        batch_rows = [{"file_name": f"extract-{first_day + dt.timedelta(days=d):%Y-%m-%d}.xlsx",
                       "sha256": f"{rng.getrandbits(256):064x}", "profile_name": "niche_wide", "force": FORCE,
                       "imported_by": "cli:bench", "started_at_utc": dt.datetime.combine(
                           first_day + dt.timedelta(days=d), dt.time(6, 30)), "rows_read": 0}
                      for d in range(n_days)]
        bt = ImportBatch.__table__
        batch_ids = reserve_ids(conn, bt, len(batch_rows))  # SQLite: max(id) + 1..., we are the only writer
        for row, bid in zip(batch_rows, batch_ids):
            row["id"] = bid
        write(conn, bt, batch_rows, "import_batch")

        # people
        t = time.perf_counter()
        pt = Person.__table__
        person_ids = reserve_ids(conn, pt, len(gen.p_surname))
        norm = gen.normalise
        people = []
        for i, (s, f, d, g) in enumerate(zip(gen.p_surname, gen.p_forename, gen.p_dob, gen.p_gender)):
            key = f"{norm(s)}|{norm(f)}|{d.isoformat()}" if d is not None else None
            people.append({"id": person_ids[i], "force": FORCE, "police_person_id": None, "surname": s,
                           "forename": f, "dob": d, "gender": g, "match_key": key, "created_at_utc": now})
        timings["rows_person_s"] = round(time.perf_counter() - t, 2)
        write(conn, pt, people, "person")
        del people

        # notifications, with their people
        t = time.perf_counter()
        nt = Notification.__table__
        notes = data["notifications"]
        note_ids = reserve_ids(conn, nt, len(notes))
        link_rows = []
        start = 0
        links = data["links"]
        p_s, p_f, p_d, p_g = gen.p_surname, gen.p_forename, gen.p_dob, gen.p_gender
        extras = []
        for nid, row in zip(note_ids, notes):
            stop = row.pop("_links")
            extras.append((row.pop("_repeat"), row.pop("_baby"), row.pop("_kids")))
            row["id"] = nid
            row["victim_id"] = person_ids[row["victim_id"]]
            day_index = (row["incident_at"].date() - first_day).days + 1
            row["first_batch_id"] = row["last_batch_id"] = batch_ids[min(day_index, len(batch_ids) - 1)]
            row["created_at_utc"] = row["updated_at_utc"] = row["incident_at"] + dt.timedelta(hours=20)
            sig: dict[str, list] = {"victim": [], "suspect": [], "children": []}
            for p, role, pos, addr, school, present in links[start:stop]:
                link_rows.append({"notification_id": nid, "person_id": person_ids[p], "role": role, "position": pos,
                                  "surname": p_s[p], "forename": p_f[p], "dob": p_d[p], "gender": p_g[p],
                                  "address": addr, "school_name": school, "present": present})
                group = "suspect" if role == "perpetrator" else "children" if role == "child" else role
                sig[group].append([p_s[p], p_f[p], p_d[p].isoformat() if p_d[p] else None, p_g[p], None, addr,
                                   school, present])
            row["people_signature"] = json.dumps(sig, sort_keys=True, ensure_ascii=False)
            start = stop
        timings["rows_notification_s"] = round(time.perf_counter() - t, 2)
        write(conn, nt, notes, "notification")
        write(conn, NotificationPerson.__table__, link_rows, "notification_person")
        del link_rows

        # past meetings (closed) and their agenda items: every notification before the measured window
        t = time.perf_counter()
        mt, it = Meeting.__table__, AgendaItem.__table__
        past = len(gen.meeting_days) - 1  # the last one is the meeting day measured: no agenda yet
        meeting_ids = reserve_ids(conn, mt, past)
        meetings = [{"id": meeting_ids[k], "meeting_date": gen.meeting_days[k], "window_start": gen.window_starts[k],
                     "window_end": gen.window_ends[k], "status": "closed",
                     "published_at_utc": dt.datetime.combine(gen.meeting_days[k], dt.time(8, 0)),
                     "published_by_id": None, "created_at_utc": dt.datetime.combine(gen.meeting_days[k], dt.time(7, 0)),
                     "version": 3} for k in range(past)]
        items, on_agenda = [], []
        positions: dict[tuple[int, str], int] = {}
        for nid, row, (repeat, baby, kids) in zip(note_ids, notes, extras):
            k = bisect_right(gen.window_ends, row["incident_at"])
            if k >= past:
                continue
            risk, dash = row["risk"], row["dash_score"]
            high = risk == "high" or (dash is not None and dash >= 14)
            reasons = []
            if row["stream"] == "crime":
                reasons.append(f"crime: {row['stream_reason']}")
            elif risk in ("high", "medium"):
                reasons.append(f"non-crime, {risk} risk")
            if baby:
                reasons.append("child under 1")
            if row["flag_pregnancy"]:
                reasons.append("pregnancy recorded")
            if not reasons:
                section = "information_only"
            elif high and kids:
                section = "high_risk_children"
            elif high:
                section = "high_risk"
            elif repeat and rng.random() < 0.3:
                section = "repeat_escalating"
                reasons.append("victim's 3rd incident in 12 months")
            elif risk == "medium" and kids:
                section = "medium_children"
            else:
                section = "other"
            mid = meeting_ids[k]
            position = positions[(mid, section)] = positions.get((mid, section), 0) + 1
            removed = section != "information_only" and rng.random() < 0.01
            items.append({"meeting_id": mid, "notification_id": nid, "section": section, "position": position,
                          "reasons": json.dumps(reasons), "marac_flags": json.dumps(
                              ["visible high risk"] if high else []), "prior_incidents_12m": 1 if repeat else 0,
                          "added_by_id": None, "added_reason": None, "removed": removed,
                          "removed_reason": "Already discussed at MARAC" if removed else None,
                          "late_addition": False, "created_at_utc": meetings[k]["created_at_utc"], "version": 1})
            if section != "information_only" and not removed:
                on_agenda.append((nid, gen.meeting_days[k]))
        timings["rows_agenda_s"] = round(time.perf_counter() - t, 2)
        write(conn, mt, meetings, "meeting")
        write(conn, it, items, "agenda_item")
        del items

        # actions agreed at those meetings
        t = time.perf_counter()
        at_ = Action.__table__
        n_actions = int(gen.n * ACTIONS_PER_NOTIFICATION)
        ref = dt.datetime.combine(gen.meeting_day, dt.time(9, 0))
        stale = ref - dt.timedelta(days=60)
        owners = [f"{rng.choice(gen.syn.FEMALE_FORENAMES + gen.syn.MALE_FORENAMES)} {rng.choice(gen.syn.SURNAMES)}"
                  for _ in range(300)]
        descriptions = ("Safeguarding visit to the victim", "Check the children's welfare at school",
                        "Share the DASH with the GP", "Refer to the IDVA service", "Offender management review",
                        "Housing options appointment", "Contact the health visitor", "Refer to MARAC",
                        "Update the child protection plan", "Perpetrator programme referral")
        action_ids = reserve_ids(conn, at_, n_actions)
        actions = []
        for aid in action_ids:
            nid, day = on_agenda[rng.randrange(len(on_agenda))]
            due = dt.datetime.combine(day + dt.timedelta(days=rng.randint(1, 28)), dt.time(17, 0))
            r = rng.random()
            if due < stale:
                status = ("open" if r < 0.002 else "in_progress" if r < 0.003 else "done" if r < 0.85
                          else "not_possible" if r < 0.93 else "not_done")
            elif due < ref:
                status = ("open" if r < 0.06 else "in_progress" if r < 0.10 else "done" if r < 0.90
                          else "not_possible" if r < 0.95 else "not_done")
            else:
                status = ("open" if r < 0.45 else "in_progress" if r < 0.75 else "done" if r < 0.95
                          else "not_possible")
            created = dt.datetime.combine(day, dt.time(10, 30))
            finished = status in ("done", "not_possible", "not_done")
            actions.append({"id": aid, "notification_id": nid, "agency_id": agencies[rng.randrange(len(agencies))],
                            "owner": rng.choice(owners), "description": rng.choice(descriptions), "due_at": due,
                            "status": status, "note": "Could not make contact" if status in
                            ("not_possible", "not_done") else None, "created_by_id": None,
                            "created_at_utc": created, "updated_at_utc": created, "completed_at_utc":
                            min(due, ref) if finished else None, "version": 2 if finished else 1})
        timings["rows_action_s"] = round(time.perf_counter() - t, 2)
        write(conn, at_, actions, "action")
        del actions

    gc.enable()
    with Session(engine) as session:  # the coordinator the page and the services run as (audited)
        create_user(session, None, username=COORDINATOR, display_name="Bench Coordinator", role=UserRole.coordinator,
                    password=COORDINATOR_PASSWORD)
        session.commit()
    if engine.dialect.name == "postgresql":
        t = time.perf_counter()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
        timings["vacuum_analyze_s"] = round(time.perf_counter() - t, 2)
    else:
        raw = engine.raw_connection()  # outside a transaction: every SQLAlchemy one begins IMMEDIATE (core.db)
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
    engine.dispose()
    return {"meeting_day": gen.meeting_day.isoformat(), "counts": counts, "people": len(gen.p_surname),
            "repeat_notifications": sum(1 for e in extras if e[0]), "timings": timings,
            "span": [gen.span_start.isoformat(), gen.span_end.isoformat()], "peak_mb": _peak_mb()}


# ---------------------------------------------------------------------------------------------------------------
# Measurements (children): each prints one JSON line.
# ---------------------------------------------------------------------------------------------------------------


class SqlTimer:
    """Times every statement on an engine (before/after_cursor_execute): where a run's time goes."""

    def __init__(self, engine):
        from sqlalchemy import event

        self.engine, self.event = engine, event
        self.rows: list[tuple[float, str]] = []
        self._start: list[float] = []

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        self._start.append(time.perf_counter())

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        self.rows.append((time.perf_counter() - self._start.pop(), " ".join(statement.split())))

    def __enter__(self):
        self.event.listen(self.engine, "before_cursor_execute", self._before)
        self.event.listen(self.engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *exc):
        self.event.remove(self.engine, "before_cursor_execute", self._before)
        self.event.remove(self.engine, "after_cursor_execute", self._after)

    def summary(self, top: int = 8) -> dict:
        """Total statement time and the slowest statements, grouped by their first 140 characters (IN lists of
        different lengths group together). Time in the driver only: fetching rows into Python is counted in the
        caller's time, not here."""
        import re

        groups: dict[str, list[float]] = {}
        for seconds, sql in self.rows:
            key = re.sub(r"(\?|%\(\w+\)s|\$\d+)(, *(\?|%\(\w+\)s|\$\d+))+", "…", sql)[:140]
            groups.setdefault(key, []).append(seconds)
        ranked = sorted(groups.items(), key=lambda kv: -sum(kv[1]))[:top]
        return {"statements": len(self.rows), "sql_s": round(sum(s for s, _ in self.rows), 4),
                "top": [{"sql": k, "count": len(v), "seconds": round(sum(v), 4)} for k, v in ranked]}


def _setup(url: str):
    os.environ["DATABASE_URL"] = url
    from sqlmodel import Session, select

    from core.db import get_engine
    from core.models import User

    engine = get_engine(url)
    with Session(engine, expire_on_commit=False) as s:
        user = s.exec(select(User).where(User.username == COORDINATOR)).one()
        s.expunge(user)
    return engine, user


def _timed_runs(runs: int, once) -> dict:
    """One warm-up call (cold_s), ``runs`` timed calls (median_s, all_s); ``once()`` returns (seconds, info)."""
    cold, info = once()
    times = []
    for _ in range(runs):
        seconds, info = once()
        times.append(seconds)
    return {"cold_s": round(cold, 4), "median_s": _median(times), "min_s": round(min(times), 4),
            "max_s": round(max(times), 4), "all_s": [round(t, 4) for t in times], **info}


def child_build(url: str, day: str, runs: int, commit: bool) -> dict:
    from sqlmodel import Session

    from meetings.agenda import build_agenda

    engine, _ = _setup(url)
    meeting_day = dt.date.fromisoformat(day)

    def once():
        with Session(engine) as session:
            t0 = time.perf_counter()
            meeting_id = build_agenda(session, None, meeting_day, actor="bench")
            seconds = time.perf_counter() - t0
            from sqlalchemy import func, select

            from meetings.models import AgendaItem

            ai = AgendaItem.__table__
            sections = dict(session.connection().execute(
                select(ai.c.section, func.count()).where(ai.c.meeting_id == meeting_id).group_by(ai.c.section)).all())
            session.rollback()
        return seconds, {"sections": sections, "items": sum(sections.values())}

    if commit:  # build it for real (for the view, the page and the plans)
        with Session(engine) as session:
            t0 = time.perf_counter()
            build_agenda(session, None, meeting_day, actor="bench")
            session.commit()
        return {"seconds": round(time.perf_counter() - t0, 4)}
    out = _timed_runs(runs, once)
    with SqlTimer(engine) as timer:
        once()
    out["sql"] = timer.summary()
    out["peak_mb"] = _peak_mb()
    return out


def _agenda_people(session, user, view) -> tuple[list[int], list[list[int]]]:
    """The notification ids of the cases on the agenda (not removed, not information only), and each case's
    victim and perpetrator person ids."""
    from sqlalchemy import select

    from dv.models import NotificationPerson

    np_ = NotificationPerson.__table__
    ids = [i["notification_id"] for i in view["items"] if not i["removed"]]
    by_case: dict[int, list[int]] = {i: [] for i in ids}
    for k in range(0, len(ids), 500):
        for r in session.connection().execute(select(np_.c.notification_id, np_.c.person_id).where(
                np_.c.notification_id.in_(ids[k:k + 500]), np_.c.role.in_(("victim", "perpetrator")))):
            by_case[r.notification_id].append(r.person_id)
    return ids, [by_case[i] for i in ids]


def child_view(url: str, day: str, runs: int) -> dict:
    from sqlmodel import Session

    from dv.matching import case_histories
    from meetings.agenda import agenda_view, load_rules

    engine, user = _setup(url)
    meeting_day = dt.date.fromisoformat(day)
    months = load_rules().history_months

    def once():
        with Session(engine) as session:
            t0 = time.perf_counter()
            view = agenda_view(session, user, meeting_day, log_view=True)
            t1 = time.perf_counter()
            ids = [i["notification_id"] for i in view["items"] if not i["removed"]]
            cases = case_histories(session, user, ids, months=months)
            t2 = time.perf_counter()
            session.rollback()
        people = [p for c in cases.values() for p in c["people"]]
        info = {"view_s": t1 - t0, "history_s": t2 - t1, "items": len(view["items"]), "cases": len(cases),
                "information_only": len(view["information_only"]), "overdue_actions": len(view["overdue_actions"]),
                "people": len(people), "earlier_rows": sum(len(p["earlier"]) for p in people),
                "people_with_earlier": sum(1 for p in people if p["earlier"]),
                "decisions": sum(len(p["decisions"]) for p in people),
                "open_actions": sum(len(p["open_actions"]) for p in people)}
        return t2 - t0, info

    cold, _ = once()
    totals, views, histories = [], [], []
    info = {}
    for _ in range(runs):
        seconds, info = once()
        totals.append(seconds)
        views.append(info.pop("view_s"))
        histories.append(info.pop("history_s"))
    out = {"cold_s": round(cold, 4), "median_s": _median(totals), "all_s": [round(t, 4) for t in totals],
           "view_median_s": _median(views), "history_median_s": _median(histories), **info}
    with SqlTimer(engine) as timer:
        once()
    out["sql"] = timer.summary()
    # where the Python time of case_histories goes: a cProfile of one more run, top functions by own time
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    once()
    prof.disable()
    stats = pstats.Stats(prof)
    rows = sorted(((v[2], v[3], f"{Path(k[0]).name}:{k[1]}({k[2]})") for k, v in stats.stats.items()),
                  key=lambda r: -r[0])[:10]
    out["profile_top_tottime"] = [{"function": f, "tottime_s": round(tt, 4), "cumtime_s": round(ct, 4)}
                                  for tt, ct, f in rows]
    out["peak_mb"] = _peak_mb()
    return out


def child_matches(url: str, day: str, runs: int, per_case: int) -> dict:
    from sqlmodel import Session

    from dv.matching import suggest_matches
    from meetings.agenda import agenda_view

    engine, user = _setup(url)
    meeting_day = dt.date.fromisoformat(day)
    with Session(engine) as session:
        view = agenda_view(session, user, meeting_day, log_view=False)
        _, people_by_case = _agenda_people(session, user, view)
    everyone = sorted({p for ps in people_by_case for p in ps})

    def run(people):
        with Session(engine) as session:
            t0 = time.perf_counter()
            found = suggest_matches(session, user, people)
            seconds = time.perf_counter() - t0
            session.rollback()
        return seconds, {"suggestions": len(found)}

    out = _timed_runs(runs, lambda: run(everyone))
    out["people"] = len(everyone)
    with SqlTimer(engine) as timer:
        run(everyone)
    out["sql"] = timer.summary()
    step = max(1, len(people_by_case) // per_case) if people_by_case else 1
    sample = people_by_case[::step][:per_case]
    run(sample[0]) if sample else None  # warm-up
    case_times = [run(ps)[0] for ps in sample]
    out["per_case"] = {"cases": len(case_times), "median_s": _median(case_times),
                       "max_s": round(max(case_times), 4) if case_times else None}
    out["peak_mb"] = _peak_mb()
    return out


def _history_statement(session, user, view):
    """The history query as case_histories issues it for this agenda: its first chunk of (at most 500) people,
    the since/until of the whole agenda."""
    from dv.matching import _months_before, earlier_statement
    from meetings.agenda import load_rules

    ids, people_by_case = _agenda_people(session, user, view)
    incident = {i["notification_id"]: i["incident_at"] for i in view["items"]}
    months = load_rules().history_months
    since = _months_before(min(incident[i] for i in ids), months)
    until = max(incident[i] for i in ids)
    everyone = sorted({p for ps in people_by_case for p in ps})
    return earlier_statement(user, everyone[:500], since, until), len(everyone), since, until


def child_explain(url: str, day: str, runs: int) -> dict:
    from sqlmodel import Session

    from meetings.agenda import agenda_view

    engine, user = _setup(url)
    meeting_day = dt.date.fromisoformat(day)
    out: dict = {}
    from sqlalchemy import event

    captured: list = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        if "FROM action" in statement and "due_at <" in statement:
            captured.append((statement, parameters))

    with Session(engine) as session:
        event.listen(engine, "before_cursor_execute", grab)
        try:
            view = agenda_view(session, user, meeting_day, log_view=False)
        finally:
            event.remove(engine, "before_cursor_execute", grab)
        stmt, people, since, until = _history_statement(session, user, view)
        sql = str(stmt.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
        conn = session.connection()
        out.update(people=people, people_in_statement=min(people, 500), since=since.isoformat(),
                   until=until.isoformat())
        out["sql_head"] = " ".join(sql.split())[:600] + " …"
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql).all()
            depth: dict[int, int] = {0: 0}
            plan = []
            for node, parent, _, detail in rows:
                depth[node] = depth.get(parent, 0) + 1
                plan.append("  " * (depth[node] - 1) + detail)
            out["plan"] = plan
            out["sqlite_stat1"] = bool(conn.exec_driver_sql(
                "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'").scalar())
            out["sqlite_version"] = conn.exec_driver_sql("SELECT sqlite_version()").scalar()
        else:
            out["plan"] = [r[0] for r in conn.exec_driver_sql("EXPLAIN " + sql).all()]
            out["plan_analyze"] = [r[0] for r in conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + sql).all()]
            out["server_version"] = conn.exec_driver_sql("SHOW server_version").scalar()
        if captured:  # not asked for, but the slowest statement of agenda_view: the overdue actions
            statement, parameters = captured[0]
            out["overdue_sql_head"] = " ".join(statement.split())[:300] + " …"
            if engine.dialect.name == "sqlite":
                out["overdue_plan"] = [r[3] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement,
                                                                          parameters).all()]
            else:
                out["overdue_plan"] = [r[0] for r in conn.exec_driver_sql(
                    "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).all()]
        times, count = [], 0
        for _ in range(runs + 1):
            t0 = time.perf_counter()
            count = len(conn.execute(stmt).all())
            times.append(time.perf_counter() - t0)
        out["rows"] = count
        out["execute_cold_s"] = round(times[0], 4)
        out["execute_median_s"] = _median(times[1:])
    return out


def child_page(url: str, day: str, runs: int, with_case: bool) -> dict:
    os.environ["DATABASE_URL"] = url
    from streamlit.testing.v1 import AppTest

    _, user = _setup(url)
    meeting_day = dt.date.fromisoformat(day)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    now = time.time()
    at.session_state["auth"] = {"user_id": user.id, "login_at": now, "last_seen": now}
    out: dict = {}
    t0 = time.perf_counter()
    at.run()  # the coordinator's landing page (Notifications): not measured, but reported
    out["landing_page_s"] = round(time.perf_counter() - t0, 4)
    out["landing_title"] = at.title[0].value if len(at.title) else None
    at.switch_page("pages/agenda.py").run()  # today's date: no agenda
    at.date_input(key="agenda_date").set_value(meeting_day)
    t0 = time.perf_counter()
    at.run()
    out["warmup_s"] = round(time.perf_counter() - t0, 4)

    def check() -> None:
        if at.exception:
            raise RuntimeError(f"the page raised: {at.exception[0].value}")
        if [i.value for i in at.info if "no agenda" in str(i.value)]:
            raise RuntimeError("the page shows no agenda for the meeting day")

    check()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t0)
        check()
    out.update(median_s=_median(times), all_s=[round(t, 4) for t in times], min_s=round(min(times), 4),
               max_s=round(max(times), 4), title=at.title[0].value, subheaders=[s.value for s in at.subheader][:12],
               buttons=len(at.button), texts=len(at.text), dataframes=len(at.dataframe))
    # where the page's time goes: every statement timed during one more run, then a profiled run
    from core.db import get_engine

    with SqlTimer(get_engine(url)) as timer:
        t0 = time.perf_counter()
        at.run()
        out["instrumented_s"] = round(time.perf_counter() - t0, 4)
    out["sql"] = timer.summary()
    out["parts"] = _page_parts(at, runs)
    out.update(_profile_run(at))
    if with_case:
        out["with_case"] = _page_with_case(at, runs)
    out["export"] = _page_export(at)
    out["peak_mb"] = _peak_mb()
    return out


PAGE_SERVICES = ("agenda_view", "agenda_workbook", "agenda_text", "build_agenda")
PAGE_ELEMENTS = ("text_input", "button", "columns", "container", "markdown", "text", "dataframe", "download_button",
                 "subheader", "warning", "selectbox", "caption", "date_input", "form", "form_submit_button", "expander",
                 "info", "title", "toggle", "error")


def _page_parts(at, runs: int) -> dict:
    """Where a render's time goes, without a profiler's distortion: the services the page calls and each Streamlit
    element function are wrapped with a timer (the page looks them up at every run), ``runs`` renders, the median
    of each part. ``other_s`` is the rest: the page's own code, Streamlit's script runner and AppTest reading the
    page's messages."""
    import functools

    import streamlit as st
    from streamlit.delta_generator import DeltaGenerator

    from meetings import agenda

    acc: dict[str, list] = {}

    def wrap(name, fn):
        @functools.wraps(fn)
        def timed(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                entry = acc.setdefault(name, [0, 0.0])
                entry[0] += 1
                entry[1] += time.perf_counter() - t0
        return timed

    saved = []
    for name in PAGE_SERVICES:
        saved.append((agenda, name, getattr(agenda, name)))
        setattr(agenda, name, wrap(name, getattr(agenda, name)))
    for name in PAGE_ELEMENTS:
        for owner in (DeltaGenerator, st):  # columns' and containers' methods, and st.<element> (bound to main)
            saved.append((owner, name, getattr(owner, name)))
            setattr(owner, name, wrap(f"st.{name}", getattr(owner, name)))
    per_run: list[dict] = []
    try:
        for _ in range(runs):
            acc.clear()
            t0 = time.perf_counter()
            at.run()
            total = time.perf_counter() - t0
            per_run.append({"total": total, **{k: v[1] for k, v in acc.items()},
                            **{f"{k}#calls": v[0] for k, v in acc.items()}})
    finally:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)
    keys = sorted({k for r in per_run for k in r if not k.endswith("#calls") and k != "total"})
    parts = {k: {"median_s": _median([r.get(k, 0.0) for r in per_run]), "calls": per_run[-1].get(f"{k}#calls", 0)}
             for k in keys}
    parts = dict(sorted(parts.items(), key=lambda kv: -kv[1]["median_s"]))
    totals = [r["total"] for r in per_run]
    other = [r["total"] - sum(r.get(k, 0.0) for k in keys) for r in per_run]  # none of the parts nests another
    return {"runs": len(per_run), "total_median_s": _median(totals), "other_median_s": _median(other),
            "parts": parts}


def _profile_run(at) -> dict:
    """One ``at.run()`` under cProfile: the script thread (the page itself) and the main thread (AppTest reading
    the page's messages) profiled separately. Project functions by cumulative time, everything by own time."""
    import cProfile
    import pstats
    import threading

    thread_profiles: list = []

    def hook(frame, event, arg):  # the first event in a new thread: profile that thread from here on
        p = cProfile.Profile()
        thread_profiles.append(p)
        p.enable()

    main = cProfile.Profile()
    threading.setprofile(hook)
    t0 = time.perf_counter()
    main.enable()
    try:
        at.run()
    finally:
        main.disable()
        threading.setprofile(None)
    wall = time.perf_counter() - t0

    def summary(profiles) -> dict:
        if not profiles:
            return {}
        stats = pstats.Stats(profiles[0])
        for p in profiles[1:]:
            stats.add(p)
        entries = [(f"{Path(f).name}:{line}({fn})", f, v[1], v[2], v[3]) for (f, line, fn), v in stats.stats.items()]
        ours = [e for e in entries if e[1].startswith(str(ROOT)) and "/.venv/" not in e[1]]
        return {"project_by_cumtime": [{"function": e[0], "calls": e[2], "cumtime_s": round(e[4], 4)}
                                       for e in sorted(ours, key=lambda e: -e[4])[:15]],
                "all_by_tottime": [{"function": e[0], "calls": e[2], "tottime_s": round(e[3], 4)}
                                   for e in sorted(entries, key=lambda e: -e[3])[:12]]}

    return {"profiled_s": round(wall, 4), "profile_script_thread": summary(thread_profiles),
            "profile_main_thread": summary([main])}


def _page_with_case(at, runs: int) -> dict:
    """The page with a case chosen (its history and suggest_matches): the first run stores the suggestions (then
    committed, as on the real page); later runs find them decided."""
    boxes = [b for b in at.selectbox if b.label == "Case"] or list(at.selectbox)[-1:]  # the history's selectbox
    if not boxes or not boxes[0].options:
        return {"error": "no case to choose"}
    first_option = boxes[0].options[0]
    boxes[0].select_index(0)
    t0 = time.perf_counter()
    at.run()
    first = time.perf_counter() - t0
    if at.exception:
        return {"error": str(at.exception[0].value)}
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t0)
    if at.exception:
        return {"error": str(at.exception[0].value)}
    return {"first_s": round(first, 4), "median_s": _median(times), "all_s": [round(t, 4) for t in times],
            "case": first_option, "dataframes": len(at.dataframe)}


def _page_export(at) -> dict:
    """The xlsx export, when the page builds it on demand (a "prepare_export" button): one click, timed."""
    buttons = [b for b in at.button if b.key == "prepare_export"]
    if not buttons:
        return {"note": "no prepare_export button: the page builds the export on every render"}
    t0 = time.perf_counter()
    buttons[0].click()
    at.run()
    seconds = time.perf_counter() - t0
    if at.exception:
        return {"error": str(at.exception[0].value)}
    return {"click_s": round(seconds, 4)}


def run_child() -> None:
    mode, args = sys.argv[2], sys.argv[3:]
    if mode == "generate":
        out = child_generate(args[0], int(args[1]), int(args[2]), args[3])
    elif mode == "build":
        out = child_build(args[0], args[1], int(args[2]), commit=False)
    elif mode == "build-commit":
        out = child_build(args[0], args[1], 0, commit=True)
    elif mode == "view":
        out = child_view(args[0], args[1], int(args[2]))
    elif mode == "matches":
        out = child_matches(args[0], args[1], int(args[2]), int(args[3]))
    elif mode == "explain":
        out = child_explain(args[0], args[1], int(args[2]))
    elif mode == "page":
        out = child_page(args[0], args[1], int(args[2]), with_case=args[3] == "case")
    else:
        raise SystemExit(f"unknown child mode {mode}")
    print(json.dumps(out, default=str))


# ---------------------------------------------------------------------------------------------------------------
# Parent
# ---------------------------------------------------------------------------------------------------------------


def spawn(mode: str, *args: str, env: dict | None = None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode, *args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, cwd=ROOT, check=False,
                          env={**os.environ, **(env or {})})
    wall = round(time.perf_counter() - t0, 2)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        return {"error": f"{mode} failed (exit {proc.returncode}):\n{tail}", "process_s": wall}
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip().startswith("{")]
    try:
        answer = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": f"{mode} printed no result: {proc.stdout[-500:]!r} {proc.stderr[-1500:]!r}",
                "process_s": wall}
    answer["process_s"] = wall
    return answer


def cache_key(n: int, seed: int, end: dt.date) -> str:
    migrations = sorted(p.name for p in (ROOT / "migrations" / "versions").glob("*.py"))
    digest = hashlib.sha256(json.dumps([GENERATOR_VERSION, migrations]).encode()).hexdigest()[:10]
    return f"agenda_n{n}_s{seed}_e{end:%Y%m%d}_{digest}"


def cached_sqlite(n: int, seed: int, end: dt.date) -> tuple[Path, dict | None]:
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    stem = cache_key(n, seed, end)
    path = CACHE_DIR / f"{stem}.sqlite3"
    info_path = path.with_suffix(".json")
    if path.exists() and info_path.exists():
        return path, {**json.loads(info_path.read_text()), "cached": True}
    for stale in CACHE_DIR.glob(f"agenda_n{n}_s{seed}_e{end:%Y%m%d}_*"):
        stale.unlink()
    part = CACHE_DIR / f"{stem}.part.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(str(part) + suffix).unlink(missing_ok=True)
    log(f"generating {n:,} notifications into {path.relative_to(ROOT)} (once; later runs reuse it)")
    info = spawn("generate", f"sqlite:///{part}", str(n), str(seed), end.isoformat())
    if "error" in info:
        raise SystemExit(info["error"])
    for suffix in ("-wal", "-shm"):
        Path(str(part) + suffix).unlink(missing_ok=True)
    part.replace(path)
    info_path.write_text(json.dumps(info, indent=2))
    return path, {**info, "cached": False}


def reset_postgres(url: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
    finally:
        engine.dispose()


class ThrowawayPostgres:
    """A PostgreSQL server in a temporary folder, as the test suite starts one (tests.conftest's helpers)."""

    def __init__(self):
        from tests.conftest import (
            PostgresServer,
            _as_postgres,
            find_pg_bindir,
            free_port,
        )

        self._as_postgres = _as_postgres
        self.bindir = find_pg_bindir()
        if self.bindir is None:
            raise SystemExit("PostgreSQL server binaries not found (apt-get install postgresql, or set PG_BINDIR)")
        self.base = Path(tempfile.mkdtemp(prefix="dadaily-agenda-pg-"))
        if os.geteuid() == 0:
            import pwd

            pg = pwd.getpwnam("postgres")
            os.chown(self.base, pg.pw_uid, pg.pw_gid)
        self.data = self.base / "data"
        logfile = self.base / "postgres.log"
        try:
            self._run([str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E",
                       "UTF8", "--locale=C", "--no-sync", "--no-instructions"], "initdb")
            port = free_port()
            opts = (f"-F -c fsync=off -c full_page_writes=off -c synchronous_commit=off -p {port} "
                    f"-c listen_addresses=127.0.0.1 -k '{self.base}' -c max_wal_size=4GB")
            self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(logfile), "-w", "-t", "60",
                       "-o", opts, "start"], "pg_ctl start")
            self.server = PostgresServer(bindir=self.bindir, base=self.base, port=port)
            self.server.create_database("agenda_bench")
        except BaseException:
            self.stop()
            raise
        self.url = self.server.url("agenda_bench")

    def _run(self, cmd: list[str], what: str) -> None:
        proc = subprocess.run(self._as_postgres(cmd), capture_output=True, text=True, timeout=300, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"{what} failed: {proc.stdout}\n{proc.stderr}")

    def dump(self, target: Path) -> None:
        out = subprocess.run([str(self.bindir / "pg_dump"), "-Fc", "-h", "127.0.0.1", "-p", str(self.server.port),
                              "-U", "postgres", "-f", str(target), "agenda_bench"], capture_output=True, text=True,
                             check=False)
        if out.returncode != 0:
            log(f"pg_dump failed: {out.stderr}")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(self._as_postgres([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast",
                                              "-w", "stop"]), capture_output=True, timeout=120, check=False)
        shutil.rmtree(self.base, ignore_errors=True)


MEASURED_SOURCES = ("pages/agenda.py", "meetings/agenda.py", "dv/matching.py", "core/db.py", "core/scope.py",
                    "app.py")


def source_fingerprint() -> dict:
    """A hash of each source file the measurements run: the report says which code was measured, and a file
    changed while the benchmark ran is flagged (the numbers would mix two versions)."""
    return {name: hashlib.sha256((ROOT / name).read_bytes()).hexdigest()[:12] for name in MEASURED_SOURCES
            if (ROOT / name).exists()}


def git_head() -> str | None:
    head = ROOT / ".git" / "HEAD"  # read the files, run no git command
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            path = ROOT / ".git" / ref[5:]
            if path.exists():
                return path.read_text().strip()
            packed = (ROOT / ".git" / "packed-refs").read_text().splitlines()
            return next((ln.split()[0] for ln in packed if ln.endswith(" " + ref[5:])), None)
        return ref
    except OSError:
        return None


def redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def evaluate(results: dict) -> list[dict]:
    def target(name: str, value: float | None, limit: float, detail: str) -> dict:
        status = "not measured" if value is None else "PASS" if value <= limit else "FAIL"
        return {"target": name, "status": status, "seconds": value, "limit_s": limit, "detail": detail}

    build, view, page = results.get("build") or {}, results.get("view") or {}, results.get("page") or {}
    b, v = build.get("median_s"), view.get("median_s")
    total = round(b + v, 4) if b is not None and v is not None else None
    out = [target(f"agenda for one day, with history (build + view + histories) <= {AGENDA_MAX_S:g} s", total,
                  AGENDA_MAX_S, f"build {b} s + view {view.get('view_median_s')} s + histories "
                                f"{view.get('history_median_s')} s (medians)"),
           target(f"Agenda page server render <= {PAGE_MAX_S:g} s", page.get("median_s"), PAGE_MAX_S,
                  f"AppTest.run() median of {len(page.get('all_s') or [])}, after a warm-up run")]
    return out


def _short(line: str) -> str:
    """A plan line with its long literal id list cut short (the JSON keeps it whole)."""
    import re

    def cut(m):
        ids = m.group(1).split(",")
        return m.group(0) if len(ids) <= 6 else "'{" + ",".join(ids[:4]) + f",… {len(ids)} ids" + "}'"

    line = re.sub(r"'\{([0-9,]+)\}'", cut, line)
    return re.sub(r"IN \(([0-9, ]{60,})\)", lambda m: f"IN ({m.group(1)[:30]}… {m.group(1).count(',') + 1} ids)",
                  line)


def print_report(results: dict, targets: list[dict]) -> None:
    def s(v) -> str:
        return "-" if v is None else f"{v:.3f}"

    rows = []
    for key, label in (("build", "(a) build_agenda (job, rolled back)"),
                       ("view", "(b) agenda_view + case_histories"),
                       ("matches", "(c) suggest_matches, whole agenda"),
                       ("page", "(d) Agenda page, AppTest.run()")):
        r = results.get(key) or {}
        rows.append((label, s(r.get("cold_s", r.get("warmup_s"))), s(r.get("median_s")), s(r.get("min_s")),
                     s(r.get("max_s") if "max_s" in r else (max(r["all_s"]) if r.get("all_s") else None))))
    view = results.get("view") or {}
    matches = results.get("matches") or {}
    page = results.get("page") or {}
    rows.insert(2, ("      of which agenda_view", "-", s(view.get("view_median_s")), "-", "-"))
    rows.insert(3, ("      of which case_histories", "-", s(view.get("history_median_s")), "-", "-"))
    per_case = matches.get("per_case") or {}
    rows.append(("(c') suggest_matches, one case", "-", s(per_case.get("median_s")), "-", s(per_case.get("max_s"))))
    with_case = page.get("with_case") or {}
    rows.append(("(d') page with a case chosen", s(with_case.get("first_s")), s(with_case.get("median_s")), "-",
                 s(max(with_case["all_s"]) if with_case.get("all_s") else None)))
    export = page.get("export") or {}
    if "click_s" in export:
        rows.append(("(d'') page: 'Prepare the export' click", "-", s(export["click_s"]), "-", "-"))
    head = ("measurement", "warm-up s", "median s", "min s", "max s")
    width = max(len(r[0]) for r in rows) + 2
    print("\n" + head[0].ljust(width) + " | ".join(f"{h:>10}" for h in head[1:]))
    print("-" * (width + 13 * 4))
    for r in rows:
        print(r[0].ljust(width) + " | ".join(f"{c:>10}" for c in r[1:]))
    build = results.get("build") or {}
    print(f"\nagenda: {build.get('items')} items built {build.get('sections')}; "
          f"cases with history {view.get('cases')}, people {view.get('people')}, earlier notifications "
          f"{view.get('earlier_rows')} ({view.get('people_with_earlier')} people with any), decisions "
          f"{view.get('decisions')}, open actions {view.get('open_actions')}; information only "
          f"{view.get('information_only')}; overdue actions {view.get('overdue_actions')}; "
          f"suggest_matches people {matches.get('people')}, suggestions {matches.get('suggestions')}")
    explain = results.get("explain") or {}
    if explain.get("plan"):
        print(f"\nHistory query (dv.matching.earlier_statement), {explain.get('people_in_statement')} people, "
              f"{explain.get('since')} .. {explain.get('until')}: {explain.get('rows')} rows, "
              f"{s(explain.get('execute_median_s'))} s median")
        print("  " + explain["sql_head"][:300])
        print("EXPLAIN QUERY PLAN:" if "sqlite_version" in explain else "EXPLAIN:")
        for line in explain["plan"]:
            print("  " + _short(line))
        if explain.get("plan_analyze"):
            print("EXPLAIN (ANALYZE, BUFFERS):")
            for line in explain["plan_analyze"]:
                print("  " + _short(line))
        if explain.get("overdue_plan"):
            print("\nOverdue actions query (agenda_view's slowest statement), plan:")
            for line in explain["overdue_plan"]:
                print("  " + line)
    for key in ("build", "view", "matches", "page"):
        sql = (results.get(key) or {}).get("sql")
        if sql:
            print(f"\n{key}: {sql['statements']} statements, {sql['sql_s']:.3f} s in the database driver; slowest:")
            for t in sql["top"][:5]:
                print(f"  {t['seconds']:.4f} s  x{t['count']:<4} {t['sql'][:110]}")
    parts = page.get("parts") or {}
    if parts:
        print(f"\npage: where a render goes ({parts['runs']} timed renders, medians; total "
              f"{parts['total_median_s']:.3f} s):")
        for name, p in list(parts["parts"].items())[:10]:
            print(f"  {p['median_s']:.4f} s  x{p['calls']:<5} {name}")
        print(f"  {parts['other_median_s']:.4f} s         everything else (page code, script runner, AppTest)")
    script = page.get("profile_script_thread") or {}
    if script:
        print(f"\npage: one profiled run ({page.get('profiled_s')} s under cProfile); the script thread, project "
              "functions by cumulative time:")
        for p in script.get("project_by_cumtime", [])[:10]:
            print(f"  {p['cumtime_s']:.4f} s  x{p['calls']:<5} {p['function']}")
        print("  everything in the script thread by own time:")
        for p in script.get("all_by_tottime", [])[:6]:
            print(f"  {p['tottime_s']:.4f} s  x{p['calls']:<5} {p['function']}")
    for key, r in results.items():
        if isinstance(r, dict) and "error" in r:
            print(f"\n{key} failed: {r['error']}")
    print("\nTargets:")
    for t in targets:
        print(f"  [{t['status']:>12}] {t['target']}: {t['seconds']} s  ({t['detail']})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notifications", type=int, default=DEFAULT_NOTIFICATIONS)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--database-url", help="a PostgreSQL database whose public schema is DROPPED and recreated "
                                              "(a sqlite:/// URL: the file is replaced)")
    where.add_argument("--postgres", action="store_true", help="start a throwaway PostgreSQL server for the run")
    parser.add_argument("--json", type=Path, help="where to write the results (default bench/results/agenda.json, "
                                                  "agenda-postgres.json for PostgreSQL)")
    parser.add_argument("--keep", type=Path, metavar="DB", help="keep the measured database: SQLite file copy, "
                                                                "or a pg_dump -Fc for PostgreSQL")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--end-date", type=dt.date.fromisoformat, default=DEFAULT_END,
                        help="last day of generated incidents (to its 09:00 cut-off); the meeting measured is "
                             "next_meeting_day of it (default %(default)s)")
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="timed runs per measurement (median)")
    parser.add_argument("--per-case", type=int, default=20, help="cases timed one by one for suggest_matches")
    parser.add_argument("--analyze", action="store_true", help="SQLite: run ANALYZE on the copy before measuring "
                                                               "(the app never does)")
    parser.add_argument("--skip-page", action="store_true", help="skip the AppTest page measurements")
    args = parser.parse_args(argv)
    if args.notifications < 1000:
        parser.error("--notifications must be at least 1000")

    from meetings.agenda import next_meeting_day

    meeting_day = next_meeting_day(args.end_date)
    report: dict = {"benchmark": "agenda", "notifications": args.notifications, "seed": args.seed,
                    "end_date": args.end_date.isoformat(), "meeting_day": meeting_day.isoformat(),
                    "runs": args.runs,
                    "run_at_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    "machine": {"python": platform.python_version(), "platform": platform.platform(),
                                "cpus": os.cpu_count(),
                                "load_average_before": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}}
    report["git_head"] = git_head()
    report["sources"] = sources_before = source_fingerprint()
    started = time.perf_counter()
    server = None
    tmp = None
    sqlite_file: Path | None = None  # the SQLite database measured (for --keep)
    is_postgres = args.postgres or (args.database_url and not args.database_url.startswith("sqlite"))
    try:
        if args.postgres or is_postgres:
            if args.postgres:
                log("starting a throwaway PostgreSQL server")
                server = ThrowawayPostgres()
                url = server.url
                report["database"] = "postgresql (throwaway server: fsync off, default memory settings)"
            else:
                url = args.database_url
                reset_postgres(url)
                report["database"] = redact(url)
            log(f"generating {args.notifications:,} notifications into PostgreSQL (COPY)")
            gen = spawn("generate", url, str(args.notifications), str(args.seed), args.end_date.isoformat())
            if "error" in gen:
                raise SystemExit(gen["error"])
            report["generated"] = gen
        else:
            if args.database_url:
                from sqlalchemy.engine import make_url

                target = Path(make_url(args.database_url).database)
                for suffix in ("", "-wal", "-shm"):
                    Path(str(target) + suffix).unlink(missing_ok=True)
                log(f"generating {args.notifications:,} notifications into {target}")
                gen = spawn("generate", args.database_url, str(args.notifications), str(args.seed),
                            args.end_date.isoformat())
                if "error" in gen:
                    raise SystemExit(gen["error"])
                url, report["generated"], sqlite_file = args.database_url, gen, target
                report["database"] = f"sqlite ({target})"
            else:
                path, gen = cached_sqlite(args.notifications, args.seed, args.end_date)
                report["generated"] = gen
                tmp = Path(tempfile.mkdtemp(prefix="dadaily-agenda-"))
                work = tmp / "bench.sqlite3"
                t0 = time.perf_counter()
                shutil.copyfile(path, work)
                report["copy_s"] = round(time.perf_counter() - t0, 2)
                url, sqlite_file = f"sqlite:///{work}", work
                report["database"] = f"sqlite (a copy of {path.relative_to(ROOT)}, {path.stat().st_size >> 20} MB)"
            if args.analyze:
                import sqlite3

                from sqlalchemy.engine import make_url

                t0 = time.perf_counter()
                con = sqlite3.connect(make_url(url).database)
                con.execute("ANALYZE")
                con.commit()
                con.close()
                report["analyze_s"] = round(time.perf_counter() - t0, 2)
            report["sqlite_analyzed"] = bool(args.analyze)
        if gen.get("meeting_day") and gen["meeting_day"] != meeting_day.isoformat():
            raise SystemExit(f"generated meeting day {gen['meeting_day']} != {meeting_day}")

        results: dict = {}
        day, runs = meeting_day.isoformat(), str(args.runs)
        log(f"(a) build_agenda for {day}, rolled back: 1 warm-up + {args.runs} runs")
        results["build"] = spawn("build", url, day, runs)
        log(f"    median {results['build'].get('median_s')} s")
        results["build_commit"] = spawn("build-commit", url, day)
        log("(b) agenda_view + case_histories")
        results["view"] = spawn("view", url, day, runs)
        log(f"    median {results['view'].get('median_s')} s")
        log("(c) suggest_matches")
        results["matches"] = spawn("matches", url, day, runs, str(args.per_case))
        log(f"    median {results['matches'].get('median_s')} s")
        log("(e) the history query's plan")
        results["explain"] = spawn("explain", url, day, runs)
        if not args.skip_page:
            log("(d) the Agenda page (AppTest)")
            results["page"] = spawn("page", url, day, runs, "case")
            log(f"    median {results['page'].get('median_s')} s")
        report["results"] = results
        targets = evaluate(results)
        report["targets"] = targets
        report["total_s"] = round(time.perf_counter() - started, 1)
        report["machine"]["load_average_after"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
        changed = sorted(k for k, v in source_fingerprint().items() if sources_before.get(k) != v)
        report["sources_changed_during_run"] = changed
        print_report(results, targets)
        if changed:
            print(f"\nWARNING: {', '.join(changed)} changed while the benchmark ran: the figures mix two versions "
                  "of the code; run it again.")
        if args.keep:
            args.keep.parent.mkdir(parents=True, exist_ok=True)
            if server is not None:
                server.dump(args.keep)
            elif sqlite_file is not None:
                import sqlite3

                source, copy = sqlite3.connect(sqlite_file), sqlite3.connect(args.keep)
                source.backup(copy)  # a consistent copy, WAL included
                source.close()
                copy.close()
            log(f"kept the database at {args.keep}")
    finally:
        if server is not None:
            server.stop()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    out = args.json or RESULTS_DIR / ("agenda-postgres.json" if is_postgres else "agenda.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nResults written to {out} (total {report['total_s']} s)")
    failed = any(t["status"] == "FAIL" for t in targets) or any(
        isinstance(r, dict) and "error" in r for r in results.values())
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        run_child()
    else:
        sys.exit(main())
