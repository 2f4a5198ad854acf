"""Settings read from the environment. One immutable object; nothing here is mutated at run time."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB_FILE = ROOT / "var" / "dadaily.sqlite3"


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def _list(name: str) -> tuple[str, ...]:
    """A comma-separated setting ("Nottinghamshire, Nottingham") as a tuple of trimmed values."""
    return tuple(v.strip() for v in (os.environ.get(name) or "").split(",") if v.strip())


@dataclass(frozen=True)
class Settings:
    database_url: str
    profiles_dir: Path
    # Hostile-file limits: a police extract of a busy month is a few MB; 50 MB is generous.
    max_upload_bytes: int
    # Sum of the declared uncompressed sizes of an xlsx's zip members, checked before any XML is parsed.
    max_uncompressed_bytes: int
    max_rows: int
    password_min_length: int = 12
    max_failed_logins: int = 5
    lockout_minutes: int = 15
    idle_timeout_minutes: int = 15
    session_lifetime_hours: int = 10
    prior_incident_days: int = 365
    # How long a closed notification is kept after its last activity (6 years); see dv.retention.
    retention_days: int = 2190
    # Actions: default due time after the meeting, in working hours (weekends and England bank holidays do not
    # count), by the confirmed risk; "not assessed" uses the standard figure.
    action_due_hours_high: int = 4
    action_due_hours_medium: int = 24
    action_due_hours_standard: int = 72
    case_target_minutes: int = 10  # the meeting's per-case timer target
    # Email (action digests, Encompass notices). No host: nothing is sent and the CLI says so.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    mail_from: str = "da-daily@localhost"
    app_url: str = "http://localhost:8501"  # put in emails so people know where to sign in
    # Operation Encompass. The hub's local authorities (GIAS "LA (name)"): a school name is resolved within them
    # first. Nursery settings (children under 4 at a setting) get alerts only when switched on.
    local_authorities: tuple[str, ...] = ()
    encompass_nursery: bool = False
    # Which fields an alert discloses (a subset of dv.encompass.ALERT_FIELDS); empty = all of them.
    encompass_fields: tuple[str, ...] = ()
    alert_escalation_minutes: int = 60  # not acknowledged this long after its deadline: escalated to coordinators
    term_dates_file: Path | None = None
    # Dashboard (issue 7): the notifications forecast per month (a line on the chart; None: no line), and the
    # small-number rule for exports that leave the hub (counts from 1 to this - 1 shown as "<5").
    forecast_per_month: int | None = None
    suppress_below: int = 5
    extra: dict = field(default_factory=dict)


def get_settings() -> Settings:
    """Build the settings from the environment each time: cheap, and tests can change the environment."""
    return Settings(
        database_url=os.environ.get("DATABASE_URL") or f"sqlite:///{DEFAULT_DB_FILE}",
        profiles_dir=Path(os.environ.get("DV_PROFILES_DIR") or ROOT / "data" / "profiles"),
        max_upload_bytes=_int("DV_MAX_UPLOAD_MB", 50) * 1024 * 1024,
        max_uncompressed_bytes=_int("DV_MAX_UNCOMPRESSED_MB", 400) * 1024 * 1024,
        max_rows=_int("DV_MAX_ROWS", 250_000),
        password_min_length=_int("DV_PASSWORD_MIN_LENGTH", 12),
        max_failed_logins=_int("DV_MAX_FAILED_LOGINS", 5),
        lockout_minutes=_int("DV_LOCKOUT_MINUTES", 15),
        idle_timeout_minutes=_int("DV_IDLE_TIMEOUT_MINUTES", 15),
        session_lifetime_hours=_int("DV_SESSION_LIFETIME_HOURS", 10),
        retention_days=_int("DV_RETENTION_DAYS", 2190),
        action_due_hours_high=_int("DV_ACTION_DUE_HOURS_HIGH", 4),
        action_due_hours_medium=_int("DV_ACTION_DUE_HOURS_MEDIUM", 24),
        action_due_hours_standard=_int("DV_ACTION_DUE_HOURS_STANDARD", 72),
        case_target_minutes=_int("DV_CASE_TARGET_MINUTES", 10),
        smtp_host=os.environ.get("DV_SMTP_HOST") or None,
        smtp_port=_int("DV_SMTP_PORT", 25),
        smtp_user=os.environ.get("DV_SMTP_USER") or None,
        smtp_password=os.environ.get("DV_SMTP_PASSWORD") or None,
        smtp_starttls=os.environ.get("DV_SMTP_STARTTLS", "").lower() in ("1", "true", "yes"),
        mail_from=os.environ.get("DV_MAIL_FROM") or "da-daily@localhost",
        app_url=os.environ.get("DV_APP_URL") or "http://localhost:8501",
        local_authorities=_list("DV_LOCAL_AUTHORITIES"),
        encompass_nursery=os.environ.get("DV_ENCOMPASS_NURSERY", "").lower() in ("1", "true", "yes"),
        encompass_fields=_list("DV_ENCOMPASS_FIELDS"),
        alert_escalation_minutes=_int("DV_ALERT_ESCALATION_MINUTES", 60),
        term_dates_file=Path(os.environ["TERM_DATES_FILE"]) if os.environ.get("TERM_DATES_FILE") else None,
        forecast_per_month=_int("DV_FORECAST_PER_MONTH", 0) or None,
        suppress_below=_int("DV_SUPPRESS_BELOW", 5),
    )
