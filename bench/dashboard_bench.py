#!/usr/bin/env python
"""Dashboard benchmark (issue 7): the Dashboard page for a year, with 500,000 notifications, 1,000,000 actions and
300,000 Operation Encompass alerts, on SQLite and PostgreSQL.

    .venv/bin/python bench/dashboard_bench.py [--postgres] [--notifications 500000] [--actions 1000000]
                                              [--alerts 300000] [--runs 5] [--seed N] [--end-date YYYY-MM-DD]
                                              [--json OUT]

Target: the dashboard for a year (the page's default range: the last 12 months) renders on the server in <= 2 s:
Streamlit's ``AppTest`` running ``app.py`` signed in as a manager (who lands on the Dashboard), after one warm-up
render; the median of ``--runs`` renders is compared with the target.

Also reported: the time of each section's queries (``meetings.dashboard``'s section functions timed, median of
three calls) and the query plans of the slowest section's statements (``EXPLAIN QUERY PLAN`` on SQLite,
``EXPLAIN (ANALYZE, BUFFERS)`` on PostgreSQL).

**The data** reuses ``bench/actions_bench.py``'s generator (five years of meetings up to today, the notifications,
85 % of them discussed with decisions, and the actions with their history) and adds what the dashboard reads on
top: a victim for every notification (a person record; about a quarter of notifications are a repeat of a victim
seen in the previous weeks or months), 0-3 children per notification (``notification_person``, dates of birth
0-16 years before the incident) and one Encompass alert per school-age child up to ``--alerts`` (deadline the next
day 08:30; ~90 % notified before it, ~85 % acknowledged, 3 % with the school to resolve). A manager account
``bench-manager`` is created.

* SQLite: the actions benchmark's cached database (``bench/.cache/actions_...``, generated once) is copied and
  extended into ``bench/.cache/dashboard_...`` (once), then copied to a temporary folder for each run.
* ``--postgres``: a throwaway PostgreSQL server (``agenda_bench.ThrowawayPostgres``), generated with COPY, then
  ``VACUUM ANALYZE``.

Measurements take ``/tmp/dadaily-bench.lock`` (flock) so they never overlap another benchmark on this machine;
generation does not. ``--lock-held``: the caller already holds it (``flock /tmp/dadaily-bench.lock .venv/bin/python
bench/dashboard_bench.py --lock-held``), so the script does not wait for it again. ``--database-url URL``: measure a
database generated earlier (the same data set, e.g. a PostgreSQL server kept running) instead of generating one.

Besides wall-clock seconds, every measurement reports CPU seconds (this process's, plus the PostgreSQL backend's
read from ``/proc`` when the server is on this machine) and the load average: on a shared machine the wall clock
says how busy the machine was as much as how fast the dashboard is. Results: a table, PASS/FAIL and JSON (``bench/results/dashboard.json`` or
``dashboard-postgres.json``). Exit status 1 when the target fails.
"""
from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
for p in (str(ROOT), str(BENCH)):
    if p not in sys.path:
        sys.path.insert(0, p)

import actions_bench  # noqa: E402
from agenda_bench import CHILD_COUNTS, ThrowawayPostgres, git_head, log, redact  # noqa: E402

CACHE_DIR = ROOT / "bench" / ".cache"
RESULTS_DIR = ROOT / "bench" / "results"
EXTRA_VERSION = 1  # bump when add_people_and_alerts changes
PAGE_MAX_S = 2.0
MANAGER = "bench-manager"
PASSWORD = actions_bench.BENCH_PASSWORD
LOCK = "/tmp/dadaily-bench.lock"
REPEAT_SHARE = 0.25
SECTIONS = ("_notification_sections", "_areas", "_meetings", "_actions", "_encompass")


@contextmanager
def bench_lock(held: bool = False):
    if held:  # the caller holds it (flock(1)); taking it again through another open file would wait forever
        yield
        return
    with open(LOCK, "w") as fh:
        log(f"waiting for {LOCK}")
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------------------- generation


def add_people_and_alerts(url: str, n_alerts: int, seed: int) -> dict:
    """Victims, children and Encompass alerts on top of the actions benchmark's notifications."""
    from sqlalchemy import Column, Integer, MetaData, Table, select, text

    from core.db import bulk_insert, get_engine, reserve_ids
    from core.timeutil import london_to_utc
    from dv.models import EncompassAlert, Notification, NotificationPerson, Person

    t0 = time.perf_counter()
    rng = random.Random(seed * 7919 + 11)
    engine = get_engine(url)
    N, P, NP, E = (m.__table__ for m in (Notification, Person, NotificationPerson, EncompassAlert))
    counts = {}
    with engine.begin() as conn:
        notes = conn.execute(select(N.c.id, N.c.incident_at).order_by(N.c.incident_at, N.c.id)).all()
        # victims: a new person, or (REPEAT_SHARE) the victim of one of the previous ~3,000 notifications
        victim_of: list[int] = []
        n_people = 0
        for i in range(len(notes)):
            if i and rng.random() < REPEAT_SHARE:
                victim_of.append(victim_of[max(0, i - int(rng.expovariate(1 / 600)) - 1)])
            else:
                victim_of.append(n_people)
                n_people += 1
        n_children_people = 5000
        person_ids = reserve_ids(conn, P, n_people + n_children_people)
        now = dt.datetime(2026, 1, 1)
        people = [{"id": pid, "force": actions_bench.FORCE, "surname": f"Bench{k}", "forename": "Made",
                   "match_key": f"bench|{k}", "created_at_utc": now} for k, pid in enumerate(person_ids)]
        for i in range(0, len(people), 100_000):
            bulk_insert(conn, P, people[i:i + 100_000])
        counts["person"] = len(people)
        del people
        md = MetaData()
        tmp = Table("bench_victim", md, Column("id", Integer, primary_key=True), Column("victim_id", Integer))
        md.create_all(conn)
        rows = [{"id": nid, "victim_id": person_ids[v]} for (nid, _), v in zip(notes, victim_of)]
        for i in range(0, len(rows), 100_000):
            bulk_insert(conn, tmp, rows[i:i + 100_000])
        conn.execute(text("UPDATE notification SET victim_id = (SELECT b.victim_id FROM bench_victim b "
                          "WHERE b.id = notification.id)"))
        md.drop_all(conn)
        del rows
        # children and alerts
        child_pool = person_ids[n_people:]
        cum = []
        total = 0
        for k, w in CHILD_COUNTS:
            total += w
            cum.append(total)
        kids, alerts = [], []
        for nid, at in notes:
            k = rng.choices([c for c, _ in CHILD_COUNTS], cum_weights=cum)[0]
            for pos in range(k):
                age_days = rng.randint(30, 16 * 365)
                dob = at.date() - dt.timedelta(days=age_days)
                kids.append({"notification_id": nid, "person_id": rng.choice(child_pool), "role": "child",
                             "position": pos, "surname": "Bench", "forename": f"Child{pos}", "dob": dob,
                             "school_name": "Bench Primary School" if age_days > 4 * 365 else None})
        np_ids = reserve_ids(conn, NP, len(kids))
        for row, i in zip(kids, np_ids):
            row["id"] = i
        for i in range(0, len(kids), 100_000):
            bulk_insert(conn, NP, kids[i:i + 100_000])
        counts["notification_person"] = len(kids)
        last = notes[-1][1]
        school_age = [r for r in kids if r["school_name"]]
        rng.shuffle(school_age)
        alerts = school_age[:n_alerts]
        incident = dict(notes)
        out = []
        for r in alerts:
            at = incident[r["notification_id"]]
            due = dt.datetime.combine(at.date() + dt.timedelta(days=1), dt.time(8, 30))
            roll = rng.random()
            resolution, urn, status = "resolved", f"1{rng.randint(0, 1999):05d}", "notified"
            notified = acked = None
            if roll < 0.03:
                resolution, urn, status = "to_resolve", None, "queued"
            elif at > last - dt.timedelta(days=1):
                status = "queued"
            else:
                due_utc = london_to_utc(due)
                notified = due_utc - dt.timedelta(minutes=rng.randint(10, 720)) if rng.random() < 0.9 \
                    else due_utc + dt.timedelta(minutes=rng.randint(5, 600))
                if rng.random() < 0.85:
                    acked = notified + dt.timedelta(minutes=rng.randint(5, 300))
                    status = "acknowledged"
            out.append({"notification_id": r["notification_id"], "child_link_id": r["id"], "school_urn": urn,
                        "child_key": f"bench|child{r['position']}|{r['dob']}", "school_typed": r["school_name"],
                        "resolution": resolution, "incident_at": at, "due_at": due, "status": status,
                        "notified_at_utc": notified, "acknowledged_at_utc": acked,
                        "created_at_utc": at + dt.timedelta(hours=20), "version": 1})
        for i in range(0, len(out), 100_000):
            bulk_insert(conn, E, out[i:i + 100_000])
        counts["encompass_alert"] = len(out)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()
    return {"counts": counts, "seconds": round(time.perf_counter() - t0, 1)}


def manager(url: str) -> None:
    from sqlmodel import Session, select

    from core.auth import create_user
    from core.db import get_engine
    from core.models import User, UserRole

    with Session(get_engine(url)) as s:
        if s.exec(select(User).where(User.username == MANAGER)).first() is None:
            create_user(s, None, username=MANAGER, display_name="Bench Manager", role=UserRole.manager,
                        password=PASSWORD)
            s.commit()


def _generate_actions(url: str, n_notes: int, n_actions: int, seed: int, end: dt.date) -> dict:
    """``actions_bench.generate``; on SQLite its closing ``PRAGMA wal_checkpoint`` runs inside the ``BEGIN
    IMMEDIATE`` that ``core.db`` now starts on every connection and fails ("database table is locked") after all
    the data is committed: tolerated here, and the checkpoint is done outside a transaction (``_checkpoint``)."""
    from sqlalchemy.exc import OperationalError

    try:
        return actions_bench.generate(url, n_notes, n_actions, seed, end)
    except OperationalError as exc:
        if "wal_checkpoint" not in str(exc):
            raise
        return {"note": "generated; the generator's own checkpoint failed inside BEGIN IMMEDIATE"}


def _checkpoint(url: str) -> None:
    from core.db import get_engine

    engine = get_engine(url)
    raw = engine.raw_connection()  # no SQLAlchemy transaction, so no BEGIN IMMEDIATE around the pragma
    try:
        raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()
        engine.dispose()


def cached_sqlite(n_notes: int, n_actions: int, n_alerts: int, seed: int, end: dt.date) -> tuple[Path, dict]:
    """The generated SQLite database in bench/.cache/ (generated once per key)."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    stem = actions_bench.cache_key("actions", n_notes, n_actions, seed, end).replace(
        "actions_", f"dashboard_al{n_alerts}_v{EXTRA_VERSION}_", 1)
    path = CACHE_DIR / f"{stem}.sqlite3"
    info_path = path.with_suffix(".json")
    if path.exists() and info_path.exists():
        return path, {**json.loads(info_path.read_text()), "cached": True}
    part = CACHE_DIR / f"{stem}.part.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(str(part) + suffix).unlink(missing_ok=True)
    url = f"sqlite:///{part}"
    log(f"generating {n_notes:,} notifications, {n_actions:,} actions and {n_alerts:,} alerts into "
        f"{path.relative_to(ROOT)} (once)")
    t = time.perf_counter()
    info = {"actions_generator": _generate_actions(url, n_notes, n_actions, seed, end)}
    info["extra"] = add_people_and_alerts(url, n_alerts, seed)
    manager(url)
    _checkpoint(url)
    info["generate_s"] = round(time.perf_counter() - t, 1)
    for suffix in ("-wal", "-shm"):
        Path(str(part) + suffix).unlink(missing_ok=True)
    part.replace(path)
    info_path.write_text(json.dumps(info, indent=2, default=str))
    return path, {**info, "cached": False}


# ---------------------------------------------------------------------------------------------------- measuring


def _backend_cpu(conn) -> float:
    """CPU seconds used so far by the PostgreSQL backend serving ``conn`` (0 when it is not on this machine)."""
    try:
        pid = conn.connection.driver_connection.info.backend_pid
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, AttributeError, IndexError, ValueError):
        return 0.0


def _cpu(session) -> float:
    """This process's CPU seconds, plus its PostgreSQL backend's."""
    conn = session.connection()
    return time.process_time() + (_backend_cpu(conn) if conn.dialect.name == "postgresql" else 0.0)


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def measure_sections(url: str, start: dt.date, end: dt.date) -> dict:
    """Each section's time (median of three dashboard() calls) and the statements it ran."""
    from sqlalchemy import event
    from sqlmodel import Session, select

    import meetings.dashboard as d
    from core.db import get_engine
    from core.models import User

    engine = get_engine(url)
    times: dict[str, list[float]] = {s: [] for s in SECTIONS}
    cpus: dict[str, list[float]] = {s: [] for s in SECTIONS}
    session_box: list = []
    statements: dict[str, list] = {}
    current: list[str] = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        if current:
            statements.setdefault(current[0], [])
            if len(statements[current[0]]) < 40:
                statements[current[0]].append((statement, parameters))

    originals = {name: getattr(d, name) for name in SECTIONS}

    def wrap(name):
        def timed(*a, **kw):
            current[:] = [name]
            t, c = time.perf_counter(), _cpu(session_box[0])
            try:
                return originals[name](*a, **kw)
            finally:
                times[name].append(time.perf_counter() - t)
                cpus[name].append(_cpu(session_box[0]) - c)
                current.clear()
        return timed

    for name in SECTIONS:
        setattr(d, name, wrap(name))
    event.listen(engine, "before_cursor_execute", grab)
    totals, total_cpus = [], []
    load_before = _load()
    try:
        with Session(engine, expire_on_commit=False) as s:
            session_box.append(s)
            user = s.exec(select(User).where(User.username == MANAGER)).one()
            for k in range(3):
                if k == 2:
                    statements.clear()
                t, c = time.perf_counter(), _cpu(s)
                figures = d.dashboard(s, user, start, end, "month", record_view=False)
                totals.append(time.perf_counter() - t)
                total_cpus.append(_cpu(s) - c)
                s.rollback()
    finally:
        event.remove(engine, "before_cursor_execute", grab)
        for name, fn in originals.items():
            setattr(d, name, fn)
    med = {name: round(statistics.median(v), 4) for name, v in times.items()}
    slowest = max(med, key=med.get)
    plans = []
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":  # as dashboard() runs them
            conn.exec_driver_sql("SET jit = off")
            conn.exec_driver_sql("SET work_mem = '64MB'")
            conn.exec_driver_sql("SET random_page_cost = 1.1")
        for statement, params in statements.get(slowest, [])[:8]:
            prefix = "EXPLAIN (ANALYZE, BUFFERS) " if engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
            t = time.perf_counter()
            rows = conn.exec_driver_sql(prefix + statement, params).all()
            took = time.perf_counter() - t
            plans.append({"sql": " ".join(statement.split())[:400], "explain_s": round(took, 3),
                          "plan": [" | ".join(str(c) for c in r) for r in rows][:40]})
    return {"sections_s": med, "sections_cpu_s": {name: round(statistics.median(v), 4) for name, v in cpus.items()},
            "dashboard_s": round(statistics.median(totals), 4),
            "dashboard_cpu_s": round(statistics.median(total_cpus), 4), "load": [load_before, _load()],
            "slowest": slowest,
            "plans": plans, "headline": {"notifications": figures["notifications"]["total"],
                                         "actions_agreed": figures["actions"]["total"]["agreed"],
                                         "alerts": figures["encompass"]["alerts"],
                                         "meetings": figures["meetings"]["meetings"],
                                         "repeat_pct": figures["repeats"]["repeat_pct"]}}


def measure_page(url: str, runs: int) -> dict:
    from sqlmodel import Session, select
    from streamlit.testing.v1 import AppTest

    from core.db import get_engine
    from core.models import User

    os.environ["DATABASE_URL"] = url
    with Session(get_engine(url)) as s:
        uid = s.exec(select(User.id).where(User.username == MANAGER)).one()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["auth"] = {"user_id": uid, "login_at": time.time(), "last_seen": time.time()}
    t = time.perf_counter()
    at.run()
    cold = time.perf_counter() - t
    if at.exception:
        raise SystemExit(f"the page raised: {at.exception[0].value}")
    titles = [t.value for t in at.title]
    if "Dashboard" not in titles:
        raise SystemExit(f"the manager did not land on the Dashboard: {titles}")
    renders, cpus = [], []
    load_before = _load()
    pg = url.startswith("postgresql")
    for _ in range(runs):
        at.session_state["auth"] = {"user_id": uid, "login_at": time.time(), "last_seen": time.time()}
        t, c = time.perf_counter(), time.process_time() + (_pg_server_cpu(url) if pg else 0.0)
        at.run()
        renders.append(time.perf_counter() - t)
        cpus.append(time.process_time() + (_pg_server_cpu(url) if pg else 0.0) - c)
        assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    return {"cold_s": round(cold, 3), "median_s": round(statistics.median(renders), 3),
            "all_s": [round(r, 3) for r in renders], "cpu_median_s": round(statistics.median(cpus), 3),
            "load": [load_before, _load()], "notifications_metric": metrics.get("Notifications")}


def _pg_server_cpu(url: str) -> float:
    """CPU seconds used so far by the PostgreSQL server behind ``url`` when it runs on this machine (the page opens
    its own connections, so no one backend can be followed): its postmaster (``postmaster.pid`` in its data
    directory), the postmaster's children, and the children it has reaped; 0 when it cannot be read."""
    from core.db import get_engine

    tick = os.sysconf("SC_CLK_TCK")
    try:
        with get_engine(url).connect() as conn:
            data_dir = conn.exec_driver_sql("SHOW data_directory").scalar()
        postmaster = int(Path(data_dir, "postmaster.pid").read_text().split()[0])
    except Exception:  # noqa: BLE001 - not a superuser, another machine: no figure
        return 0.0
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(proc.name), int(stat[1])
        if pid == postmaster:
            total += sum(int(x) for x in stat[11:15]) / tick  # its own and its reaped children's
        elif ppid == postmaster:
            total += (int(stat[11]) + int(stat[12])) / tick
    return total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--postgres", action="store_true")
    ap.add_argument("--notifications", type=int, default=500_000)
    ap.add_argument("--actions", type=int, default=1_000_000)
    ap.add_argument("--alerts", type=int, default=300_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--end-date", help="the data's last day (default: today, Europe/London)")
    ap.add_argument("--json")
    ap.add_argument("--lock-held", action="store_true",
                    help=f"the caller holds {LOCK} (flock(1)): measure without taking it again")
    ap.add_argument("--database-url", help="measure this database, generated earlier with the same options "
                                           "(read only), instead of generating one")
    args = ap.parse_args(argv)
    end = dt.date.fromisoformat(args.end_date) if args.end_date else actions_bench.today_london()
    from core.timeutil import london_now

    today = london_now().date()
    start = today - dt.timedelta(days=364)  # the page's default: the last 12 months
    results: dict = {"database": "postgresql" if args.postgres else "sqlite", "notifications": args.notifications,
                     "actions": args.actions, "alerts": args.alerts, "range": [start.isoformat(), today.isoformat()],
                     "git_head": git_head(), "machine": platform.platform(), "cpus": os.cpu_count()}
    pg = tmpdir = None
    try:
        if args.database_url:
            url = args.database_url
            results["database"] = "postgresql" if url.startswith("postgresql") else "sqlite"
            results["generate"] = {"note": "generated earlier; measured as it is"}
        elif args.postgres:
            pg = ThrowawayPostgres()
            url = pg.url
            t = time.perf_counter()
            results["generate"] = _generate_actions(url, args.notifications, args.actions, args.seed, end)
            results["extra"] = add_people_and_alerts(url, args.alerts, args.seed)
            manager(url)
            results["generate_s"] = round(time.perf_counter() - t, 1)
        else:
            path, info = cached_sqlite(args.notifications, args.actions, args.alerts, args.seed, end)
            results["generate"] = info
            tmpdir = Path(tempfile.mkdtemp(prefix="dadaily-dash-"))
            shutil.copyfile(path, tmpdir / "bench.sqlite3")
            url = f"sqlite:///{tmpdir / 'bench.sqlite3'}"
        results["url"] = redact(url)
        with bench_lock(args.lock_held):
            results["sections"] = measure_sections(url, start, today)
            results["page"] = measure_page(url, args.runs)
    finally:
        if pg is not None:
            pg.stop()
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
    ok = results["page"]["median_s"] <= PAGE_MAX_S
    results["target"] = {"name": "dashboard page for a year", "limit_s": PAGE_MAX_S,
                         "value_s": results["page"]["median_s"], "pass": ok}
    sec = results["sections"]
    print(f"\nDashboard benchmark ({results['database']}): {args.notifications:,} notifications, "
          f"{args.actions:,} actions, {args.alerts:,} alerts; range {start} to {today}")
    page = results["page"]
    print(f"{'section':28} {'seconds':>8} {'CPU s':>8}")
    for name, s in sec["sections_s"].items():
        print(f"{name.strip('_'):28} {s:8.3f} {sec['sections_cpu_s'][name]:8.3f}")
    print(f"{'dashboard() total':28} {sec['dashboard_s']:8.3f} {sec['dashboard_cpu_s']:8.3f}")
    print(f"{'page (AppTest) warm-up':28} {page['cold_s']:8.3f}")
    print(f"{'page (AppTest) median':28} {page['median_s']:8.3f} {page['cpu_median_s']:8.3f}   runs {page['all_s']}")
    print(f"load average (1, 5, 15 min) before / after: sections {sec['load'][0]} / {sec['load'][1]}, "
          f"page {page['load'][0]} / {page['load'][1]}")
    print(f"headline: {sec['headline']}")
    print(f"\nplans of the slowest section ({sec['slowest'].strip('_')}):")
    for p in sec["plans"]:
        print(f"  {p['sql'][:200]}")
        for line in p["plan"][:20]:
            print(f"      {line}")
    print(f"\n{'PASS' if ok else 'FAIL'} dashboard page for a year: {results['page']['median_s']:.3f} s "
          f"(target <= {PAGE_MAX_S} s)")
    out = Path(args.json) if args.json else RESULTS_DIR / ("dashboard-postgres.json" if args.postgres else
                                                           "dashboard.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
