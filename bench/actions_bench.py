#!/usr/bin/env python
"""Actions benchmark: the My actions page, the Overdue view and saving an action, with 1,000,000 actions.

    .venv/bin/python bench/actions_bench.py [--actions 1000000] [--notifications 400000]
                                            [--postgres | --database-url URL] [--json OUT] [--seed N]
                                            [--end-date YYYY-MM-DD] [--runs 5] [--saves 50] [--keep DB]

Targets from issue 5 ("Tests and speed"), with 1,000,000 actions in the database, in SQLite and in PostgreSQL:

* (a) the **My actions** page renders on the server in <= 1 s: Streamlit's ``AppTest`` running ``app.py`` signed
  in as an agency representative (its landing page), after one warm-up render; also with an action chosen (its
  case context and history) and with "Show completed actions too" on;
* (b) the **Overdue** view renders on the server in <= 1 s: ``AppTest`` signed in as a coordinator, switched to
  ``pages/overdue.py``, after one warm-up render;
* (c) **saving an action** takes <= 100 ms: ``update_action`` (status and note, as the page saves them) in its own
  transaction, committed; median and p95 of ``--saves`` saves by the representative, each on another open action.

Also printed: the SQL plans of ``list_actions``' four queries (overdue, due today, later, closed) for the
representative, of the Overdue view's queries and of the chosen action's context and history queries:
``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN (ANALYZE, BUFFERS)`` on PostgreSQL; and, for every measurement, the
time of each SQL statement (one more run with a statement timer), so a slow figure can be traced to its queries.

**The data** is written straight into the tables with ``core.db.bulk_insert`` (COPY on PostgreSQL), from a seeded
``random.Random``: five years of meetings (one per meeting day, closed) up to the next meeting day after
``--end-date`` (default: today, Europe/London: the pages use the real clock, so the data has to be "now"),
``--notifications`` notifications (no people: the action pages do not read them), 85 % of them discussed at the
meeting of their window (``agenda_item``, ``case_record`` with confirmed risk, 1-2 decisions, 1-3 agencies'
shared notes), and ``--actions`` actions on those cases, one per agency per case, over the 8 agencies of migration
0002 in unequal shares (Police 22 %, Children's Social Care 20 %, ... IDVA 6 %), due 1-28 days after their
meeting. Statuses by age: actions due more than 60 days ago are 85 % done, 8 % not possible, 7 % not done and
0.3 % still open (the forgotten backlog); recent ones are mostly done; those not yet due are mostly open or in
progress. Every action has its ``action_change`` history (created; the status change; the note). Users: a
coordinator ``bench-coordinator`` and three representatives per agency ``bench-rep-<agency id>-<1..3>`` (password
``BENCH_PASSWORD``; ``bench/meeting_load.py`` signs in with them). The representative measured is one of the
largest agency's (Police).

* SQLite (default): generated once into ``bench/.cache/`` (keyed by sizes, seed, end date, generator version and
  the migrations), then copied to a temporary folder for each run, so the cache is never changed. No ``ANALYZE``
  (the app never runs it).
* ``--postgres``: a throwaway PostgreSQL server (``agenda_bench.ThrowawayPostgres``: fsync off, default memory
  settings), generated with COPY, then ``VACUUM ANALYZE`` (what autovacuum does after a bulk load).
  ``--database-url postgresql+psycopg://...``: an existing database whose ``public`` schema is DROPPED first.

Every measurement runs in a fresh interpreter (``--child``). Results: a table, the plans, PASS/FAIL lines and JSON
(default ``bench/results/actions.json`` or ``actions-postgres.json``). Exit status 1 when a target fails.
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
import shutil
import subprocess
import sys
import tempfile
import time
from bisect import bisect_right
from itertools import accumulate
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
for p in (str(ROOT), str(BENCH)):
    if p not in sys.path:
        sys.path.insert(0, p)

from agenda_bench import (
    SqlTimer,
    ThrowawayPostgres,
    _median,
    _peak_mb,
    git_head,
    log,
    redact,
    reset_postgres,
)

CACHE_DIR = ROOT / "bench" / ".cache"
RESULTS_DIR = ROOT / "bench" / "results"
DEFAULT_ACTIONS = 1_000_000
DEFAULT_NOTIFICATIONS = 400_000
DEFAULT_SEED = 1
DEFAULT_RUNS = 5
DEFAULT_SAVES = 50
YEARS = 5
CHILD_TIMEOUT_S = 3600
GENERATOR_VERSION = 1  # bump when the generated data changes

FORCE = "Example Police"
COORDINATOR = "bench-coordinator"
BENCH_PASSWORD = "Bench-Lantern-Orchard-2026"
REPS_PER_AGENCY = 3

# Targets from the issue.
PAGE_MAX_S = 1.0
SAVE_MAX_S = 0.100

CASE_SHARE = 0.85  # notifications discussed at their meeting (the rest information only: no case, no action)
# share of the actions per agency, in migration 0002's order (Police, CSC, ASC, Health, Education, Probation,
# Housing, IDVA)
AGENCY_WEIGHTS = (22, 20, 8, 14, 10, 12, 8, 6)
RISKS = (("high", 15, 14, 27), ("medium", 35, 10, 13), ("standard", 45, 1, 9), ("not_assessed", 5, None, None))
DESCRIPTIONS = ("Safeguarding visit to the victim", "Check the children's welfare at school",
                "Share the DASH with the GP", "Refer to the IDVA service", "Offender management review",
                "Housing options appointment", "Contact the health visitor", "Refer to MARAC",
                "Update the child protection plan", "Perpetrator programme referral",
                "Strategy discussion with police", "Check school attendance", "Target hardening at the address",
                "Joint visit with police", "Review the bail conditions")
SHARED = ("Known to services; allocated worker", "Not known", "Open case; visit planned this week",
          "GP aware; no concerns raised at last appointment", "Children attend school regularly",
          "Previous referral closed in the spring", "Perpetrator on licence until next year",
          "Tenancy in the victim's name; no history")
NOTES_DONE = ("Visit completed; family safe", "Referral made", "Information shared with the GP",
              "Completed as agreed", "School informed; no concerns")
NOTES_NOT = ("Could not make contact", "Family moved out of the area", "Victim declined support")
DECISIONS = ("no_further_action", "information_shared", "early_help", "csc_referral", "strategy_discussion",
             "marac_referral", "idva_referral", "adult_safeguarding_referral", "clares_law")
CHUNK_ROWS = 100_000


def _p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, -(-95 * len(ordered) // 100) - 1))], 4)


def today_london() -> dt.date:
    from core.timeutil import london_now

    return london_now().date()


# ---------------------------------------------------------------------------------------------------------------
# Generation (child "generate"): also used by bench/meeting_load.py.
# ---------------------------------------------------------------------------------------------------------------


def generate(url: str, n_notes: int, n_actions: int, seed: int, end: dt.date) -> dict:
    """Write the data set into the (empty) database at ``url``; returns counts and timings."""
    from sqlalchemy import select
    from sqlmodel import Session

    from core.auth import create_user
    from core.db import bulk_insert, get_engine, migrate, reserve_ids
    from core.models import Agency, UserRole
    from dv import synthetic as syn
    from dv.models import Notification
    from meetings.agenda import agenda_window, next_meeting_day
    from meetings.models import (
        Action,
        ActionChange,
        AgencyShare,
        AgendaItem,
        CaseDecision,
        CaseRecord,
        Meeting,
    )

    timings: dict[str, float] = {}
    counts: dict[str, int] = {}
    t0 = time.perf_counter()
    migrate(url)
    timings["migrate_s"] = round(time.perf_counter() - t0, 2)
    engine = get_engine(url)
    rng = random.Random(seed)

    # users first: the history rows name who changed what
    t0 = time.perf_counter()
    with Session(engine) as session:
        coord = create_user(session, None, username=COORDINATOR, display_name="Bench Coordinator",
                            role=UserRole.coordinator, password=BENCH_PASSWORD)
        session.commit()
        coord_id = coord.id
    with engine.connect() as conn:
        G = Agency.__table__
        agencies = [tuple(r) for r in conn.execute(select(G.c.id, G.c.name).order_by(G.c.id))]
    reps: dict[int, list[int]] = {}
    with Session(engine) as session:
        for agency_id, name in agencies:
            for k in range(1, REPS_PER_AGENCY + 1):
                u = create_user(session, None, username=f"bench-rep-{agency_id}-{k}",
                                display_name=f"{name} rep {k}", role=UserRole.agency, agency_id=agency_id,
                                password=BENCH_PASSWORD)
                session.flush()
                reps.setdefault(agency_id, []).append(u.id)
        session.commit()
    timings["users_s"] = round(time.perf_counter() - t0, 2)
    agency_ids = [a for a, _ in agencies]
    weights = list(AGENCY_WEIGHTS[:len(agency_ids)]) + [5] * max(0, len(agency_ids) - len(AGENCY_WEIGHTS))

    gc.disable()
    t0 = time.perf_counter()
    meeting_day = next_meeting_day(end)
    span_start = dt.datetime.combine(end - dt.timedelta(days=round(365.25 * YEARS)), dt.time())
    days, d = [], next_meeting_day(span_start.date() + dt.timedelta(days=1))
    while d <= meeting_day:
        days.append(d)
        d = next_meeting_day(d + dt.timedelta(days=1))
    windows = [agenda_window(d) for d in days]
    window_ends = [w[1] for w in windows]
    span_end = window_ends[-1]  # the next meeting's cut-off: its agenda has cases to build (meeting_load)
    past = len(days) - 1
    # notification times: uniform over the days, evening-heavy hours
    minutes = int((span_end - span_start).total_seconds() // 60)
    hour_cum = list(accumulate(syn.HOUR_WEIGHTS))
    n_days = -(-minutes // 1440)
    times = []
    for _ in range(n_notes):
        while True:
            m = rng.randrange(n_days) * 1440 + rng.choices(range(24), cum_weights=hour_cum)[0] * 60 + rng.randrange(60)
            if m < minutes:
                break
        times.append(span_start + dt.timedelta(minutes=m))
    times.sort()
    risk_cum = list(accumulate(r[1] for r in RISKS))
    officers = [f"PC {c} {rng.choice(syn.SURNAMES)}" for c in rng.sample(range(1000, 10000), 120)]
    notes = []
    for i, at in enumerate(times):
        crime = rng.random() < 0.5
        risk, _, lo, hi = rng.choices(RISKS, cum_weights=risk_cum)[0]
        dash = rng.randint(lo, hi) if lo is not None and rng.random() < 0.9 else None
        town = rng.choice(syn.TOWNS)
        if crime:
            offence = rng.choice(syn.CRIME_OFFENCES)[0]
            crime_ref, ho = f"CR/{i + 1:07d}/{at:%y}", "8N"
            classification, reason = "Crime", f"crime reference CR/{i + 1:07d}/{at:%y}"
        else:
            offence = rng.choice(syn.NON_CRIME_OFFENCES)[0]
            crime_ref = ho = None
            classification = "Domestic incident"
            reason = "no crime reference or offence code; classified 'Domestic incident'"
        notes.append({"force": FORCE, "police_ref": f"NP/{at:%y}/{i + 1:07d}", "crime_ref": crime_ref,
                      "classification": classification, "offence": offence, "ho_code": ho, "incident_at": at,
                      "reported_at": at + dt.timedelta(minutes=rng.randint(1, 90)),
                      "location": f"{rng.randint(1, 180)} {rng.choice(syn.STREETS)}, {town[0]}",
                      "postcode": f"{town[1]}{rng.randint(town[2], town[3])} 1AA", "risk": risk, "dash_score": dash,
                      "flag_pregnancy": rng.random() < 0.03, "flag_strangulation": rng.random() < 0.04,
                      "flag_weapons": rng.random() < 0.03, "officer": rng.choice(officers),
                      "circumstances": "Made-up circumstances for the benchmark.", "relationship": "Partner",
                      "stream": "crime" if crime else "non_crime", "stream_reason": reason, "legal_hold": False,
                      "source_hash": f"{rng.getrandbits(160):040x}", "created_at_utc": at + dt.timedelta(hours=20),
                      "updated_at_utc": at + dt.timedelta(hours=20), "version": 1})
    timings["rows_notification_s"] = round(time.perf_counter() - t0, 2)

    def write(conn, table, rows, what):
        t = time.perf_counter()
        for i in range(0, len(rows), CHUNK_ROWS):
            bulk_insert(conn, table, rows[i:i + CHUNK_ROWS])
        timings[f"write_{what}_s"] = round(timings.get(f"write_{what}_s", 0) + time.perf_counter() - t, 2)
        counts[what] = counts.get(what, 0) + len(rows)

    ref_now = dt.datetime.combine(end, dt.time(9, 0))  # "now" for the statuses: the morning of --end-date
    stale = ref_now - dt.timedelta(days=60)
    with engine.begin() as conn:
        nt = Notification.__table__
        note_ids = reserve_ids(conn, nt, len(notes))
        for nid, row in zip(note_ids, notes):
            row["id"] = nid
        write(conn, nt, notes, "notification")
        mt = Meeting.__table__
        meeting_ids = reserve_ids(conn, mt, past)
        meetings = [{"id": meeting_ids[k], "meeting_date": days[k], "window_start": windows[k][0],
                     "window_end": windows[k][1], "status": "closed", "chair": "Bench Chair",
                     "published_at_utc": dt.datetime.combine(days[k], dt.time(8, 0)), "published_by_id": coord_id,
                     "opened_at_utc": dt.datetime.combine(days[k], dt.time(9, 30)), "opened_by_id": coord_id,
                     "closed_at_utc": dt.datetime.combine(days[k], dt.time(11, 30)), "closed_by_id": coord_id,
                     "created_at_utc": dt.datetime.combine(days[k], dt.time(7, 0)), "version": 4}
                    for k in range(past)]
        write(conn, mt, meetings, "meeting")

        # the cases: notifications of past windows, discussed at their meeting
        t = time.perf_counter()
        cases = []  # (notification index, meeting index)
        for i, row in enumerate(notes):
            k = bisect_right(window_ends, row["incident_at"])
            if k < past and rng.random() < CASE_SHARE:
                cases.append((i, k))
        it, ct = AgendaItem.__table__, CaseRecord.__table__
        item_ids = reserve_ids(conn, it, len(cases))
        case_ids = reserve_ids(conn, ct, len(cases))
        items, records, decisions, shares = [], [], [], []
        position: dict[int, int] = {}
        for (i, k), item_id, case_id in zip(cases, item_ids, case_ids):
            row = notes[i]
            mid = meeting_ids[k]
            position[mid] = position.get(mid, 0) + 1
            high = row["risk"] == "high" or (row["dash_score"] or 0) >= 14
            section = "high_risk" if high else "other"
            created = dt.datetime.combine(days[k], dt.time(7, 0))
            items.append({"id": item_id, "meeting_id": mid, "notification_id": row["id"], "section": section,
                          "position": position[mid], "reasons": json.dumps([f"{row['stream']}, {row['risk']} risk"]),
                          "marac_flags": json.dumps(["visible high risk"] if high else []), "prior_incidents_12m": 0,
                          "removed": False, "late_addition": False, "created_at_utc": created, "version": 1})
            records.append({"id": case_id, "meeting_id": mid, "agenda_item_id": item_id,
                            "notification_id": row["id"], "police_risk": row["risk"], "confirmed_risk": row["risk"],
                            "seconds_spent": rng.randint(120, 1200), "discussed": True, "amended": False,
                            "updated_by_id": coord_id, "updated_at_utc": created + dt.timedelta(hours=3),
                            "version": 2})
            for dec in rng.sample(DECISIONS, 1 if rng.random() < 0.6 else 2):
                decisions.append({"case_id": case_id, "decision": dec})
            for agency_id in rng.sample(agency_ids, rng.randint(1, 3)):
                shares.append({"case_id": case_id, "agency_id": agency_id, "note": rng.choice(SHARED),
                               "updated_by_id": coord_id, "updated_at_utc": created + dt.timedelta(hours=3),
                               "version": 1})
        timings["rows_cases_s"] = round(time.perf_counter() - t, 2)
        write(conn, it, items, "agenda_item")
        write(conn, ct, records, "case_record")
        write(conn, CaseDecision.__table__, decisions, "case_decision")
        write(conn, AgencyShare.__table__, shares, "agency_share")
        del items, records, decisions, shares

        # actions: one per agency per case; the number per case averages n_actions / cases (at most 8)
        t = time.perf_counter()
        per_case = [1] * len(cases)
        remaining = n_actions - len(cases)
        if remaining < 0:
            raise SystemExit(f"{n_actions} actions is fewer than the {len(cases)} cases: give more actions")
        if remaining > 7 * len(cases):
            raise SystemExit(f"{n_actions} actions over {len(cases)} cases is more than 8 a case: give more "
                             "notifications")
        while remaining:
            j = rng.randrange(len(cases))
            if per_case[j] < len(agency_ids):
                per_case[j] += 1
                remaining -= 1
        at_, ht = Action.__table__, ActionChange.__table__
        owners = [f"{rng.choice(syn.FEMALE_FORENAMES + syn.MALE_FORENAMES)} {rng.choice(syn.SURNAMES)}"
                  for _ in range(300)]
        status_counts: dict[str, int] = {}
        timings["rows_action_s"] = 0.0
        batch_actions, batch_changes = [], []

        def flush():
            action_ids = reserve_ids(conn, at_, len(batch_actions))
            for aid, row in zip(action_ids, batch_actions):
                row["id"] = aid
            changes = []
            for row, extra in zip(batch_actions, batch_changes):
                for change in extra:
                    change["action_id"] = row["id"]
                    changes.append(change)
            write(conn, at_, batch_actions, "action")
            write(conn, ht, changes, "action_change")
            batch_actions.clear()
            batch_changes.clear()

        t_rows = time.perf_counter()
        for (i, k), case_id, n in zip(cases, case_ids, per_case):
            row = notes[i]
            day = days[k]
            chosen: list[int] = []
            while len(chosen) < n:
                a = rng.choices(agency_ids, weights=weights)[0]
                if a not in chosen:
                    chosen.append(a)
            for agency_id in chosen:
                due = dt.datetime.combine(day + dt.timedelta(days=rng.randint(1, 28)), dt.time(17, 0))
                r = rng.random()
                if due < stale:
                    status = ("open" if r < 0.002 else "in_progress" if r < 0.003 else "done" if r < 0.85
                              else "not_possible" if r < 0.93 else "not_done")
                elif due < ref_now:
                    status = ("open" if r < 0.06 else "in_progress" if r < 0.10 else "done" if r < 0.90
                              else "not_possible" if r < 0.95 else "not_done")
                else:
                    status = ("open" if r < 0.45 else "in_progress" if r < 0.75 else "done" if r < 0.95
                              else "not_possible")
                status_counts[status] = status_counts.get(status, 0) + 1
                created = dt.datetime.combine(day, dt.time(10, 30)) + dt.timedelta(minutes=rng.randint(0, 90))
                finished = status in ("done", "not_possible", "not_done")
                changed = min(due, ref_now) - dt.timedelta(hours=rng.randint(1, 72)) if status != "open" else created
                changed = max(changed, created + dt.timedelta(minutes=5)) if status != "open" else created
                note = (rng.choice(NOTES_DONE) if status == "done" else rng.choice(NOTES_NOT)
                        if status in ("not_possible", "not_done") else None)
                description = rng.choice(DESCRIPTIONS)
                by = rng.choice(reps[agency_id])
                batch_actions.append({
                    "notification_id": row["id"], "agency_id": agency_id, "meeting_id": meeting_ids[k],
                    "case_id": case_id, "amendment": False, "owner": rng.choice(owners) if rng.random() < 0.7
                    else None, "description": description, "due_at": due, "status": status, "note": note,
                    "created_by_id": coord_id, "created_at_utc": created, "updated_at_utc": changed,
                    "completed_at_utc": changed if finished else None,
                    "version": 1 + (status != "open") + (note is not None)})
                extra = [{"field": "created", "old_value": None,
                          "new_value": f"{description} (due {due:%Y-%m-%d %H:%M})", "changed_by_id": coord_id,
                          "changed_at_utc": created, "amendment": False}]
                if status != "open":
                    extra.append({"field": "status", "old_value": "open", "new_value": status, "changed_by_id": by,
                                  "changed_at_utc": changed, "amendment": False})
                if note is not None:
                    extra.append({"field": "note", "old_value": None, "new_value": note, "changed_by_id": by,
                                  "changed_at_utc": changed, "amendment": False})
                batch_changes.append(extra)
            if len(batch_actions) >= CHUNK_ROWS:
                timings["rows_action_s"] += time.perf_counter() - t_rows
                flush()
                t_rows = time.perf_counter()
        timings["rows_action_s"] = round(timings["rows_action_s"] + time.perf_counter() - t_rows, 2)
        if batch_actions:
            flush()
        timings["actions_total_s"] = round(time.perf_counter() - t, 2)
    gc.enable()
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
    return {"end_date": end.isoformat(), "next_meeting_day": meeting_day.isoformat(), "counts": counts,
            "cases": len(cases), "statuses": status_counts, "span": [span_start.isoformat(), span_end.isoformat()],
            "timings": timings, "peak_mb": _peak_mb(),
            "agencies": {name: weights[i] for i, (_, name) in enumerate(agencies)}}


# ---------------------------------------------------------------------------------------------------------------
# Measurements (children): each prints one JSON line.
# ---------------------------------------------------------------------------------------------------------------


def _users(url: str) -> tuple:
    """(engine, coordinator, the measured representative, their agency's name): detached copies."""
    os.environ["DATABASE_URL"] = url
    from sqlmodel import Session, select

    from core.db import get_engine
    from core.models import Agency, User

    engine = get_engine(url)
    with Session(engine, expire_on_commit=False) as s:
        coord = s.exec(select(User).where(User.username == COORDINATOR)).one()
        police = s.exec(select(Agency).order_by(Agency.id)).first()  # the largest agency (AGENCY_WEIGHTS)
        rep = s.exec(select(User).where(User.username == f"bench-rep-{police.id}-1")).one()
        name = police.name
        s.expunge_all()
    return engine, coord, rep, name


def _bucket_counts(engine, rep) -> dict:
    """How many of the representative's agency's actions fall in each bucket (what the page could list)."""
    from sqlalchemy import func, select

    from core.timeutil import london_now
    from meetings.actions import CLOSED_STATUSES, OPEN_STATUSES
    from meetings.models import Action

    A = Action.__table__
    now = london_now()
    today_end = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time())
    with engine.connect() as conn:
        def n(*where):
            return conn.execute(select(func.count()).select_from(A).where(A.c.agency_id == rep.agency_id, *where)) \
                .scalar()
        return {"all": n(), "overdue": n(A.c.status.in_(OPEN_STATUSES), A.c.due_at < now),
                "due_today": n(A.c.status.in_(OPEN_STATUSES), A.c.due_at >= now, A.c.due_at < today_end),
                "later": n(A.c.status.in_(OPEN_STATUSES), A.c.due_at >= today_end),
                "closed": n(A.c.status.in_(CLOSED_STATUSES)),
                "all_agencies_overdue": conn.execute(select(func.count()).select_from(A).where(
                    A.c.status.in_(OPEN_STATUSES), A.c.due_at < now)).scalar()}


def _timed_renders(at, runs: int, check) -> dict:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t0)
        check()
    return {"median_s": _median(times), "min_s": round(min(times), 4), "max_s": round(max(times), 4),
            "all_s": [round(t, 4) for t in times]}


def _sql_run(engine, at) -> dict:
    with SqlTimer(engine) as timer:
        t0 = time.perf_counter()
        at.run()
        seconds = time.perf_counter() - t0
    return {"instrumented_s": round(seconds, 4), **timer.summary()}


def child_my_actions(url: str, runs: int) -> dict:
    from streamlit.testing.v1 import AppTest

    engine, _, rep, agency = _users(url)
    out: dict = {"agency": agency, "user": rep.username, "buckets": _bucket_counts(engine, rep)}
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    now = time.time()
    at.session_state["auth"] = {"user_id": rep.id, "login_at": now, "last_seen": now}

    def check():
        if at.exception:
            raise RuntimeError(f"the page raised: {at.exception[0].value}")
        if not len(at.title) or at.title[0].value != "My actions":
            raise RuntimeError(f"not the My actions page: {[t.value for t in at.title]}")

    t0 = time.perf_counter()
    at.run()
    out["warmup_s"] = round(time.perf_counter() - t0, 4)
    check()
    out["listed"] = len(at.selectbox[0].options) if len(at.selectbox) else 0
    out.update(_timed_renders(at, runs, check))
    out["sql"] = _sql_run(engine, at)
    # an action chosen: the first overdue one (its case context, shared notes, history)
    box = next(b for b in at.selectbox if b.label == "Action to update")
    box.select_index(0)
    t0 = time.perf_counter()
    at.run()
    chosen = {"first_s": round(time.perf_counter() - t0, 4), "option": box.options[0]}
    check()
    chosen.update(_timed_renders(at, runs, check))
    chosen["sql"] = _sql_run(engine, at)
    chosen["history_rows"] = len(at.dataframe[1].value) if len(at.dataframe) > 1 else 0
    out["with_action"] = chosen
    # "Show completed actions too": the closed ones as well (most recently closed first)
    at.toggle(key="show_closed").set_value(True)
    t0 = time.perf_counter()
    at.run()
    closed = {"first_s": round(time.perf_counter() - t0, 4)}
    check()
    closed.update(_timed_renders(at, runs, check))
    closed["sql"] = _sql_run(engine, at)
    closed["listed"] = len(at.dataframe[0].value) if len(at.dataframe) else 0
    out["with_closed"] = closed
    out["peak_mb"] = _peak_mb()
    return out


def child_overdue(url: str, runs: int) -> dict:
    from streamlit.testing.v1 import AppTest

    engine, coord, rep, _ = _users(url)
    out: dict = {"user": coord.username}
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    now = time.time()
    at.session_state["auth"] = {"user_id": coord.id, "login_at": now, "last_seen": now}
    at.run()
    at.switch_page("pages/overdue.py")

    def check():
        if at.exception:
            raise RuntimeError(f"the page raised: {at.exception[0].value}")
        if not len(at.title) or at.title[0].value != "Overdue actions":
            raise RuntimeError(f"not the Overdue page: {[t.value for t in at.title]}")

    t0 = time.perf_counter()
    at.run()
    out["warmup_s"] = round(time.perf_counter() - t0, 4)
    check()
    out["agencies"] = at.dataframe[0].value.to_dict("records") if len(at.dataframe) else []
    out["listed"] = len(at.dataframe[1].value) if len(at.dataframe) > 1 else 0
    out.update(_timed_renders(at, runs, check))
    out["sql"] = _sql_run(engine, at)
    # one agency chosen (the chase list filtered)
    at.selectbox(key="overdue_agency").set_value(rep.agency_id)
    at.run()
    check()
    one = _timed_renders(at, runs, check)
    one["listed"] = len(at.dataframe[1].value) if len(at.dataframe) > 1 else 0
    out["one_agency"] = one
    out["peak_mb"] = _peak_mb()
    return out


def child_save(url: str, saves: int) -> dict:
    from sqlalchemy import select
    from sqlmodel import Session

    from meetings.actions import OPEN_STATUSES, update_action
    from meetings.models import Action

    engine, _, rep, _ = _users(url)
    A = Action.__table__
    with engine.connect() as conn:  # open actions of the agency, spread over the list (oldest due first)
        ids = [r[0] for r in conn.execute(select(A.c.id).where(A.c.agency_id == rep.agency_id,
                                                               A.c.status.in_(OPEN_STATUSES)).order_by(A.c.id))]
    rng = random.Random(7)
    sample = rng.sample(ids, min(len(ids), saves + 1))

    def once(action_id: int, k: int) -> float:
        with engine.connect() as conn:  # what the page read before (not timed)
            status, version = conn.execute(select(A.c.status, A.c.version).where(A.c.id == action_id)).one()
        new = "in_progress" if str(getattr(status, "value", status)) == "open" else "open"
        t0 = time.perf_counter()
        with Session(engine, expire_on_commit=False) as session:
            update_action(session, rep, action_id, expected_version=version, status=new,
                          note=f"Bench save {k} at {time.time():.3f}", owner=None)
            session.commit()
        return time.perf_counter() - t0

    once(sample[0], 0)  # warm-up
    times = [once(a, k) for k, a in enumerate(sample[1:saves + 1], start=1)]
    out = {"saves": len(times), "median_s": _median(times), "p95_s": _p95(times), "min_s": round(min(times), 4),
           "max_s": round(max(times), 4), "open_actions_of_agency": len(ids)}
    extra = rng.choice([a for a in ids if a not in sample] or sample)
    with SqlTimer(engine) as timer:
        once(extra, saves + 1)
    out["sql"] = timer.summary(top=12)
    out["peak_mb"] = _peak_mb()
    return out


def _plan(conn, statement: str, parameters) -> list[str]:
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        depth: dict[int, int] = {0: 0}
        plan = []
        for node, parent, _, detail in rows:
            depth[node] = depth.get(parent, 0) + 1
            plan.append("  " * (depth[node] - 1) + detail)
        return plan
    return [r[0] for r in conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).all()]


def child_explain(url: str) -> dict:
    """The plans of every query the two pages run against action (captured as they run), with each query's time."""
    from sqlalchemy import event
    from sqlmodel import Session

    from meetings.actions import (
        action_context,
        action_history,
        chase_list,
        list_actions,
        overdue_by_agency,
    )

    engine, coord, rep, _ = _users(url)
    captured: list = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        captured.append((statement, parameters))

    out: dict = {"queries": []}

    def explain(label: str, fn):
        captured.clear()
        event.listen(engine, "before_cursor_execute", grab)
        try:
            with Session(engine) as session:
                result = fn(session)
                session.rollback()
        finally:
            event.remove(engine, "before_cursor_execute", grab)
        statements = [(s, p) for s, p in captured if "action" in s and s.lstrip().upper().startswith("SELECT")]
        with engine.connect() as conn:
            for k, (statement, parameters) in enumerate(statements):
                times = []
                for _ in range(4):
                    t0 = time.perf_counter()
                    rows = len(conn.exec_driver_sql(statement, parameters).all())
                    times.append(time.perf_counter() - t0)
                out["queries"].append({"what": f"{label} #{k + 1}", "rows": rows, "median_s": _median(times[1:]),
                                       "cold_s": round(times[0], 4), "sql": " ".join(statement.split()),
                                       "plan": _plan(conn, statement, parameters)})
        return result

    rows = explain("list_actions (rep, with closed)", lambda s: list_actions(s, rep, include_closed=True, limit=300))
    first = next((r["id"] for r in rows), None)
    if first is not None:
        explain("action_context (rep)", lambda s: action_context(s, rep, first))
        explain("action_history (rep)", lambda s: action_history(s, rep, first))
    explain("overdue_by_agency (coordinator)", lambda s: overdue_by_agency(s, coord))
    explain("chase_list (coordinator, all agencies)", lambda s: chase_list(s, coord))
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            out["sqlite_version"] = conn.exec_driver_sql("SELECT sqlite_version()").scalar()
            out["sqlite_stat1"] = bool(conn.exec_driver_sql(
                "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'").scalar())
        else:
            out["server_version"] = conn.exec_driver_sql("SHOW server_version").scalar()
    return out


def run_child() -> None:
    mode, args = sys.argv[2], sys.argv[3:]
    if mode == "generate":
        out = generate(args[0], int(args[1]), int(args[2]), int(args[3]), dt.date.fromisoformat(args[4]))
    elif mode == "my-actions":
        out = child_my_actions(args[0], int(args[1]))
    elif mode == "overdue":
        out = child_overdue(args[0], int(args[1]))
    elif mode == "save":
        out = child_save(args[0], int(args[1]))
    elif mode == "explain":
        out = child_explain(args[0])
    else:
        raise SystemExit(f"unknown child mode {mode}")
    print(json.dumps(out, default=str))


# ---------------------------------------------------------------------------------------------------------------
# Parent
# ---------------------------------------------------------------------------------------------------------------


def spawn(mode: str, *args: str, script: Path | None = None) -> dict:
    cmd = [sys.executable, str(script or Path(__file__).resolve()), "--child", mode, *args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, cwd=ROOT, check=False)
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


def cache_key(prefix: str, n_notes: int, n_actions: int, seed: int, end: dt.date) -> str:
    migrations = sorted(p.name for p in (ROOT / "migrations" / "versions").glob("*.py"))
    digest = hashlib.sha256(json.dumps([GENERATOR_VERSION, migrations]).encode()).hexdigest()[:10]
    return f"{prefix}_n{n_notes}_a{n_actions}_s{seed}_e{end:%Y%m%d}_{digest}"


def cached_sqlite(prefix: str, n_notes: int, n_actions: int, seed: int, end: dt.date) -> tuple[Path, dict]:
    """The generated SQLite database in bench/.cache/ (generated once per key)."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    stem = cache_key(prefix, n_notes, n_actions, seed, end)
    path = CACHE_DIR / f"{stem}.sqlite3"
    info_path = path.with_suffix(".json")
    if path.exists() and info_path.exists():
        return path, {**json.loads(info_path.read_text()), "cached": True}
    for stale in CACHE_DIR.glob(f"{prefix}_n{n_notes}_a{n_actions}_s{seed}_*"):
        stale.unlink()
    part = CACHE_DIR / f"{stem}.part.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(str(part) + suffix).unlink(missing_ok=True)
    log(f"generating {n_actions:,} actions on {n_notes:,} notifications into {path.relative_to(ROOT)} (once)")
    info = spawn("generate", f"sqlite:///{part}", str(n_notes), str(n_actions), str(seed), end.isoformat(),
                 script=BENCH / "actions_bench.py")
    if "error" in info:
        raise SystemExit(info["error"])
    for suffix in ("-wal", "-shm"):
        Path(str(part) + suffix).unlink(missing_ok=True)
    part.replace(path)
    info_path.write_text(json.dumps(info, indent=2))
    return path, {**info, "cached": False}


MEASURED_SOURCES = ("pages/my_actions.py", "pages/overdue.py", "meetings/actions.py", "core/scope.py", "core/db.py",
                    "core/audit.py", "pages/common.py", "app.py")


def source_fingerprint() -> dict:
    return {name: hashlib.sha256((ROOT / name).read_bytes()).hexdigest()[:12] for name in MEASURED_SOURCES
            if (ROOT / name).exists()}


def evaluate(results: dict) -> list[dict]:
    def target(name: str, value, limit: float, detail: str) -> dict:
        status = "not measured" if value is None else "PASS" if value <= limit else "FAIL"
        return {"target": name, "status": status, "seconds": value, "limit_s": limit, "detail": detail}

    mine, overdue, save = (results.get(k) or {} for k in ("my_actions", "overdue", "save"))
    chosen, closed = mine.get("with_action") or {}, mine.get("with_closed") or {}
    return [
        target(f"(a) My actions page server render <= {PAGE_MAX_S:g} s", mine.get("median_s"), PAGE_MAX_S,
               f"AppTest.run() as {mine.get('user')}, median of {len(mine.get('all_s') or [])} after a warm-up"),
        target(f"(a) My actions page, an action chosen <= {PAGE_MAX_S:g} s", chosen.get("median_s"), PAGE_MAX_S,
               "AppTest.run(), median"),
        target(f"(a) My actions page, completed actions shown <= {PAGE_MAX_S:g} s", closed.get("median_s"),
               PAGE_MAX_S, "AppTest.run(), median"),
        target(f"(b) Overdue view server render <= {PAGE_MAX_S:g} s", overdue.get("median_s"), PAGE_MAX_S,
               f"AppTest.run() as {overdue.get('user')}, median after a warm-up"),
        target(f"(c) saving an action, median <= {SAVE_MAX_S * 1000:g} ms", save.get("median_s"), SAVE_MAX_S,
               f"update_action + commit, {save.get('saves')} saves"),
        target(f"(c) saving an action, p95 <= {SAVE_MAX_S * 1000:g} ms", save.get("p95_s"), SAVE_MAX_S,
               f"update_action + commit, {save.get('saves')} saves"),
    ]


def print_report(results: dict, targets: list[dict]) -> None:
    def s(v) -> str:
        return "-" if v is None else f"{v:.3f}"

    mine, overdue, save = (results.get(k) or {} for k in ("my_actions", "overdue", "save"))
    rows = [("(a) My actions page", mine.get("warmup_s"), mine.get("median_s"), mine.get("max_s")),
            ("(a') ... an action chosen", (mine.get("with_action") or {}).get("first_s"),
             (mine.get("with_action") or {}).get("median_s"), (mine.get("with_action") or {}).get("max_s")),
            ("(a'') ... completed shown too", (mine.get("with_closed") or {}).get("first_s"),
             (mine.get("with_closed") or {}).get("median_s"), (mine.get("with_closed") or {}).get("max_s")),
            ("(b) Overdue view", overdue.get("warmup_s"), overdue.get("median_s"), overdue.get("max_s")),
            ("(b') ... one agency chosen", None, (overdue.get("one_agency") or {}).get("median_s"),
             (overdue.get("one_agency") or {}).get("max_s")),
            ("(c) save an action (p95 in 'max')", None, save.get("median_s"), save.get("p95_s"))]
    width = max(len(r[0]) for r in rows) + 2
    print("\n" + "measurement".ljust(width) + " | ".join(f"{h:>10}" for h in ("first s", "median s", "max s")))
    print("-" * (width + 13 * 3))
    for r in rows:
        print(r[0].ljust(width) + " | ".join(f"{s(c):>10}" for c in r[1:]))
    b = mine.get("buckets") or {}
    print(f"\n{mine.get('agency')}'s actions: {b.get('all')} ({b.get('overdue')} overdue, {b.get('due_today')} due "
          f"today, {b.get('later')} later, {b.get('closed')} closed); listed on the page {mine.get('listed')}; "
          f"overdue in all agencies {b.get('all_agencies_overdue')}; the Overdue view lists {overdue.get('listed')}")
    print(f"saves: {save.get('saves')}, median {s(save.get('median_s'))} s, p95 {s(save.get('p95_s'))} s, "
          f"max {s(save.get('max_s'))} s")
    for key, label in (("my_actions", "My actions page"), ("overdue", "Overdue view")):
        sql = (results.get(key) or {}).get("sql")
        if sql:
            print(f"\n{label}: one render {sql['instrumented_s']:.3f} s, {sql['statements']} statements, "
                  f"{sql['sql_s']:.3f} s in the driver; slowest:")
            for t in sql["top"][:6]:
                print(f"  {t['seconds']:.4f} s  x{t['count']:<4} {t['sql'][:110]}")
    for key, label in (("with_action", "My actions, an action chosen"), ("with_closed", "My actions, completed")):
        sql = (mine.get(key) or {}).get("sql")
        if sql:
            print(f"\n{label}: one render {sql['instrumented_s']:.3f} s, {sql['statements']} statements, "
                  f"{sql['sql_s']:.3f} s in the driver; slowest:")
            for t in sql["top"][:6]:
                print(f"  {t['seconds']:.4f} s  x{t['count']:<4} {t['sql'][:110]}")
    if save.get("sql"):
        sql = save["sql"]
        print(f"\nOne save: {sql['statements']} statements, {sql['sql_s']:.4f} s in the driver:")
        for t in sql["top"][:12]:
            print(f"  {t['seconds']:.4f} s  x{t['count']:<4} {t['sql'][:110]}")
    explain = results.get("explain") or {}
    for q in explain.get("queries", []):
        print(f"\n{q['what']}: {q['rows']} rows, {s(q['median_s'])} s (cold {s(q['cold_s'])} s)")
        print("  " + q["sql"][:400])
        for line in q["plan"]:
            print("    " + line)
    for key, r in results.items():
        if isinstance(r, dict) and "error" in r:
            print(f"\n{key} failed: {r['error']}")
    print("\nTargets:")
    for t in targets:
        print(f"  [{t['status']:>12}] {t['target']}: {t['seconds']} s  ({t['detail']})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--actions", type=int, default=DEFAULT_ACTIONS)
    parser.add_argument("--notifications", type=int, default=DEFAULT_NOTIFICATIONS)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--database-url", help="a PostgreSQL database whose public schema is DROPPED and recreated")
    where.add_argument("--postgres", action="store_true", help="start a throwaway PostgreSQL server for the run")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", type=Path, metavar="DB", help="keep the measured database (SQLite copy or "
                                                                "pg_dump -Fc)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--end-date", type=dt.date.fromisoformat, default=None,
                        help="the data's 'today' (default: today in Europe/London; the pages use the real clock)")
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS)
    parser.add_argument("--saves", type=int, default=DEFAULT_SAVES)
    args = parser.parse_args(argv)
    end = args.end_date or today_london()
    is_postgres = args.postgres or bool(args.database_url)
    report: dict = {"benchmark": "actions", "actions": args.actions, "notifications": args.notifications,
                    "seed": args.seed, "end_date": end.isoformat(), "runs": args.runs, "saves": args.saves,
                    "run_at_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    "machine": {"python": platform.python_version(), "platform": platform.platform(),
                                "cpus": os.cpu_count(), "load_average_before": list(os.getloadavg())},
                    "git_head": git_head()}
    report["sources"] = sources_before = source_fingerprint()
    started = time.perf_counter()
    server = tmp = None
    sqlite_file = None
    try:
        if is_postgres:
            if args.postgres:
                log("starting a throwaway PostgreSQL server")
                server = ThrowawayPostgres()
                url = server.url
                report["database"] = "postgresql (throwaway server: fsync off, default memory settings)"
            else:
                url = args.database_url
                reset_postgres(url)
                report["database"] = redact(url)
            log(f"generating {args.actions:,} actions into PostgreSQL (COPY)")
            gen = spawn("generate", url, str(args.notifications), str(args.actions), str(args.seed), end.isoformat())
            if "error" in gen:
                raise SystemExit(gen["error"])
        else:
            path, gen = cached_sqlite("actions", args.notifications, args.actions, args.seed, end)
            tmp = Path(tempfile.mkdtemp(prefix="dadaily-actions-"))
            sqlite_file = tmp / "bench.sqlite3"
            t0 = time.perf_counter()
            shutil.copyfile(path, sqlite_file)
            report["copy_s"] = round(time.perf_counter() - t0, 2)
            url = f"sqlite:///{sqlite_file}"
            report["database"] = f"sqlite (a copy of {path.relative_to(ROOT)}, {path.stat().st_size >> 20} MB)"
        report["generated"] = gen
        results: dict = {}
        log("(a) My actions page (AppTest)")
        results["my_actions"] = spawn("my-actions", url, str(args.runs))
        log(f"    median {results['my_actions'].get('median_s')} s")
        log("(b) Overdue view (AppTest)")
        results["overdue"] = spawn("overdue", url, str(args.runs))
        log(f"    median {results['overdue'].get('median_s')} s")
        log(f"(c) {args.saves} saves")
        results["save"] = spawn("save", url, str(args.saves))
        log(f"    median {results['save'].get('median_s')} s, p95 {results['save'].get('p95_s')} s")
        log("plans")
        results["explain"] = spawn("explain", url)
        report["results"] = results
        targets = evaluate(results)
        report["targets"] = targets
        report["total_s"] = round(time.perf_counter() - started, 1)
        report["machine"]["load_average_after"] = list(os.getloadavg())
        changed = sorted(k for k, v in source_fingerprint().items() if sources_before.get(k) != v)
        report["sources_changed_during_run"] = changed
        print_report(results, targets)
        if changed:
            print(f"\nWARNING: {', '.join(changed)} changed while the benchmark ran: run it again.")
        if args.keep:
            args.keep.parent.mkdir(parents=True, exist_ok=True)
            if server is not None:
                server.dump(args.keep)
            elif sqlite_file is not None:
                import sqlite3

                source, copy = sqlite3.connect(sqlite_file), sqlite3.connect(args.keep)
                source.backup(copy)
                source.close()
                copy.close()
    finally:
        if server is not None:
            server.stop()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    out = args.json or RESULTS_DIR / ("actions-postgres.json" if is_postgres else "actions.json")
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
