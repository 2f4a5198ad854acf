"""Shared test fixtures: both databases (SQLite and a real PostgreSQL server started by the test run), the
Streamlit app in a subprocess, and Playwright driving Debian's Chromium.

A missing PostgreSQL or Chromium skips the tests that need it, with the reason; under CI (``CI`` set, e.g.
``CI=true``) it fails them instead, so a broken CI image can never pass by skipping.
"""
from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM_EXECUTABLE", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
COORDINATOR_PASSWORD = "Tidal-Lantern-Orchard-47"

if str(ROOT) not in sys.path:  # `pytest` as well as `python -m pytest` from anywhere
    sys.path.insert(0, str(ROOT))


# ---------------------------------------------------------------------------------------------- helpers


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require(condition: bool, reason: str) -> None:
    """Skip (locally) or fail (under CI) when a test's prerequisite is missing."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"{reason} (CI is set: missing prerequisites fail instead of skipping)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dispose_engine(url: str) -> None:
    """``core.db.get_engine`` is lru_cached per URL: close its pooled connections (so a PostgreSQL database can be
    dropped and SQLite files are released)."""
    from core.db import get_engine

    get_engine(url).dispose()


# ---------------------------------------------------------------------------------------------- PostgreSQL


def find_pg_bindir() -> Path | None:
    candidates: list[str] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(os.environ["PG_BINDIR"])
    if shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0:
                candidates.append(out.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: [int(x) for x in re.findall(r"\d+", p)],
                         reverse=True)
    for c in candidates:
        bindir = Path(c)
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file() and (bindir / "postgres").is_file():
            return bindir
    return None


@dataclasses.dataclass
class PostgresServer:
    bindir: Path
    base: Path  # temp dir: data/, the socket and the log
    port: int
    host: str = "127.0.0.1"
    user: str = "postgres"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{dbname}"

    def _admin(self):
        import psycopg

        return psycopg.connect(host=self.host, port=self.port, user=self.user, dbname="postgres", autocommit=True)

    def create_database(self, name: str | None = None, template: str | None = None) -> str:
        name = name or f"t_{uuid.uuid4().hex[:16]}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return name

    def drop_database(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: drop to the postgres user the Debian package creates."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _run(cmd: list[str], what: str, timeout: float = 120) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")


@pytest.fixture(scope="session")
def pg_server():
    """A throwaway PostgreSQL server for the whole test run, on a free 127.0.0.1 port, trust auth, fsync off.
    Yields a ``PostgresServer`` (``url(dbname)``, ``create_database()``, ``drop_database(name)``)."""
    bindir = find_pg_bindir()
    require(bindir is not None, "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: "
                                "apt-get install postgresql, or set PG_BINDIR")
    if os.geteuid() == 0:
        require(shutil.which("runuser") is not None, "running as root needs runuser to start PostgreSQL")
        try:
            import pwd

            pg_user = pwd.getpwnam("postgres")
        except KeyError:
            pg_user = None
        require(pg_user is not None, "running as root: PostgreSQL needs the 'postgres' OS user to run as")
    base = Path(tempfile.mkdtemp(prefix="dadaily-pg-"))
    if os.geteuid() == 0:
        os.chown(base, pg_user.pw_uid, pg_user.pw_gid)
    data = base / "data"
    log = base / "postgres.log"
    server = None
    started = False
    try:
        _run(_as_postgres([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                           "--locale=C", "--no-sync", "--no-instructions"]), "initdb")
        for attempt in range(5):  # the free port may be taken between choosing it and the server binding it
            port = free_port()
            opts = (f"-F -c fsync=off -c full_page_writes=off -c synchronous_commit=off -p {port} "
                    f"-c listen_addresses=127.0.0.1 -k '{base}' -c max_connections=200")
            proc = subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w",
                                                "-t", "60", "-o", opts, "start"]),
                                  capture_output=True, text=True, timeout=90)
            if proc.returncode == 0:
                started = True
                server = PostgresServer(bindir=bindir, base=base, port=port)
                break
        if not started:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed:\n{proc.stdout}\n{proc.stderr}\n{tail}")
        yield server
    finally:
        if started or (data / "postmaster.pid").exists():  # also a server that came up after pg_ctl gave up
            subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w",
                                         "stop"]), capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- databases


@pytest.fixture(params=[pytest.param("sqlite", id="sqlite"),
                        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """A fresh database migrated to head (``core.db.migrate``): a SQLite file in tmp_path, or a new database on
    the test run's PostgreSQL server. Yields its SQLAlchemy URL."""
    from core.db import migrate

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'dadaily.sqlite3'}"
        try:
            migrate(url)
            yield url
        finally:
            dispose_engine(url)
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    template = request.getfixturevalue("pg_template")
    name = server.create_database(template=template)  # a copy of a database migrated once: milliseconds
    url = server.url(name)
    try:
        yield url
    finally:
        dispose_engine(url)
        server.drop_database(name)


@pytest.fixture(scope="session")
def pg_template(pg_server):
    """A database migrated to head once per run; each test's database is created from it as a template."""
    from core.db import migrate

    name = pg_server.create_database("t_template")
    url = pg_server.url(name)
    migrate(url)
    dispose_engine(url)
    return name


@pytest.fixture
def engine(db_url):
    """``core.db.get_engine(db_url)`` (disposed by ``db_url``'s teardown)."""
    from core.db import get_engine

    return get_engine(db_url)


@pytest.fixture
def session(engine):
    """A ``sqlmodel.Session`` on ``engine``; rolled back (anything uncommitted) and closed afterwards."""
    from sqlmodel import Session

    with Session(engine, expire_on_commit=False) as s:
        yield s


# ---------------------------------------------------------------------------------------------- Streamlit app


@dataclasses.dataclass
class StreamlitApp:
    url: str  # http://127.0.0.1:PORT (no trailing slash)
    database_url: str
    profiles_dir: Path
    username: str
    password: str
    display_name: str
    log_path: Path
    process: subprocess.Popen

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _no_proxy_opener():
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _stop_process_group(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


def start_streamlit_app(workdir: Path, timeout: float = 60.0) -> StreamlitApp:
    """Start ``streamlit run app.py`` on a free port with its own SQLite database (already holding one
    coordinator) and its own copy of the profiles; return once /_stcore/health answers 200."""
    from core.auth import create_user
    from core.db import get_engine, migrate, session_scope
    from core.models import UserRole

    workdir.mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite:///{workdir / 'app.sqlite3'}"
    profiles_dir = workdir / "profiles"
    shutil.copytree(ROOT / "data" / "profiles", profiles_dir)
    migrate(database_url)
    try:
        with session_scope(get_engine(database_url)) as s:
            create_user(s, None, username="coord", display_name="Casey Coordinator", role=UserRole.coordinator,
                        password=COORDINATOR_PASSWORD)
    finally:
        dispose_engine(database_url)

    port = free_port()
    env = dict(os.environ, DATABASE_URL=database_url, DV_PROFILES_DIR=str(profiles_dir), PYTHONUNBUFFERED="1")
    log_path = workdir / "streamlit.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1", "--server.port",
         str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    log.close()  # the child holds its own descriptor
    app = StreamlitApp(url=f"http://127.0.0.1:{port}", database_url=database_url, profiles_dir=profiles_dir,
                       username="coord", password=COORDINATOR_PASSWORD, display_name="Casey Coordinator",
                       log_path=log_path, process=proc)
    opener = _no_proxy_opener()
    deadline = time.monotonic() + timeout
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {proc.returncode} before it was healthy:\n{app.log_tail()}")
            try:
                with opener.open(f"{app.url}/_stcore/health", timeout=2) as resp:
                    if resp.status == 200:
                        return app
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not answer /_stcore/health within {timeout:.0f} s:\n{app.log_tail()}")
            time.sleep(0.2)
    except BaseException:
        _stop_process_group(proc)
        raise


@pytest.fixture(scope="module")
def streamlit_app(tmp_path_factory, request):
    """The app served by ``streamlit run app.py`` in a subprocess (its own process group) for one test module,
    on a fresh SQLite database holding one coordinator. Yields a ``StreamlitApp``: ``url``, ``database_url``,
    ``profiles_dir``, ``username``/``password``/``display_name`` of the coordinator, ``log_path``."""
    app = start_streamlit_app(tmp_path_factory.mktemp("streamlit"))
    failed_before = request.session.testsfailed
    try:
        yield app
    finally:
        _stop_process_group(app.process)
        if request.session.testsfailed > failed_before:  # keep the whole server log next to the screenshots
            with contextlib.suppress(OSError):
                ARTIFACTS.mkdir(exist_ok=True)
                shutil.copyfile(app.log_path, ARTIFACTS / f"streamlit-{request.module.__name__}.log")


# ---------------------------------------------------------------------------------------------- browser


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright's sync API (``playwright install`` is not needed)."""
    require(os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK),
            f"Chromium not found at {CHROMIUM}: apt-get install chromium (or set CHROMIUM_EXECUTABLE)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "the playwright package is not installed (pip install -r requirements-dev.txt)")
    from playwright.sync_api import expect

    expect.set_options(timeout=30_000)  # Streamlit renders asynchronously; a 2-core CI box can be slow
    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
    finally:
        pw.stop()


@pytest.fixture
def page(browser, request):
    """A page in a fresh browser context (no cookies, no Streamlit session shared with another test). On failure
    a full-page screenshot is saved to test-artifacts/."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-GB",
                                  timezone_id="Europe/London")
    context.set_default_timeout(30_000)
    pg = context.new_page()
    try:
        yield pg
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            with contextlib.suppress(Exception):
                ARTIFACTS.mkdir(exist_ok=True)
                name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-150:]
                pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item (``rep_setup``, ``rep_call``) for fixtures that act on failure, and
    show the end of the Streamlit server's log under a failed browser test (the page only says "an error")."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    app = getattr(item, "funcargs", {}).get("streamlit_app")
    if report.failed and report.when == "call" and isinstance(app, StreamlitApp):
        report.sections.append(("streamlit server log (tail)", app.log_tail()))
    return report


# ---------------------------------------------------------------------------------------------- OIDC sign-in

OIDC_COORDINATOR_EMAIL = "casey.coordinator@northshire.example.gov.uk"


@dataclasses.dataclass
class OIDCApp:
    app: StreamlitApp  # the app, started with an [auth] section pointing at the stub
    stub: object  # tests.oidc_stub.OIDCStub: set ``stub.identity`` before signing in
    coordinator_email: str  # the email of the app's coordinator ("coord")


@pytest.fixture(scope="module")
def oidc_app(tmp_path_factory, request):
    """The app with council (OIDC) sign-in configured, for one test module: a stub OIDC provider on 127.0.0.1
    (``tests/oidc_stub.py``) and ``streamlit run app.py`` (``start_streamlit_app``) whose secrets come only from a
    generated ``secrets.toml`` in the temp dir (``STREAMLIT_SECRETS_FILES``, i.e. the ``secrets.files`` option), so
    the repository's own ``.streamlit/secrets.toml`` is neither read nor written. The coordinator ``coord`` has
    the email ``OIDC_COORDINATOR_EMAIL``. Yields an ``OIDCApp``."""
    import secrets as pysecrets

    from sqlalchemy import update

    from core.db import get_engine, session_scope
    from core.models import User
    from tests.oidc_stub import OIDCStub

    stub = OIDCStub(client_id="dadaily-test").start()
    app = None
    try:
        workdir = tmp_path_factory.mktemp("streamlit-oidc")
        secrets_file = workdir / "secrets.toml"
        secrets_file.write_text(
            "[auth]\n"
            'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'  # Streamlit fills in server.port
            f'cookie_secret = "{pysecrets.token_hex(32)}"\n'
            f'client_id = "{stub.client_id}"\n'
            f'client_secret = "{stub.client_secret}"\n'
            f'server_metadata_url = "{stub.metadata_url}"\n', encoding="utf-8")
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("STREAMLIT_SECRETS_FILES", str(secrets_file))
            # Authlib (httpx2) in the Streamlit server calls the stub on loopback: never through a proxy.
            for var in ("NO_PROXY", "no_proxy"):
                mp.setenv(var, ",".join(filter(None, [os.environ.get(var), "127.0.0.1", "localhost"])))
            app = start_streamlit_app(workdir)
        stub.redirect_uris.add(f"{app.url}/oauth2callback")
        try:
            with session_scope(get_engine(app.database_url)) as s:
                s.execute(update(User).where(User.username == app.username).values(email=OIDC_COORDINATOR_EMAIL))
        finally:
            dispose_engine(app.database_url)
        failed_before = request.session.testsfailed
        yield OIDCApp(app=app, stub=stub, coordinator_email=OIDC_COORDINATOR_EMAIL)
        if request.session.testsfailed > failed_before:
            with contextlib.suppress(OSError):
                ARTIFACTS.mkdir(exist_ok=True)
                shutil.copyfile(app.log_path, ARTIFACTS / f"streamlit-{request.module.__name__}.log")
                (ARTIFACTS / f"oidc-stub-{request.module.__name__}.log").write_text("\n".join(stub.requests))
    finally:
        if app is not None:
            _stop_process_group(app.process)
        stub.stop()


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashing():
    """Argon2 at production cost makes hundreds of test accounts slow; tests use the same algorithm at minimum cost.
    (Only in this process: the browser tests' Streamlit servers hash at full cost.)"""
    import argon2

    import core.auth

    saved = core.auth._hasher, core.auth._DUMMY_HASH
    core.auth._hasher = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    core.auth._DUMMY_HASH = core.auth._hasher.hash("dummy")
    yield
    core.auth._hasher, core.auth._DUMMY_HASH = saved


# --------------------------------------------------------------------------------------------------------------
# Audit guard: every committed transaction in the test process that changes a guarded table must also have
# written an audit row. Test set-up that pokes the database directly says so with ``unaudited()`` or the
# ``unaudited`` marker.

AUDITED_TABLES = frozenset({"notification", "notification_person", "person", "field_change", "action",
                            "encompass_alert", "user", "agency", "import_batch", "row_error", "action_change",
                            "meeting", "agenda_item", "case_record", "case_decision", "agency_share",
                            "meeting_attendee", "meeting_amendment", "school", "key_adult", "school_alias"})
_DML = re.compile(r'^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)"?', re.IGNORECASE)
from tests.factories import _unaudited_depth  # noqa: E402  (shared with tests.factories.unaudited)


@pytest.fixture(autouse=True)
def audit_guard(request):
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    violations: list[str] = []
    exempt_test = request.node.get_closest_marker("unaudited") is not None

    def after_execute(conn, cursor, statement, parameters, context, executemany):
        match = _DML.match(statement)
        if not match:
            return
        table = match.group(1).lower()
        if table == "audit_event":
            conn.info["audited"] = True
        elif table == "alembic_version":
            conn.info["migration"] = True
        elif table in AUDITED_TABLES and not _unaudited_depth.get():
            conn.info.setdefault("changed", set()).add(table)

    def on_commit(conn):
        changed = conn.info.pop("changed", None)
        audited = conn.info.pop("audited", False)
        migration = conn.info.pop("migration", False)
        if changed and not audited and not migration and not exempt_test:
            violations.append(f"a transaction changed {sorted(changed)} without an audit row")

    def on_rollback(conn):
        for key in ("changed", "audited", "migration"):
            conn.info.pop(key, None)

    event.listen(Engine, "after_cursor_execute", after_execute)
    event.listen(Engine, "commit", on_commit)
    event.listen(Engine, "rollback", on_rollback)
    try:
        yield
    finally:
        event.remove(Engine, "after_cursor_execute", after_execute)
        event.remove(Engine, "commit", on_commit)
        event.remove(Engine, "rollback", on_rollback)
    assert not violations, violations
