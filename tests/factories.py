"""Builders for synthetic test files (never real data)."""
from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import io
import zipfile
from pathlib import Path

from sqlalchemy import func, select

from dv.profiles import load_profile
from dv.synthetic import generate_notifications, rows_for, write_rows

NOW = dt.datetime(2026, 11, 22, 6, 30)  # the 06:30 import, Europe/London wall-clock
START = dt.date(2026, 10, 1)


def records(n: int = 20, seed: int = 1, **kw) -> list[dict]:
    kw.setdefault("start", START)
    kw.setdefault("days", 30)
    return generate_notifications(n, seed=seed, **kw)


def extract(tmp_path: Path, profile_stem: str, recs: list[dict], *, name: str | None = None, fmt: str | None = None,
            mutate=None, **kw) -> Path:
    """Write ``recs`` in the profile's layout; ``mutate(header, rows)`` may edit the rows first."""
    profile = load_profile(profile_stem)
    header, rows = rows_for(recs, profile)
    if mutate:
        mutate(header, rows)
    fmt = fmt or ("csv" if profile.encoding else "xlsx")
    path = tmp_path / (name or f"{profile_stem}.{fmt}")
    kw.setdefault("encoding", profile.encoding or "utf-8-sig")
    kw.setdefault("sheet", profile.sheet or "Sheet1")
    kw.setdefault("date_format", profile.date_formats[0] if "%H" in profile.date_formats[0] else "%d/%m/%Y %H:%M")
    return write_rows(header, rows, path, fmt=fmt, **kw)


def col(header: list[str], name: str) -> int:
    return header.index(name)


def count(session, model) -> int:
    return session.execute(select(func.count()).select_from(model)).scalar_one()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


_unaudited_depth = contextvars.ContextVar("unaudited_depth", default=0)


@contextlib.contextmanager
def unaudited():
    """Test set-up that writes to audited tables directly (the audit guard in conftest ignores it)."""
    token = _unaudited_depth.set(_unaudited_depth.get() + 1)
    try:
        yield
    finally:
        _unaudited_depth.reset(token)


def drop_raised_alerts(session) -> None:
    """Delete the Operation Encompass alerts an import raised by itself, for tests that set up exactly the alerts
    they reason about (retention, the access matrix)."""
    from sqlalchemy import delete

    from dv.models import EncompassAlert

    with unaudited():
        session.execute(delete(EncompassAlert))
        session.commit()
