"""``python -m dv ...``: the commands scheduled jobs and operators use. ``--json`` prints one JSON document.

Exit codes: 0 done; 2 nothing could be done (the reason on stderr); 1 an unexpected error.
``actions digest --send``: 0 every digest was sent; 3 some could not be (no recipients, or the mail server
refused: each agency's ``error`` says which); 2 no SMTP host is set.
"""
from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

from core.db import get_engine, migrate, session_scope
from core.settings import get_settings


def _print(args, payload, text: str) -> None:
    print(json.dumps(payload, indent=2, default=str) if getattr(args, "json", False) else text)


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 2


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in some containers
        return "cli"


def cmd_db(args) -> int:
    migrate()
    _print(args, {"database": get_settings().database_url.split("@")[-1], "schema": "head"}, "Database is up to date.")
    return 0


def cmd_import(args) -> int:
    from dv.importer import INTERRUPTIONS, import_file, interruption_message
    from dv.profiles import ProfileError, load_profile
    from dv.reading import FileRejected

    try:
        profile = load_profile(args.profile)
    except ProfileError as exc:
        return _fail(str(exc))
    migrate()
    try:
        with session_scope() as session:
            result = import_file(session, Path(args.file), profile, dry_run=args.dry_run, actor=_actor())
    except FileRejected as exc:
        return _fail(f"Nothing imported from {args.file}: {exc}")
    except INTERRUPTIONS as exc:
        # the scheduled job's operator gets the driver's own first line (never the SQL or its values, which may
        # hold names) to tell a busy database from a full disk
        orig = getattr(exc, "orig", None)
        detail = f" ({str(orig).splitlines()[0]})" if orig is not None and str(orig) else ""
        return _fail(f"{args.file}: {interruption_message(exc)}{detail}")
    payload = result.to_json()
    text = (f"{'Dry run: nothing written. ' if args.dry_run else ''}{result.file}: {result.rows_read} rows read; "
            f"{result.created} created, {result.updated} updated, {result.unchanged} unchanged, "
            f"{result.duplicates_in_file} duplicates, {result.rejected} rejected. "
            f"Crime {result.crime}, non-crime {result.non_crime}, children {result.children}.")
    for e in result.errors:
        text += f"\n  row {e.row}, {e.column}: {e.message}"
    _print(args, payload, text)
    return 0


def cmd_user_add(args) -> int:
    from core.auth import PasswordRejected, count_users, create_user
    from core.models import UserRole

    migrate()
    password = os.environ.get("DV_PASSWORD")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        if not sys.stdin.isatty():
            return _fail("Give the password with --password-stdin or DV_PASSWORD (no terminal to ask on).")
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            return _fail("The passwords differ.")
    try:
        with session_scope() as session:
            agency_id = None
            if args.agency:
                from core.accounts import agency_by_name

                agency = agency_by_name(session, args.agency)
                if agency is None:
                    return _fail(f"No agency called {args.agency}.")
                agency_id = agency.id
            if count_users(session) == 0 and args.role != "coordinator":
                return _fail("The first account must be a coordinator.")
            user = create_user(session, None, username=args.username, display_name=args.name or args.username,
                               role=UserRole(args.role), password=password, email=args.email, agency_id=agency_id,
                               school_urn=args.school_urn, must_change_password=args.temporary)
            payload = {"id": user.id, "username": user.username, "role": user.role.value}
    except (ValueError, PasswordRejected) as exc:
        return _fail(str(exc))
    _print(args, payload, f"Created {payload['role']} {payload['username']}.")
    return 0


def cmd_demo(args) -> int:
    from dv.demo import load_demo

    migrate()
    with session_scope() as session:
        summary = load_demo(session, None, days=args.days, actor=_actor())
    _print(args, summary, f"Demo data loaded: {summary['notifications']} notifications over {args.days} days; "
                          f"{summary['alerts']} Operation Encompass alerts ({summary['alerts_to_resolve']} to resolve) "
                          f"for {summary['schools']} demo schools.")
    return 0


def cmd_samples(args) -> int:
    from dv.synthetic import write_samples

    paths = write_samples(Path(args.directory))
    _print(args, [str(p) for p in paths], "\n".join(str(p) for p in paths))
    return 0


def cmd_profiles(args) -> int:
    from dv.profiles import list_profiles

    profiles = list_profiles()
    payload = [{"file": p.path.stem if p.path else None, "name": p.name, "force": p.force,
                "children": p.children.layout if p.children else None} for p in profiles]
    _print(args, payload, "\n".join(f"{d['file']}: {d['name']} ({d['force']})" for d in payload))
    return 0


def cmd_retention(args) -> int:
    from dv.retention import apply_retention, plan_retention

    days = get_settings().retention_days if args.days is None else args.days
    if days < 1:
        return _fail(f"The retention period must be at least 1 day (got {days}).")
    migrate()
    with session_scope() as session:
        plan = plan_retention(session, retention_days=days)
        payload = plan.to_json() if args.dry_run else apply_retention(session, plan, actor=_actor())
    payload = {k: payload[k] for k in ("dry_run", "retention_days", "cutoff", "notifications", "held", "persons",
                                       "batches", "ids_sample")}
    verb = "Dry run: would delete" if args.dry_run else "Deleted"
    text = (f"{verb} {payload['notifications']} closed notifications with no activity since {payload['cutoff']} UTC "
            f"({days} days), {payload['persons']} people left with no notification and {payload['batches']} "
            f"import batches; {payload['held']} kept on legal hold.")
    _print(args, payload, text)
    return 0


def cmd_agenda(args) -> int:
    import datetime as dt

    from meetings.agenda import (RulesError, agenda_text, build_agenda, cli_payload, job_agenda_view, load_rules,
                                 publish_agenda)

    try:
        day = dt.date.fromisoformat(args.date)
    except ValueError:
        return _fail(f"--date must be a date written YYYY-MM-DD (got {args.date!r}).")
    try:
        rules = load_rules()
    except RulesError as exc:
        return _fail(str(exc))
    migrate()
    actor = _actor()
    try:
        with session_scope() as session:
            meeting_id = build_agenda(session, None, day, rules=rules, actor=actor)
            view = job_agenda_view(session, day, actor=actor, rules=rules)
            if args.publish and view["status"] == "draft":
                publish_agenda(session, None, meeting_id, view["version"], actor=actor)
                view = job_agenda_view(session, day, actor=actor, rules=rules)
    except ValueError as exc:  # not a meeting day, a closed meeting
        return _fail(str(exc))
    _print(args, cli_payload(view), agenda_text(view).rstrip("\n"))
    return 0


def _now(value: str | None):
    """``--now``: an ISO date-time, Europe/London wall-clock (an offset is converted); None: now."""
    import datetime as dt

    from core.timeutil import LONDON

    if value is None:
        return None
    when = dt.datetime.fromisoformat(value)
    if when.tzinfo is not None:
        when = when.astimezone(LONDON).replace(tzinfo=None)
    return when


def cmd_actions_list(args) -> int:
    from meetings.digest import UnknownAgency, job_list_actions

    try:
        now = _now(args.now)
    except ValueError:
        return _fail(f"--now must be an ISO date-time such as 2026-11-23T09:00 (got {args.now!r}).")
    migrate()
    try:
        with session_scope() as session:
            rows = job_list_actions(session, args.agency, args.status, args.overdue, now, actor=_actor())
    except UnknownAgency as exc:
        return _fail(str(exc))
    lines = [f"#{r['id']} {r['police_ref']} | {r['agency']} | due "
             f"{r['due_at'].replace('T', ' ') if r['due_at'] else '-'} | {r['status'].replace('_', ' ')}"
             f"{' | OVERDUE' if r['overdue'] else ''} | {' '.join((r['description'] or '').split())}"
             f"{' | owner ' + r['owner'] if r['owner'] else ''}" for r in rows]
    _print(args, rows, "\n".join(lines) if lines else "No actions.")
    return 0


def cmd_actions_digest(args) -> int:
    from core.mail import MailNotConfigured
    from meetings.digest import send_digests

    try:
        now = _now(args.now)
    except ValueError:
        return _fail(f"--now must be an ISO date-time such as 2026-11-23T07:00 (got {args.now!r}).")
    settings = get_settings()
    if args.send and not settings.smtp_host:
        return _fail("No SMTP host is set: set DV_SMTP_HOST (and DV_SMTP_PORT, DV_SMTP_USER, DV_SMTP_PASSWORD, "
                     "DV_SMTP_STARTTLS, DV_MAIL_FROM as needed) to send the digest. Without --send nothing is sent.")
    migrate()
    try:
        with session_scope() as session:
            results = send_digests(session, now, send=args.send, settings=settings, actor=_actor())
    except MailNotConfigured as exc:
        return _fail(str(exc))
    if args.json:
        _print(args, results, "")
    else:
        parts = []
        for r in results:
            state = ("sent" if r["sent"] else "NOT SENT") if args.send else "dry run, not sent"
            head = (f"== {r['agency']}: {r['overdue']} overdue, {r['due_today']} due today; to "
                    f"{', '.join(r['recipients']) or 'nobody'} ({state})")
            if r["error"]:
                head += f"\n   {r['error']}"
            parts.append(head if args.send else f"{head}\nSubject: {r['subject']}\n\n{r['body']}")
        print("\n".join(parts) if parts else "No agency has actions overdue or due today.")
    return 3 if args.send and any(not r["sent"] or r["error"] for r in results) else 0


def cmd_schools_import(args) -> int:
    from dv.reading import FileRejected
    from dv.schools import import_gias

    migrate()
    try:
        with session_scope() as session:
            result = import_gias(session, None, Path(args.file), las=args.la or None, actor=_actor())
    except FileRejected as exc:
        return _fail(f"Nothing imported from {args.file}: {exc}")
    text = (f"{result['file']} ({result['encoding']}): {result['rows_read']} rows read; {result['kept']} kept "
            f"({result['closed_kept']} closed, kept only to explain a name), {result['created']} new, "
            f"{result['updated']} updated, {result['unchanged']} unchanged; {result['skipped_other_la']} in other "
            f"local authorities; {len(result['errors'])} problems.")
    for e in result["errors"]:
        text += f"\n  row {e['row']}, {e['column'] or '-'}: {e['message']}"
    _print(args, result, text)
    return 0


def cmd_schools_resolve(args) -> int:
    from dv.schools import SchoolResolver

    migrate()
    with session_scope() as session:
        resolution = SchoolResolver(session, preferred_las=args.la or None).resolve(args.name)
    payload = resolution.to_json()
    if resolution.urn:
        text = f"{resolution.urn} {resolution.name or ''} ({'certain' if resolution.certain else 'not certain'})"
    else:
        text = "To resolve"
    text += f": {resolution.reason}"
    for c in resolution.candidates:
        text += f"\n  {c['urn']} {c['name']} | {c['la']} | {c['status']} | {c['why']}"
    _print(args, payload, text)
    return 0


def cmd_schools_sample(args) -> int:
    from dv.gias import write_gias_csv

    if args.rows < 1:
        return _fail("--rows must be at least 1.")
    path = write_gias_csv(Path(args.file), rows=args.rows, seed=args.seed)
    _print(args, {"file": str(path), "rows": args.rows}, f"Wrote {args.rows} synthetic establishments to {path}.")
    return 0


def cmd_encompass_list(args) -> int:
    import datetime as dt

    from dv.encompass import job_list

    try:
        start = dt.date.fromisoformat(args.date_from) if args.date_from else None
        end = dt.date.fromisoformat(args.date_to) if args.date_to else None
    except ValueError:
        return _fail("--from and --to are dates: YYYY-MM-DD.")
    migrate()
    with session_scope() as session:
        rows = job_list(session, start=start, end=end, actor=_actor())
    lines = [f"{r['police_ref']} | {r['child'] or '-'} ({r['child_dob'] or 'dob not known'}) | "
             f"{r['school_urn'] or 'TO RESOLVE'} {r['school_name'] or ''} | due {r['due_at'] or '-'} | {r['status']}"
             for r in rows]
    _print(args, rows, "\n".join(lines) if lines else "No alerts.")
    return 0


def cmd_encompass_send(args) -> int:
    from dv.encompass import escalate, send_notices

    settings = get_settings()
    if not settings.smtp_host:
        return _fail("No SMTP host is set: set DV_SMTP_HOST (and DV_SMTP_PORT, DV_SMTP_USER, DV_SMTP_PASSWORD, "
                     "DV_SMTP_STARTTLS, DV_MAIL_FROM as needed). The school portal shows alerts without email.")
    migrate()
    with session_scope() as session:
        notices = send_notices(session, actor=_actor(), settings=settings)
        escalated = escalate(session, actor=_actor(), settings=settings)
    payload = {"notices": notices, "escalation": escalated}
    lines = [f"{n['school_urn']}: {n['alerts']} alert(s) -> {', '.join(n['recipients']) or 'nobody'} "
             f"({'sent' if n['sent'] else 'NOT SENT: ' + (n['error'] or '')})" for n in notices]
    lines.append(f"Escalated to coordinators: {escalated['escalated']}"
                 + (f" ({escalated['error']})" if escalated["error"] else ""))
    _print(args, payload, "\n".join(lines))
    return 3 if any(not n["sent"] for n in notices) else 0


def _encompass_parser(sub) -> None:
    enc = sub.add_parser("encompass", help="Operation Encompass alerts: list them, send the notices").add_subparsers(
        dest="encompass_command", required=True)
    p = enc.add_parser("list", help="alerts by incident date: child, setting, deadline, status")
    p.set_defaults(func=cmd_encompass_list)
    p.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD", help="incidents on or after this date")
    p.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD", help="incidents on or before this date")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = enc.add_parser("send", help="email each setting with waiting alerts (no names), mark them notified, and "
                                    "escalate alerts not acknowledged after their deadline")
    p.set_defaults(func=cmd_encompass_send)
    p.add_argument("--json", action="store_true", help="print JSON")


def _schools_parser(sub) -> None:
    schools = sub.add_parser("schools", help="the schools directory (GIAS) and school name resolution").add_subparsers(
        dest="schools_command", required=True)
    p = schools.add_parser("import", help="import the GIAS establishments CSV (edubasealldata*.csv)")
    p.set_defaults(func=cmd_schools_import)
    p.add_argument("file")
    p.add_argument("--la", action="append", metavar="NAME",
                   help='a local authority to keep, as GIAS names it (repeatable; default DV_LOCAL_AUTHORITIES, '
                        'none set = all)')
    p.add_argument("--json", action="store_true", help="print JSON")
    p = schools.add_parser("resolve", help="resolve a typed school name to a URN, and say why")
    p.set_defaults(func=cmd_schools_resolve)
    p.add_argument("name")
    p.add_argument("--la", action="append", metavar="NAME",
                   help="a preferred local authority (repeatable; default DV_LOCAL_AUTHORITIES)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = schools.add_parser("sample", help="write a synthetic GIAS-like CSV (never real data)")
    p.set_defaults(func=cmd_schools_sample)
    p.add_argument("file")
    p.add_argument("--rows", type=int, default=50_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print JSON")


def cmd_report(args) -> int:
    """The dashboard's figures as a committee-ready workbook (meetings.dashboard)."""
    import datetime as dt

    from meetings.dashboard import dashboard, export_dashboard

    try:
        start, end = dt.date.fromisoformat(args.date_from), dt.date.fromisoformat(args.date_to)
    except ValueError:
        return _fail("--from and --to must be dates written YYYY-MM-DD.")
    if end < start:
        return _fail("--to is before --from.")
    migrate()
    actor = _actor()
    with session_scope() as session:
        figures = dashboard(session, None, start, end, args.bucket, args.district, force=args.force, actor=actor)
        data = export_dashboard(session, None, figures, suppress=args.suppress, actor=actor)
        Path(args.xlsx).write_bytes(data)
    t = figures["actions"]["total"]
    payload = {"xlsx": str(args.xlsx), "from": start.isoformat(), "to": end.isoformat(), "bucket": args.bucket,
               "suppressed": args.suppress, "notifications": figures["notifications"]["total"],
               "crime": figures["notifications"]["crime"], "daily_average": figures["notifications"]["daily_average"],
               "meetings": figures["meetings"]["meetings"], "cases": figures["meetings"]["cases"],
               "actions_agreed": t["agreed"], "actions_overdue": t["overdue"],
               "encompass_alerts": figures["encompass"]["alerts"]}
    _print(args, payload, f"Wrote {args.xlsx}: {start:%d/%m/%Y} to {end:%d/%m/%Y}, "
                          f"{payload['notifications']} notifications, {payload['meetings']} meetings, "
                          f"{payload['actions_agreed']} actions agreed, {payload['encompass_alerts']} Encompass alerts"
                          f"{' (small numbers suppressed)' if args.suppress else ''}.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dv", description="DA Daily jobs. DATABASE_URL selects the database.")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func, help_: str):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=func)
        return p

    p = add("db", cmd_db, "bring the database schema up to date (Alembic upgrade head)")
    p.add_argument("action", choices=["upgrade"])
    p = add("import", cmd_import, "import a police extract")
    p.add_argument("file")
    p.add_argument("--profile", required=True, help="profile file stem, [profile] name, or path to a .toml")
    p.add_argument("--dry-run", action="store_true", help="check and count, write nothing")
    user = sub.add_parser("user", help="accounts").add_subparsers(dest="user_command", required=True)
    p = user.add_parser("add", help="create an account (the first must be a coordinator)")
    p.set_defaults(func=cmd_user_add)
    p.add_argument("--json", action="store_true")
    p.add_argument("--username", required=True)
    p.add_argument("--name")
    p.add_argument("--email")
    p.add_argument("--role", default="coordinator", choices=["coordinator", "agency", "school", "admin", "manager"])
    p.add_argument("--agency")
    p.add_argument("--school-urn")
    p.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    p.add_argument("--temporary", action="store_true", help="the user must change the password at first sign-in")
    p = add("demo", cmd_demo, "load a synthetic demo data set (never real data)")
    p.add_argument("--days", type=int, default=14)
    p = add("samples", cmd_samples, "write synthetic sample extracts, one per shipped profile")
    p.add_argument("directory", nargs="?", default="data/samples")
    add("profiles", cmd_profiles, "list the import profiles")
    p = add("agenda", cmd_agenda, "build (or refresh) the agenda of a meeting day and print it")
    p.add_argument("--date", required=True, help="the meeting day, YYYY-MM-DD")
    p.add_argument("--publish", action="store_true", help="publish the agenda (later imports add late additions)")
    p = add("retention", cmd_retention, "delete closed notifications past the retention period (DV_RETENTION_DAYS)")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")
    mode.add_argument("--apply", action="store_true", help="delete, and write one audit row")
    p.add_argument("--days", type=int, help="retention period in days (default: DV_RETENTION_DAYS, 2190)")
    from meetings.models import ActionStatus

    actions = sub.add_parser("actions", help="agency actions: list them, send the daily digest").add_subparsers(
        dest="actions_command", required=True)
    p = actions.add_parser("list", help="list actions: overdue first, then due today, the other open ones, closed")
    p.set_defaults(func=cmd_actions_list)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--agency", help="one agency, by name (case-insensitive)")
    p.add_argument("--status", action="extend", nargs="+", choices=[s.value for s in ActionStatus],
                   help="only these statuses (repeatable)")
    p.add_argument("--overdue", action="store_true", help="only open actions past their due time")
    p.add_argument("--now", help="as at this ISO date-time, Europe/London wall-clock (default: now)")
    p = actions.add_parser("digest", help="each agency's actions overdue or due today: print (dry run) or --send")
    p.set_defaults(func=cmd_actions_digest)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--send", action="store_true", help="email each agency its digest (DV_SMTP_HOST) and audit it")
    p.add_argument("--now", help="as at this ISO date-time, Europe/London wall-clock (default: now)")
    p = add("report", cmd_report, "write the dashboard's figures as a committee-ready workbook (xlsx)")
    p.add_argument("--from", dest="date_from", required=True, help="first day, YYYY-MM-DD")
    p.add_argument("--to", dest="date_to", required=True, help="last day (included), YYYY-MM-DD")
    p.add_argument("--xlsx", required=True, help="the workbook to write")
    p.add_argument("--bucket", choices=["month", "week"], default="month")
    p.add_argument("--suppress", action="store_true", help="counts under DV_SUPPRESS_BELOW (5) shown as <5: for "
                   "figures that leave the hub")
    p.add_argument("--force", help="only this force's notifications")
    p.add_argument("--district", help="only this postcode district (outward code, e.g. NG5)")
    _schools_parser(sub)
    _encompass_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    get_engine()  # fail early on a bad DATABASE_URL
    return args.func(args)
