"""A synthetic demo data set, loaded through the real importer so a newcomer sees a working product.
Nothing in it is real: names, places and events are generated (dv.synthetic)."""
from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from sqlalchemy import insert, select
from sqlmodel import Session

from core import audit
from core.models import User
from core.scope import require
from core.timeutil import london_now
from dv.importer import import_file
from dv.profiles import load_profile
from dv.models import KeyAdult, School
from dv.synthetic import COLLEGES, PRIMARY_SCHOOLS, SECONDARY_SCHOOLS, generate_notifications, write_extract

DEMO_LA = "Northshire"  # made up, like everything in the demo


def demo_schools(session: Session, actor: str) -> int:
    """The synthetic extract's schools as a tiny schools directory (URNs 990001...), each with a made-up key adult
    at example.org, so the demo's Encompass alerts reach a school; misspellings the resolver is not sure of wait in
    the coordinator's To resolve queue, as real ones would."""
    from dv.schools import normalise

    names = [spellings[0] for spellings in (*PRIMARY_SCHOOLS, *SECONDARY_SCHOOLS, *COLLEGES)
             if spellings[0] != "Not in education"]
    conn = session.connection()
    known = set(conn.execute(select(School.__table__.c.urn)).scalars())
    rows = [{"urn": str(990001 + i), "name": name, "name_key": normalise(name), "la_name": DEMO_LA,
             "type_name": "Demo school", "status": "Open", "is_open": True}
            for i, name in enumerate(names) if str(990001 + i) not in known]
    if not rows:
        return 0
    conn.execute(insert(School.__table__), rows)
    conn.execute(insert(KeyAdult.__table__), [
        {"school_urn": r["urn"], "name": "Demo Key Adult", "email": f"dsl.{r['urn']}@example.org",
         "review_date": (london_now() + dt.timedelta(days=365)).date(), "active": True, "version": 1} for r in rows])
    audit.record(session, None, "import", "school", None, username=actor, demo_schools=len(rows))
    return len(rows)


def load_demo(session: Session, user: User | None, *, days: int = 14, per_day: int = 20, actor: str | None = None,
              seed: int = 2026) -> dict:
    """Import ``days`` days of synthetic notifications ending now, in the demo force's layout. From the app only a
    coordinator may (``user`` None is the command line, run by whoever runs the server)."""
    if user is not None:
        require(session, user, "load_demo")
    schools = demo_schools(session, actor or "demo")
    profile = load_profile("niche_wide")
    start = (london_now() - dt.timedelta(days=days)).date()
    records = generate_notifications(days * per_day, seed=seed, start=start, days=days)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "demo_extract.xlsx"
        write_extract(records, profile, path)
        result = import_file(session, path, profile, user=user, actor=actor or "demo")
    return {"notifications": result.created + result.updated + result.unchanged, "batch_id": result.batch_id,
            "crime": result.crime, "non_crime": result.non_crime, "children": result.children,
            "schools": schools, "alerts": result.alerts.get("created", 0),
            "alerts_to_resolve": result.alerts.get("to_resolve", 0)}
