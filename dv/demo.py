"""A synthetic demo data set, loaded through the real importer so a newcomer sees a working product.
Nothing in it is real: names, places and events are generated (dv.synthetic)."""
from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from sqlmodel import Session

from core.models import User
from core.scope import require
from core.timeutil import london_now
from dv.importer import import_file
from dv.profiles import load_profile
from dv.synthetic import generate_notifications, write_extract


def load_demo(session: Session, user: User | None, *, days: int = 14, per_day: int = 20, actor: str | None = None,
              seed: int = 2026) -> dict:
    """Import ``days`` days of synthetic notifications ending now, in the demo force's layout. From the app only a
    coordinator may (``user`` None is the command line, run by whoever runs the server)."""
    if user is not None:
        require(session, user, "load_demo")
    profile = load_profile("niche_wide")
    start = (london_now() - dt.timedelta(days=days)).date()
    records = generate_notifications(days * per_day, seed=seed, start=start, days=days)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "demo_extract.xlsx"
        write_extract(records, profile, path)
        result = import_file(session, path, profile, user=user, actor=actor or "demo")
    return {"notifications": result.created + result.updated + result.unchanged, "batch_id": result.batch_id,
            "crime": result.crime, "non_crime": result.non_crime, "children": result.children}
