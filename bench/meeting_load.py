#!/usr/bin/env python
"""Load benchmark: 20 concurrent Chromium sessions against ``streamlit run app.py`` on loopback.

    .venv/bin/python bench/meeting_load.py [--duration 120] [--sessions 20] [--postgres | --database-url URL]
                                           [--notifications 50000] [--actions 200000] [--think 5 15]
                                           [--hot-share 0.3] [--seed N] [--json OUT]
    .venv/bin/python bench/meeting_load.py --duration 20 --sessions 5      # a quick smoke check

Target from issue 5 ("Tests and speed"): agency representatives updating actions and a coordinator recording the
meeting, 20 sessions for two minutes: **p95 interaction latency <= 1 s, no errors, no lost update**, on SQLite and
on PostgreSQL.

**The sessions** (Playwright's async API, one headless Debian Chromium, one browser context per session, all
driven from one event loop): ``--sessions`` - 1 agency representatives, spread over the 8 agencies (at most 3 an
agency, ``bench-rep-<agency>-<k>``), each repeating: open *My account*, open *My actions*, choose an action (by
typing the number of its police reference into "Action to update", as a person would), switch its status between open and in progress and write a
note no one else writes, *Save*. With probability ``--hot-share`` the action is one of its agency's two "hot"
actions, which the agency's other representatives edit too, so two of them sometimes have the same action open
and the second save is refused (the version check). And 1 coordinator on the *Meeting* page of today's meeting
(its agenda built and the meeting opened before the run): *Next case* (back with *Previous* at the end), save the
risk and a decision, add an action for an agency. Each session waits a random ``--think`` time (seconds, uniform)
between interactions, as a person reading the page would: by default 5-15 s, a brisk human pace for people who
read a case, decide and type a note (each of 20 people acting every 10 s or so is busier than a real meeting).
``--think 1 4`` is a stress pace: on a 2-core machine the 20 Chromium renderers then need more CPU than there is
(about 0.4 s of browser CPU per interaction, measured with the Chrome DevTools Performance metrics), and every
latency is a wait for a core, not for the server.

**An interaction's latency** runs from the click to the page showing its result: the Streamlit server's final
``script_finished`` message for that rerun (read from the websocket; a ``st.rerun()`` after a save is a second
run, and only the run that finishes normally counts; the meeting timer's fragment runs do not count) *and* the
page idle (``stApp``'s ``data-test-script-state`` is ``notRunning``) *and* the expected element visible: the
page's heading, "Action on <ref>", the "Saved." or conflict message, the next case's heading, the new action's
text. A wait longer than 30 s, an exception on the page, an unexpected error message or a missing result is an
**error**. Latencies are reported per role and per interaction: count, p50, p95, max, errors.

**No lost update**, checked in the database after the run: every save a representative saw succeed ("Saved.") is
in ``action_change`` exactly once (its note, by that user), every refused save was a version conflict shown to
the user ("changed by someone else ... Their version is shown") and left no trace, and no other load note exists;
every action the coordinator saw added exists with its "created" history row, and each case's decisions are the
last ones saved.

**The data** (``actions_bench.generate``, cached in ``bench/.cache/`` for SQLite): ``--notifications`` 50,000
notifications over five years with their meetings, cases and ``--actions`` 200,000 actions and their history, so the
run is about concurrency, not size; today's meeting's agenda is built from the notifications of its window.

**The server**: ``streamlit run app.py`` (as ``tests.conftest.start_streamlit_app`` starts it, with its helpers,
but on the benchmark's database, SQLite or PostgreSQL, and with the file watcher off, so an edit elsewhere in the
repository during the run cannot prompt the sessions to rerun). ``--postgres`` starts a throwaway PostgreSQL
server (``agenda_bench.ThrowawayPostgres``). The server's CPU time, the machine's load average and the achieved
rate of interactions are reported too: on a 2-core machine the 20 Chromium renderers and the server share the CPUs.

Results: a table, PASS/FAIL lines and JSON (default ``bench/results/meeting-load.json`` or
``meeting-load-postgres.json``). Exit status 1 when a target fails.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
for p in (str(ROOT), str(BENCH)):
    if p not in sys.path:
        sys.path.insert(0, p)

from actions_bench import (
    BENCH_PASSWORD,
    COORDINATOR,
    REPS_PER_AGENCY,
    cached_sqlite,
    spawn,
    today_london,
)
from agenda_bench import ThrowawayPostgres, git_head, log, redact, reset_postgres

RESULTS_DIR = ROOT / "bench" / "results"
DEFAULT_NOTIFICATIONS = 50_000
DEFAULT_ACTIONS = 200_000
P95_MAX_S = 1.0
WAIT_S = 30.0  # an interaction not finished by then is an error
CONFLICT_TEXT = "changed by someone else"
HOT_PER_AGENCY = 2
TARGETS_PER_AGENCY = 60


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, -(-int(q * len(ordered) * 1000) // 1000) - 1))
    return round(ordered[k], 4)


# ---------------------------------------------------------------------------------------------------------------
# Set-up: data, today's meeting, the actions the representatives will edit, the server
# ---------------------------------------------------------------------------------------------------------------


def prepare(url: str, seed: int) -> dict:
    """Build and open today's meeting (as the coordinator), and pick each agency's target and hot actions among
    those its representatives' My actions page lists."""
    os.environ["DATABASE_URL"] = url
    from sqlmodel import Session, select

    from core.db import get_engine
    from core.models import Agency, User
    from core.timeutil import london_now
    from meetings import meeting as mt
    from meetings.actions import list_actions
    from meetings.agenda import build_agenda, next_meeting_day

    engine = get_engine(url)
    day = next_meeting_day(london_now().date())  # the Meeting page's default date
    rng = random.Random(seed)
    out: dict = {"meeting_day": day.isoformat(), "agencies": {}}
    with Session(engine, expire_on_commit=False) as s:
        coord = s.exec(select(User).where(User.username == COORDINATOR)).one()
        build_agenda(s, coord, day)
        s.commit()
        view = mt.meeting_view(s, coord, day, log_view=False)
        meeting = view["meeting"]
        if meeting["status"] in ("draft", "published"):
            mt.open_meeting(s, coord, meeting["id"], chair="Bench Chair", expected_version=meeting["version"])
            s.commit()
            view = mt.meeting_view(s, coord, day, log_view=False)
        cases = view["cases"]
        if not cases:
            raise SystemExit(f"today's meeting ({day}) has no cases: the data has no notifications in its window")
        mt.go_to_case(s, coord, view["meeting_id"], cases[0]["item_id"])
        s.commit()
        out["meeting_id"] = view["meeting_id"]
        out["cases"] = [{"item_id": c["item_id"], "position": c["position"], "police_ref": c["police_ref"]}
                        for c in cases]
        for agency in s.exec(select(Agency).order_by(Agency.id)).all():
            rep = s.exec(select(User).where(User.username == f"bench-rep-{agency.id}-1")).one()
            rows = list_actions(s, rep, include_closed=False, limit=300)
            s.rollback()
            overdue = [r for r in rows if r["bucket"] == "overdue"]
            rest = [r for r in rows if r["bucket"] != "overdue"][:200]  # new actions may push the tail out
            pool = overdue + rest
            picks = rng.sample(pool, min(len(pool), TARGETS_PER_AGENCY + HOT_PER_AGENCY))
            out["agencies"][agency.id] = {
                "name": agency.name, "listed": len(rows),
                "hot": [{"id": r["id"], "police_ref": r["police_ref"]} for r in picks[:HOT_PER_AGENCY]],
                "targets": [{"id": r["id"], "police_ref": r["police_ref"]} for r in picks[HOT_PER_AGENCY:]]}
        users = {u.username: u.id for u in s.exec(select(User)).all()}
    engine.dispose()
    out["users"] = users
    return out


@dataclasses.dataclass
class Server:
    url: str
    process: subprocess.Popen
    log_path: Path


def start_server(database_url: str, workdir: Path, timeout: float = 90.0) -> Server:
    """``streamlit run app.py`` on a free loopback port, on ``database_url``: the same command line and health wait
    as ``tests.conftest.start_streamlit_app`` (which always makes its own SQLite database), with its helpers, and
    the file watcher off."""
    from tests.conftest import _no_proxy_opener, _stop_process_group, free_port

    profiles_dir = workdir / "profiles"
    if not profiles_dir.exists():
        shutil.copytree(ROOT / "data" / "profiles", profiles_dir)
    port = free_port()
    env = dict(os.environ, DATABASE_URL=database_url, DV_PROFILES_DIR=str(profiles_dir), PYTHONUNBUFFERED="1")
    log_path = workdir / "streamlit.log"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1", "--server.port",
             str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none", "--server.runOnSave", "false"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    server = Server(url=f"http://127.0.0.1:{port}", process=proc, log_path=log_path)
    opener = _no_proxy_opener()
    deadline = time.monotonic() + timeout
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError, OSError), \
                    opener.open(f"{server.url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return server
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamlit not healthy within {timeout:.0f} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
    except BaseException:
        _stop_process_group(proc)
        raise


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def machine_busy_s() -> float | None:
    """CPU seconds the whole machine has been busy (all cores, Linux /proc/stat)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def tree_cpu_s(root: int | None = None) -> float:
    """CPU seconds of this process and its descendants (the server, Chromium, the Playwright driver): with
    ``machine_busy_s`` it shows how much other work shared the machine during the run."""
    root = root or os.getpid()
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid, t in times.items():
        p, hops = pid, 0
        while p and p != root and hops < 64:
            p, hops = parents.get(p, 0), hops + 1
        if p == root:
            total += t
    return total


# ---------------------------------------------------------------------------------------------------------------
# The sessions
# ---------------------------------------------------------------------------------------------------------------


class Session:
    """One browser session: its page, the script runs the server finished (from the websocket), its log."""

    def __init__(self, name: str, role: str, page, base_url: str, rng: random.Random, think: tuple[float, float]):
        self.name, self.role, self.page, self.base_url = name, role, page, base_url
        self.rng, self.think_range = rng, think
        self.finished = 0  # script runs that finished normally (not early for a rerun, not fragment runs)
        self.changed = asyncio.Event()
        self.samples: list[dict] = []
        page.on("websocket", self._on_websocket)

    def _on_websocket(self, ws) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        def frame(payload) -> None:
            if not isinstance(payload, (bytes, bytearray)):
                return
            msg = ForwardMsg()
            try:
                msg.ParseFromString(payload)
            except Exception:  # noqa: BLE001  (not a ForwardMsg: ignore)
                return
            if msg.WhichOneof("type") == "script_finished" and msg.script_finished in (
                    ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_WITH_COMPILE_ERROR):
                self.finished += 1
                self.changed.set()

        ws.on("framereceived", frame)

    async def think(self) -> None:
        await asyncio.sleep(self.rng.uniform(*self.think_range))

    async def _settled(self, before: int, deadline: float) -> None:
        while self.finished <= before:
            self.changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no script_finished from the server")
            await asyncio.wait_for(self.changed.wait(), remaining)
        await self.page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(
            timeout=max(1, (deadline - time.monotonic()) * 1000))

    async def interact(self, what: str, click, expect=None, check=None) -> dict:
        """Click (``click()``), then wait for the server's run to finish, the page to be idle and ``expect`` (a
        locator) to be visible; ``check()`` then classifies the result (returns an outcome string or raises)."""
        sample = {"session": self.name, "role": self.role, "what": what, "at": time.time()}
        before = self.finished
        t0 = time.perf_counter()
        deadline = time.monotonic() + WAIT_S
        try:
            await click()
            await self._settled(before, deadline)
            if expect is not None:
                await expect.wait_for(state="visible", timeout=max(1, (deadline - time.monotonic()) * 1000))
            sample["seconds"] = round(time.perf_counter() - t0, 4)
            if await self.page.get_by_test_id("stException").count():
                raise RuntimeError("exception on the page: " + (await self.page.get_by_test_id("stException")
                                                                .first.inner_text())[:300])
            sample["outcome"] = (await check()) if check is not None else "ok"
        except Exception as exc:  # noqa: BLE001  (every failure is counted and reported)
            sample.setdefault("seconds", round(time.perf_counter() - t0, 4))
            sample["outcome"] = "error"
            sample["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
            with contextlib.suppress(Exception):  # what the page shows instead, to tell a slow page from a wrong one
                sample["page_shows"] = {
                    "headings": (await self.page.get_by_role("heading").all_inner_texts())[:6],
                    "alerts": [t[:200] for t in await self.page.get_by_test_id("stAlert").all_inner_texts()],
                    "script_state": await self.page.get_by_test_id("stApp").get_attribute("data-test-script-state",
                                                                                           timeout=2_000),
                    "runs_finished": self.finished}
        self.samples.append(sample)
        return sample

    async def sign_in(self, username: str, password: str, heading: str, attempts: int = 3) -> None:
        """Sign in (set-up, not measured); a failed attempt (e.g. an error page) is recorded and retried."""
        page = self.page
        for attempt in range(1, attempts + 1):
            try:
                await page.goto(self.base_url)
                await page.get_by_role("textbox", name="Username", exact=True).fill(username)
                await page.get_by_role("textbox", name="Password", exact=True).fill(password)
                await page.get_by_role("button", name="Sign in", exact=True).click()
                await page.get_by_role("heading", name=heading, exact=True).wait_for(timeout=30_000)
                await page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(
                    timeout=30_000)
                return
            except Exception as exc:
                shown = [t[:200] for t in await page.get_by_test_id("stException").all_inner_texts()]
                self.samples.append({"session": self.name, "role": self.role, "what": "sign in (set-up)",
                                     "at": time.time(), "outcome": "setup error", "attempt": attempt,
                                     "error": f"{type(exc).__name__}; page shows {shown}"})
                if attempt == attempts:
                    raise

    def nav(self, link: str):
        return self.page.get_by_test_id("stSidebarNav").get_by_role("link", name=link, exact=True)

    async def alerts(self) -> list[str]:
        return [t.strip() for t in await self.page.get_by_test_id("stAlert").all_inner_texts()]

    async def choose(self, label: str, typed: str, option, scope=None) -> bool:
        """Open a selectbox and filter it by typing; returns False when the option is not offered."""
        page = self.page
        box = (scope or page).get_by_role("combobox", name=label)
        for _ in range(5):  # a click landing while the page re-renders does not open the list: click again
            await box.click()
            try:
                await page.get_by_role("option").first.wait_for(timeout=3_000)
                break
            except Exception:  # noqa: BLE001
                await page.keyboard.press("Escape")
        await page.keyboard.type(typed)
        try:
            await option.first.wait_for(timeout=5_000)
        except Exception:  # noqa: BLE001
            await page.keyboard.press("Escape")
            return False
        # the list filters as the keys arrive: wait until it shows only what was typed, so that the click does not
        # land on a list being redrawn (on a loaded machine it then chose nothing, and the wait ran to the timeout)
        settle = time.monotonic() + 5
        while time.monotonic() < settle and await page.get_by_role("option").count() != await option.count():
            await asyncio.sleep(0.1)
        return True


class Clock:
    """Sign-in is set-up: every session signs in first (each new browser context also loads and compiles the
    Streamlit front end, seconds of CPU each); the measured minutes start for all at once when the last one is in."""

    def __init__(self, sessions: int):
        self.waiting, self.go, self.stop_at = sessions, asyncio.Event(), float("inf")
        self.signing_in = asyncio.Semaphore(2)  # two at a time: a new context loads and compiles the front end

    async def sign_in(self, s: "Session", username: str, password: str, heading: str) -> None:
        """Sign ``s`` in (two sessions at a time), then wait for everyone: the measured minutes start together."""
        try:
            async with self.signing_in:
                await s.sign_in(username, password, heading)
        except BaseException:
            self.arrived()
            raise
        self.arrived()
        await self.go.wait()

    def arrived(self) -> None:  # signed in, or gave up signing in
        self.waiting -= 1

    def running(self) -> bool:
        return time.monotonic() < self.stop_at


async def representative(s: Session, username: str, agency: dict, clock: Clock, hot_share: float,
                         saves: list[dict]) -> None:
    page = s.page
    await clock.sign_in(s, username, BENCH_PASSWORD, "My actions")
    n = 0
    while clock.running():
        await s.think()
        await s.interact("open My account", lambda: s.nav("My account").click(),
                         page.get_by_role("heading", name="My account", exact=True))
        await s.think()
        if not clock.running():
            break
        r = await s.interact("open My actions", lambda: s.nav("My actions").click(),
                             page.get_by_role("combobox", name="Action to update"))
        if r["outcome"] == "error":
            continue
        await s.think()
        hot = s.rng.random() < hot_share
        target = s.rng.choice(agency["hot"] if hot and agency["hot"] else agency["targets"])
        ref = target["police_ref"]
        option = page.get_by_role("option").filter(has_text=ref)
        if not await s.choose("Action to update", ref.rsplit("/", 1)[-1], option):  # "0049501", not "NP/26/0049501"
            s.samples.append({"session": s.name, "role": s.role, "what": "choose an action", "at": time.time(),
                              "outcome": "not listed", "police_ref": ref})
            continue
        r = await s.interact("choose an action", lambda o=option: o.first.click(),
                             page.get_by_role("heading", name=f"Action on {ref}", exact=True))
        if r["outcome"] == "error":
            continue
        await s.think()  # reads the case context, decides, types
        status_box = page.get_by_role("combobox", name="Status")
        current = await status_box.input_value()
        new = "in progress" if current.strip() == "open" else "open"
        if not await s.choose("Status", new, page.get_by_role("option", name=new, exact=True)):
            continue
        await page.get_by_role("option", name=new, exact=True).click()
        n += 1
        note = f"load {s.name} #{n} {uuid.uuid4().hex[:10]}"
        await page.get_by_role("textbox", name="Note (needed for done, not possible and not done)").fill(note)

        async def classify() -> str:
            texts = await s.alerts()
            if any(t == "Saved." for t in texts):
                return "saved"
            if any(CONFLICT_TEXT in t for t in texts):
                return "conflict"
            raise RuntimeError(f"no outcome shown after Save: {texts}")

        r = await s.interact("save an action", lambda: page.get_by_role("button", name="Save", exact=True).click(),
                             page.get_by_test_id("stAlert").first, classify)
        saves.append({"session": s.name, "username": username, "action_id": target["id"], "police_ref": ref,
                      "hot": hot, "note": note, "status": new, "outcome": r["outcome"], "at": r["at"],
                      "error": r.get("error")})


async def coordinator(s: Session, app_username: str, password: str, meeting: dict, agencies: dict, clock: Clock,
                      added: list[dict], decided: dict) -> None:
    page = s.page
    await clock.sign_in(s, app_username, password, "Notifications")
    r = await s.interact("open Meeting", lambda: s.nav("Meeting").click(),
                         page.get_by_role("heading", name="Meeting", exact=True))
    cases = meeting["cases"]
    at, step = 0, 1
    names = [a["name"] for a in agencies.values()]
    decisions = ("Information shared", "Early Help offer", "Children's social care referral", "IDVA referral",
                 "Strategy discussion", "Adult safeguarding referral")
    n = 0

    async def no_error() -> str:
        texts = await s.alerts()
        if texts:
            raise RuntimeError(f"error shown: {texts}")
        return "ok"

    while clock.running():
        await s.think()
        if at + step < 0 or at + step >= len(cases):
            step = -step
        button = "Next case" if step > 0 else "Previous"
        nxt = cases[at + step]
        heading = page.get_by_role("heading", name=f"{nxt['position']}. {nxt['police_ref']}", exact=False)
        r = await s.interact(f"{button.lower()}", lambda b=button: page.get_by_role("button", name=b,
                                                                                  exact=True).click(),
                             heading, no_error)
        if r["outcome"] == "error":
            # find where the page is: the Case selectbox names the case on screen
            with contextlib.suppress(Exception):
                value = await page.get_by_role("combobox", name="Case").input_value()
                pos = int(value.split(".", 1)[0])
                at = next(i for i, c in enumerate(cases) if c["position"] == pos)
            continue
        at += step
        item = cases[at]["item_id"]
        await s.think()
        # the risk (as graded) and one decision: pick it in the multiselect, then save
        form = page.get_by_test_id("stForm").filter(has=page.get_by_role("button", name="Save risk and decisions"))
        decision = s.rng.choice(decisions)
        picked = False
        box = form.get_by_test_id("stMultiSelect")
        await box.click()
        await page.keyboard.type(decision[:12])
        with contextlib.suppress(Exception):  # already chosen: no such option left
            await page.get_by_role("option").filter(has_text=decision).first.click(timeout=3_000)
            picked = True
        await page.keyboard.press("Escape")
        r = await s.interact("save risk and decisions",
                             lambda f=form: f.get_by_role("button", name="Save risk and decisions", exact=True).click(),
                             None, no_error)
        if r["outcome"] == "ok" and picked:
            decided.setdefault(item, []).append(decision)
        await s.think()
        add = page.get_by_test_id("stForm").filter(has=page.get_by_role("button", name="Add action", exact=True))
        agency = s.rng.choice(names)
        if not await s.choose("Agency", agency, page.get_by_role("option", name=agency, exact=True), add):
            continue
        await page.get_by_role("option", name=agency, exact=True).click()
        n += 1
        text = f"Load action {n} {uuid.uuid4().hex[:8]}"
        await add.get_by_role("textbox", name="Action", exact=True).fill(text)
        r = await s.interact("add an action",
                             lambda f=add: f.get_by_role("button", name="Add action", exact=True).click(),
                             page.get_by_test_id("stText").filter(has_text=text), no_error)
        added.append({"description": text, "agency": agency, "item_id": item, "outcome": r["outcome"]})


async def drive(base_url: str, setup: dict, args, coord_login: tuple[str, str], on_go=None, on_stop=None) -> dict:
    from playwright.async_api import async_playwright

    from tests.conftest import CHROMIUM, CHROMIUM_ARGS

    reps = args.sessions - 1
    agency_ids = sorted(setup["agencies"], key=int)
    plan = []
    for i in range(reps):
        agency = agency_ids[i % len(agency_ids)]
        k = i // len(agency_ids) + 1
        if k > REPS_PER_AGENCY:
            raise SystemExit(f"at most {REPS_PER_AGENCY * len(agency_ids) + 1} sessions")
        plan.append((f"rep-{agency}-{k}", f"bench-rep-{agency}-{k}", setup["agencies"][agency]))
    saves: list[dict] = []
    added: list[dict] = []
    decided: dict = {}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        sessions: list[Session] = []
        try:
            for i in range(args.sessions):
                context = await browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-GB",
                                                    timezone_id="Europe/London")
                context.set_default_timeout(WAIT_S * 1000)
                page = await context.new_page()
                name = "coordinator" if i == 0 else plan[i - 1][0]
                sessions.append(Session(name, "coordinator" if i == 0 else "representative", page, base_url,
                                        random.Random(f"{args.seed}-{name}"), tuple(args.think)))
            log(f"{args.sessions} sessions: signing in, then {args.duration:g} s of load")
            clock = Clock(args.sessions)
            tasks = []
            for i, s in enumerate(sessions):
                if i == 0:
                    coro = coordinator(s, coord_login[0], coord_login[1], setup, setup["agencies"], clock, added,
                                       decided)
                else:
                    _, username, agency = plan[i - 1]
                    coro = representative(s, username, agency, clock, args.hot_share, saves)

                tasks.append(asyncio.create_task(coro))
            while clock.waiting > 0 and not all(t.done() for t in tasks):
                await asyncio.sleep(0.2)
            await asyncio.sleep(2.0)  # the last sign-in's page settles
            if on_go is not None:
                on_go()
            started = time.monotonic()
            clock.stop_at = started + args.duration
            clock.go.set()
            log(f"all signed in: {args.duration:g} s of load")
            results = await asyncio.gather(*tasks, return_exceptions=True)
            if on_stop is not None:
                on_stop()  # before the browser closes: its processes' CPU time goes with them
            crashed = [f"{s.name}: {type(r).__name__}: {r}" for s, r in zip(sessions, results)
                       if isinstance(r, BaseException)]
            wall = time.monotonic() - started
        finally:
            await browser.close()
    return {"samples": [x for s in sessions for x in s.samples], "saves": saves, "added": added,
            "decided": decided, "crashed": crashed, "wall_s": round(wall, 1)}


# ---------------------------------------------------------------------------------------------------------------
# After the run: the database against what the sessions saw
# ---------------------------------------------------------------------------------------------------------------


def verify(url: str, setup: dict, run: dict) -> dict:
    from sqlalchemy import create_engine, func, select

    from meetings.meeting import DECISION_LABELS
    from meetings.models import Action, ActionChange, CaseDecision, CaseRecord

    H, A, CD, CR = ActionChange.__table__, Action.__table__, CaseDecision.__table__, CaseRecord.__table__
    users = setup["users"]
    engine = create_engine(url)
    problems: list[str] = []
    out: dict = {}
    with engine.connect() as conn:
        notes = {}
        for r in conn.execute(select(H.c.new_value, H.c.action_id, H.c.changed_by_id).where(
                H.c.field == "note", H.c.new_value.like("load %"))):
            notes.setdefault(r.new_value, []).append((r.action_id, r.changed_by_id))
        counts = {"saved": 0, "conflict": 0, "error": 0}
        for save in run["saves"]:
            found = notes.pop(save["note"], [])
            outcome = save["outcome"]
            counts[outcome if outcome in counts else "error"] += 1
            if outcome == "saved":
                if found != [(save["action_id"], users[save["username"]])]:
                    problems.append(f"LOST: {save['session']} saw 'Saved.' for action {save['action_id']} "
                                    f"({save['note']!r}) but the history holds {found}")
            elif outcome == "conflict":
                if found:
                    problems.append(f"a refused save is in the history: {save['note']!r} {found}")
            else:
                out.setdefault("errored_saves", []).append({**save, "in_history": bool(found)})
        if notes:
            problems.append(f"{len(notes)} load notes in the history that no session saw saved: "
                            f"{list(notes)[:5]}")
        out["saves"] = counts
        # hot actions: how many saves, and each hot action's final version equals 1 + its changes' count
        out["hot_saves"] = sum(1 for s in run["saves"] if s["hot"])
        out["hot_conflicts"] = sum(1 for s in run["saves"] if s["hot"] and s["outcome"] == "conflict")
        out["conflicts_on_targets_not_hot"] = sum(1 for s in run["saves"]
                                                  if not s["hot"] and s["outcome"] == "conflict")
        # the coordinator: every action it saw added exists, with its "created" history
        seen = [a for a in run["added"] if a["outcome"] == "ok"]
        for a in seen:
            rows = conn.execute(select(A.c.id).where(A.c.description == a["description"])).all()
            if len(rows) != 1:
                problems.append(f"action added on the page {a['description']!r}: {len(rows)} rows")
                continue
            created = conn.execute(select(func.count()).select_from(H).where(
                H.c.action_id == rows[0][0], H.c.field == "created")).scalar()
            if created != 1:
                problems.append(f"action {rows[0][0]} has {created} 'created' history rows")
        out["actions_added_seen"] = len(seen)
        labels = {v: k.value for k, v in DECISION_LABELS.items()}
        for item_id, d in run["decided"].items():  # d: the decisions added in saves the coordinator saw succeed
            stored = {r[0] if isinstance(r[0], str) else r[0].value for r in conn.execute(
                select(CD.c.decision).join(CR, CR.c.id == CD.c.case_id).where(CR.c.agenda_item_id == int(item_id)))}
            wanted = {labels.get(x, x) for x in d}
            if not wanted <= stored:  # every decision the coordinator saw saved is stored
                problems.append(f"case {item_id}: decisions saved {sorted(wanted)}, stored {sorted(stored)}")
        out["cases_decided"] = len(run["decided"])
    engine.dispose()
    out["problems"] = problems
    out["no_lost_update"] = not problems
    return out


def summarise(samples: list[dict]) -> dict:
    groups: dict[tuple[str, str], list[dict]] = {}
    for x in samples:
        groups.setdefault((x["role"], x["what"]), []).append(x)
        groups.setdefault((x["role"], "all"), []).append(x)
    out = {}
    for (role, what), xs in sorted(groups.items()):
        timed = [x["seconds"] for x in xs if x["outcome"] not in ("error", "not listed", "setup error")
                 and "seconds" in x]
        out[f"{role}/{what}"] = {
            "role": role, "what": what, "count": len(timed), "errors": sum(1 for x in xs if x["outcome"] == "error"),
            "not_listed": sum(1 for x in xs if x["outcome"] == "not listed"),
            "setup_errors": sum(1 for x in xs if x["outcome"] == "setup error"),
            "conflicts": sum(1 for x in xs if x["outcome"] == "conflict"),
            "p50_s": _pct(timed, 0.5), "p95_s": _pct(timed, 0.95), "max_s": round(max(timed), 4) if timed else None}
    return out


def timeline(samples: list[dict], step: float = 10.0) -> list[dict]:
    """Latency per ``step`` seconds of the run: a burst of slow interactions shows when the machine was short."""
    timed = sorted((x for x in samples if "seconds" in x and x["outcome"] not in ("setup error", "not listed")),
                   key=lambda x: x["at"])
    if not timed:
        return []
    t0, out = timed[0]["at"], {}
    for x in timed:
        out.setdefault(int((x["at"] - t0) // step), []).append(x["seconds"])
    return [{"from_s": k * step, "count": len(v), "p50_s": _pct(v, 0.5), "max_s": round(max(v), 3)}
            for k, v in sorted(out.items())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load (after signing in)")
    parser.add_argument("--sessions", type=int, default=20, help="browser sessions: 1 coordinator + the rest "
                                                                 "agency representatives (at most 25)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--database-url", help="a PostgreSQL database whose public schema is DROPPED and recreated")
    where.add_argument("--postgres", action="store_true", help="start a throwaway PostgreSQL server for the run")
    parser.add_argument("--notifications", type=int, default=DEFAULT_NOTIFICATIONS)
    parser.add_argument("--actions", type=int, default=DEFAULT_ACTIONS)
    parser.add_argument("--think", type=float, nargs=2, default=(5.0, 15.0), metavar=("MIN", "MAX"),
                        help="seconds between a session's interactions (uniform; default 5 15, a human pace; "
                             "1 4 is a stress pace)")
    parser.add_argument("--hot-share", type=float, default=0.3, help="share of a representative's edits on one of "
                                                                     "its agency's 2 shared 'hot' actions")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.sessions < 2:
        parser.error("--sessions must be at least 2 (a coordinator and a representative)")
    end = today_london()
    is_postgres = args.postgres or bool(args.database_url)
    report: dict = {"benchmark": "meeting-load", "sessions": args.sessions, "duration_s": args.duration,
                    "think_s": list(args.think), "hot_share": args.hot_share, "notifications": args.notifications,
                    "actions": args.actions, "seed": args.seed,
                    "run_at_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "git_head": git_head(),
                    "machine": {"python": platform.python_version(), "platform": platform.platform(),
                                "cpus": os.cpu_count(), "load_average_before": list(os.getloadavg())}}
    pg = server = None
    workdir = Path(tempfile.mkdtemp(prefix="dadaily-load-"))
    try:
        if is_postgres:
            if args.postgres:
                log("starting a throwaway PostgreSQL server")
                pg = ThrowawayPostgres()
                url = pg.url
                report["database"] = "postgresql (throwaway server: fsync off, default memory settings)"
            else:
                url = args.database_url
                reset_postgres(url)
                report["database"] = redact(url)
            log(f"generating {args.actions:,} actions into PostgreSQL (COPY)")
            gen = spawn("generate", url, str(args.notifications), str(args.actions), str(args.seed), end.isoformat(),
                        script=BENCH / "actions_bench.py")
            if "error" in gen:
                raise SystemExit(gen["error"])
        else:
            path, gen = cached_sqlite("load", args.notifications, args.actions, args.seed, end)
            shutil.copyfile(path, workdir / "app.sqlite3")
            url = f"sqlite:///{workdir / 'app.sqlite3'}"
            report["database"] = f"sqlite (a copy of {path.relative_to(ROOT)})"
        report["generated"] = gen
        setup = prepare(url, args.seed)
        report["meeting"] = {"day": setup["meeting_day"], "cases": len(setup["cases"])}
        report["agencies"] = {v["name"]: {"listed": v["listed"], "hot": [h["police_ref"] for h in v["hot"]]}
                              for v in setup["agencies"].values()}
        log(f"today's meeting {setup['meeting_day']}: {len(setup['cases'])} cases; starting streamlit run app.py")
        server = start_server(url, workdir)
        at_go: dict = {}

        at_stop: dict = {}

        def on_go() -> None:  # the measured minutes start: sign-in (set-up) is over
            at_go.update(cpu=cpu_seconds(server.process.pid), load=os.getloadavg(), t=time.monotonic(),
                         busy=machine_busy_s(), ours=tree_cpu_s())

        def on_stop() -> None:
            at_stop.update(cpu=cpu_seconds(server.process.pid), t=time.monotonic(), busy=machine_busy_s(),
                           ours=tree_cpu_s())

        run = asyncio.run(drive(server.url, setup, args, (COORDINATOR, BENCH_PASSWORD), on_go, on_stop))
        cpu0, load0, t0 = at_go.get("cpu"), at_go.get("load"), at_go.get("t", time.monotonic())
        wall = at_stop.get("t", time.monotonic()) - t0
        cpu1, busy1, ours1 = at_stop.get("cpu"), at_stop.get("busy"), at_stop.get("ours")
        report["server"] = {"cpu_s": round(cpu1 - cpu0, 1) if cpu0 is not None and cpu1 is not None else None,
                            "wall_s": round(wall, 1), "load_average_after": list(os.getloadavg()),
                            "load_average_at_start": list(load0) if load0 else None}
        if at_go.get("busy") is not None and busy1 is not None and ours1 is not None:
            machine = busy1 - at_go["busy"]
            ours = ours1 - at_go["ours"]
            report["server"].update(machine_busy_cpu_s=round(machine, 1), benchmark_tree_cpu_s=round(ours, 1),
                                    other_work_cpu_s=round(max(0.0, machine - ours), 1),
                                    cores_busy=round(machine / max(wall, 1e-9), 2))
        errors_in_log = [ln for ln in server.log_path.read_text(errors="replace").splitlines()
                         if "Traceback" in ln or "Error" in ln][:20]
        report["server"]["log_errors"] = errors_in_log
        report["crashed_sessions"] = run["crashed"]
        report["latency"] = summarise(run["samples"])
        report["timeline"] = timeline(run["samples"])
        report["verify"] = verify(url, setup, run)
        report["samples"] = run["samples"]
        report["saves"] = run["saves"]
        timed = [x for x in run["samples"] if x["outcome"] not in ("not listed", "setup error")]
        report["interactions_per_s"] = round(len(timed) / max(1.0, args.duration), 2)
    finally:
        if server is not None:
            from tests.conftest import _stop_process_group

            _stop_process_group(server.process)
            with contextlib.suppress(OSError):
                shutil.copyfile(server.log_path, RESULTS_DIR / ("meeting-load-postgres-streamlit.log" if is_postgres
                                                                else "meeting-load-streamlit.log"))
        if pg is not None:
            pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    targets = []
    for role in ("coordinator", "representative"):
        row = report["latency"].get(f"{role}/all") or {}
        p95 = row.get("p95_s")
        targets.append({"target": f"{role}s: p95 interaction latency <= {P95_MAX_S:g} s", "seconds": p95,
                        "status": "not measured" if p95 is None else "PASS" if p95 <= P95_MAX_S else "FAIL"})
        crashed = [c for c in report["crashed_sessions"] if c.startswith("coordinator" if role == "coordinator"
                                                                           else "rep-")]
        setup = (report["latency"].get(f"{role}/sign in (set-up)") or {}).get("setup_errors", 0)
        targets.append({"target": f"{role}s: no errors", "errors": (row.get("errors") or 0) + len(crashed) + setup,
                        "status": "PASS" if row and not row.get("errors") and not crashed and not setup
                        else "FAIL"})
    targets.append({"target": "no lost update (every save seen is in the history; every refusal a conflict)",
                    "status": "PASS" if report["verify"]["no_lost_update"] and not report["crashed_sessions"]
                    else "FAIL", "problems": report["verify"]["problems"][:20]})
    report["targets"] = targets

    print(f"\n{args.sessions} sessions for {args.duration:g} s on {report['database']}: "
          f"{report['interactions_per_s']} interactions/s; streamlit server CPU {report['server']['cpu_s']} s "
          f"over {report['server']['wall_s']} s; load average after {report['server']['load_average_after']}")
    head = ("role / interaction", "count", "p50 s", "p95 s", "max s", "errors", "conflicts")
    print("\n" + f"{head[0]:<42}" + "".join(f"{h:>10}" for h in head[1:]))
    for key, row in report["latency"].items():
        cells = [row["count"], row["p50_s"], row["p95_s"], row["max_s"], row["errors"], row["conflicts"]]
        print(f"{key:<42}" + "".join(f"{'-' if c is None else c:>10}" for c in cells))
    v = report["verify"]
    print(f"\nsaves: {v['saves']}; on hot actions {v['hot_saves']} ({v['hot_conflicts']} refused as conflicts); "
          f"actions added by the coordinator {v['actions_added_seen']}; cases decided {v['cases_decided']}")
    errors = [x for x in run["samples"] if x["outcome"] in ("error", "setup error")]
    for x in errors[:15]:
        print(f"  error: {x['session']} {x['what']} after {x.get('seconds')} s: {x.get('error')}"
              + (f"; page shows {x['page_shows']}" if x.get("page_shows") else ""))
    for c in report["crashed_sessions"]:
        print(f"  session crashed: {c}")
    for p in v["problems"][:20]:
        print(f"  PROBLEM: {p}")
    if report["server"]["log_errors"]:
        print("server log errors: " + " | ".join(report["server"]["log_errors"][:5]))
    srv = report["server"]
    if "cores_busy" in srv:
        print(f"machine: {srv['cores_busy']} of {os.cpu_count()} cores busy on average; the benchmark's processes "
              f"{srv['benchmark_tree_cpu_s']} CPU-s, other work on the machine up to {srv['other_work_cpu_s']} CPU-s")
    print("timeline (10 s windows, p50/max s): " + "  ".join(
        f"{w['from_s']:.0f}:{w['p50_s']}/{w['max_s']}" for w in report["timeline"]))
    print("\nTargets:")
    for t in targets:
        print(f"  [{t['status']:>12}] {t['target']}" + (f": {t['seconds']} s" if "seconds" in t else "")
              + (f": {t['errors']} errors" if "errors" in t else ""))
    out = args.json or RESULTS_DIR / ("meeting-load-postgres.json" if is_postgres else "meeting-load.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nResults written to {out}")
    return 0 if all(t["status"] == "PASS" for t in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
