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
    )
