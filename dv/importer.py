"""Importing a police extract: read, find the header, validate every row, split into streams, link people and
write it all in one transaction (or, with ``dry_run``, write nothing and say what would happen).

The flow is deliberately in stages so that nothing touches the database until every row has been judged:

1. ``read_rows`` (dv.reading) – the file's cells, or FileRejected.
2. ``locate_header`` – the header row and which column holds each mapped field; missing required columns reject
   the file.
3. ``_group_rows`` – blank and "Total records" rows dropped silently, exact repeats counted as duplicates, one
   police reference with two different contents rejected (both rows named).
4. ``_parse_group`` – each notification's values parsed; a bad value rejects its row(s) with row, column, message.
5. ``_apply`` – compare with what is stored, link people, and write creates, updates (with field-level history),
   row errors, the batch and the audit row with Core bulk statements in the caller's transaction.
"""
from __future__ import annotations

import datetime as dt
import gc
import hashlib
import json
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from sqlalchemy import bindparam, delete, insert, select, update
from sqlmodel import Session

from core import audit
from core.db import bulk_insert, reserve_ids
from core.models import User
from core.scope import require
from core.timeutil import london_now, utcnow
from dv.models import FieldChange, ImportBatch, Notification, NotificationPerson, PersonRole, RowError, Stream
from dv.parsing import (parse_date, parse_datetime, parse_time, parse_yes_no, split_name, text)
from dv.people import PersonResolver, describe_people
from dv.profiles import Profile, norm_header
from dv.reading import FileRejected, read_rows
from dv.streams import decide_stream

Progress = Callable[[float, str], None]

# Notification fields compared and written on re-import, in display order.
NOTIFICATION_FIELDS = (
    "crime_ref", "classification", "offence", "ho_code", "incident_at", "reported_at", "location", "postcode",
    "risk", "dash_score", "flag_pregnancy", "flag_strangulation", "flag_weapons", "flags_other", "officer",
    "circumstances", "relationship",
)
DERIVED_FIELDS = ("stream", "stream_reason")
PERSON_GROUPS = {"victim": PersonRole.victim, "perpetrator": PersonRole.perpetrator, "children": PersonRole.child}
CHUNK = 500  # bound parameters per IN (...) query, well inside SQLite's limit
N_TABLE = Notification.__table__


@dataclass
class RowIssue:
    row: int | None
    column: str | None
    message: str
    police_ref: str | None = None
    severity: str = "error"

    def to_json(self) -> dict:
        return {"row": self.row, "column": self.column, "message": self.message}


@dataclass
class ImportResult:
    file: str
    profile: str
    batch_id: int | None = None
    dry_run: bool = False
    encoding: str | None = None
    rows_read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates_in_file: int = 0
    rejected: int = 0
    crime: int = 0
    non_crime: int = 0
    children: int = 0
    errors: list[RowIssue] = field(default_factory=list)
    warnings: list[RowIssue] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "batch_id": self.batch_id, "file": self.file, "profile": self.profile, "dry_run": self.dry_run,
            "rows_read": self.rows_read, "created": self.created, "updated": self.updated,
            "unchanged": self.unchanged, "duplicates_in_file": self.duplicates_in_file, "rejected": self.rejected,
            "crime": self.crime, "non_crime": self.non_crime, "children": self.children,
            "errors": [e.to_json() for e in self.errors], "warnings": [w.to_json() for w in self.warnings],
        }


@dataclass
class Layout:
    """Where each mapped field sits in this file."""

    header_index: int  # 0-based index of the header row
    fields: dict[str, int]  # DA Daily field -> column index
    headers: dict[str, str]  # DA Daily field -> header text as the profile names it
    children: dict[str, list[int]]  # child part -> column indexes (wide: one per child; list/rows: one)
    missing_optional: list[str]
    # per child slot: [(part, column index, header)] – computed once, used for every row
    child_slots: list[list[tuple[str, int, str]]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- header


def locate_header(rows: list[list], profile: Profile) -> Layout:
    ref_header = norm_header(profile.columns["police_ref"])
    if profile.header_row:
        idx = profile.header_row - 1
        if idx >= len(rows):
            raise FileRejected(f"The profile says the header is on row {profile.header_row}, but the file has {len(rows)} rows.")
    else:
        idx = next((i for i, r in enumerate(rows[:200]) if ref_header in {norm_header(c) for c in r}), None)
        if idx is None:
            raise FileRejected(
                f"No header row found: no row in the first 200 holds the police reference column "
                f"'{profile.columns['police_ref']}'. Is this the right profile ({profile.name})?"
            )
    positions: dict[str, int] = {}
    for i, cell in enumerate(rows[idx]):
        positions.setdefault(norm_header(cell), i)
    fields, missing_required, missing_optional = {}, [], []
    required = profile.required_headers()
    for fld, header in profile.columns.items():
        pos = positions.get(norm_header(header))
        if pos is None:
            (missing_required if fld in required else missing_optional).append(f"'{header}' ({fld})")
        else:
            fields[fld] = pos
    if missing_required:
        raise FileRejected(
            f"Required column(s) missing from the header on row {idx + 1}: {', '.join(missing_required)}. "
            f"Profile: {profile.name}."
        )
    children: dict[str, list[int]] = {}
    if profile.children:
        for part, headers in profile.children.headers().items():
            found = [positions[norm_header(h)] for h in headers if norm_header(h) in positions]
            if found:
                children[part] = found
            else:
                missing_optional.append(f"'{headers[0]}' (children {part})")
    slots: list[list[tuple[str, int, str]]] = []
    if profile.children and children:
        headers = profile.children.headers()
        count = profile.children.max if profile.children.layout == "wide" else 1
        for n in range(count):
            slot = [(part, cols[n], headers[part][n]) for part, cols in children.items() if n < len(cols)]
            if slot:
                slots.append(slot)
    return Layout(idx, fields, dict(profile.columns), children, missing_optional, slots)


# ---------------------------------------------------------------------------------------------- grouping


def _is_blank(row: list) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in row)


def _is_total(row: list, ref_cell: object) -> bool:
    """'Total records: 60' (or 'Totals', 'Total: 60') below the data."""
    ref = text(ref_cell)
    if ref is not None and not ref.casefold().startswith("total"):
        return False
    first = next((text(c) for c in row if text(c) is not None), "")
    return first.casefold().startswith("total")


@dataclass
class Group:
    police_ref: str
    rows: list[int]  # excel row numbers
    cells: list[list]  # the raw rows
    rejected: bool = False
    hash: str = ""

    def source_hash(self, profile: Profile) -> str:
        h = hashlib.sha1(profile.fingerprint.encode())
        for row in self.cells:
            h.update("\x1f".join("" if c is None else str(c) for c in row).encode("utf-8", "surrogatepass"))
            h.update(b"\x1e")
        return h.hexdigest()


def _group_rows(rows: list[list], layout: Layout, profile: Profile, result: ImportResult) -> list[Group]:
    ref_col = layout.fields["police_ref"]
    ref_header = layout.headers["police_ref"]
    rows_layout = profile.children is not None and profile.children.layout == "rows"
    child_cols = {i for cols in layout.children.values() for i in cols} if rows_layout else set()
    groups: dict[str, Group] = {}
    seen_full: dict[tuple, int] = {}
    notif_key: dict[str, tuple] = {}
    rejected_rows: set[int] = set()
    for offset, row in enumerate(rows[layout.header_index + 1 :]):
        excel_row = layout.header_index + 2 + offset
        if _is_blank(row):
            continue
        ref_cell = row[ref_col] if ref_col < len(row) else None
        if _is_total(row, ref_cell):
            continue
        result.rows_read += 1
        ref = text(ref_cell)
        if ref is None:
            result.errors.append(RowIssue(excel_row, ref_header, "Police reference is missing."))
            rejected_rows.add(excel_row)
            continue
        full = tuple(row)
        while full and full[-1] in ("", None):  # a file may pad some rows with empty cells
            full = full[:-1]
        if full in seen_full:
            result.duplicates_in_file += 1
            continue
        seen_full[full] = excel_row
        nkey = tuple(text(v) for i, v in enumerate(full) if i not in child_cols) if rows_layout else full
        group = groups.get(ref)
        if group is None:
            groups[ref] = Group(ref, [excel_row], [row])
            notif_key[ref] = nkey
            continue
        if rows_layout and nkey == notif_key[ref]:
            group.rows.append(excel_row)
            group.cells.append(row)
            continue
        # The same police reference with different content: neither version can be trusted.
        others = ", ".join(str(r) for r in group.rows)
        message = (f"Police reference {ref} appears on rows {others} and {excel_row} with different content; "
                   "none of them was imported.")
        result.errors.append(RowIssue(excel_row, ref_header, message, ref))
        rejected_rows.add(excel_row)
        if not group.rejected:
            for r in group.rows:
                result.errors.append(RowIssue(r, ref_header, message, ref))
                rejected_rows.add(r)
            group.rejected = True
    result.rejected = len(rejected_rows)
    return [g for g in groups.values() if not g.rejected]


# ---------------------------------------------------------------------------------------------- parsing


class _RowErrors(Exception):
    def __init__(self, issues: list[RowIssue]):
        self.issues = issues


def _parse_group(group: Group, layout: Layout, profile: Profile, now: dt.datetime) -> tuple[dict, list[RowIssue]]:
    """One notification's values from its row(s). Raises _RowErrors naming every bad cell."""
    row = group.cells[0]
    excel_row = group.rows[0]
    issues: list[RowIssue] = []
    warnings: list[RowIssue] = []
    f, h = layout.fields, layout.headers
    today = now.date()

    width = len(row)
    values = {fld: row[i] for fld, i in f.items() if i < width}  # one pass over the row, then dict look-ups
    cell = values.get

    def bad(fld: str, message: str, r: int = excel_row):
        issues.append(RowIssue(r, h.get(fld, fld), message, group.police_ref))

    rec: dict = {"police_ref": group.police_ref, "_row": excel_row}
    for fld in ("crime_ref", "classification", "offence", "ho_code", "location", "officer", "circumstances",
                "relationship"):
        if fld in f:
            rec[fld] = text(cell(fld))
    if "postcode" in f:
        pc = text(cell("postcode"))
        rec["postcode"] = pc.upper() if pc else None
    if "ho_code" in f and rec.get("ho_code"):
        rec["ho_code"] = rec["ho_code"].upper()

    # incident: one column, or a date and a time
    try:
        if "incident_at" in f:
            incident = parse_datetime(cell("incident_at"), profile.date_formats)
            if incident is None:
                bad("incident_at", "Incident date/time is missing.")
        else:
            day = parse_date(cell("incident_date"), profile.date_formats)
            if day is None:
                bad("incident_date", "Incident date is missing.")
                incident = None
            else:
                try:
                    at = parse_time(cell("incident_time"), profile.time_formats) if "incident_time" in f else None
                except ValueError as exc:
                    bad("incident_time", f"Incident time {exc}.")
                    at = None
                if at is None and not issues:
                    warnings.append(RowIssue(excel_row, h.get("incident_time", h["incident_date"]),
                                             "No incident time: 00:00 assumed.", group.police_ref, "warning"))
                incident = dt.datetime.combine(day, at or dt.time())
        if incident is not None and incident > now:
            fld = "incident_at" if "incident_at" in f else "incident_date"
            bad(fld, f"Incident date/time {incident:%d/%m/%Y %H:%M} is in the future.")
        rec["incident_at"] = incident
    except ValueError as exc:
        bad("incident_at" if "incident_at" in f else "incident_date", f"Incident date {exc}.")

    if "reported_at" in f or "reported_date" in f:
        try:
            if "reported_at" in f:
                reported = parse_datetime(cell("reported_at"), profile.date_formats)
            else:
                day = parse_date(cell("reported_date"), profile.date_formats)
                at = parse_time(cell("reported_time"), profile.time_formats) if "reported_time" in f else None
                reported = dt.datetime.combine(day, at or dt.time()) if day else None
            if reported is not None and reported > now:
                bad("reported_at" if "reported_at" in f else "reported_date",
                    f"Reported date/time {reported:%d/%m/%Y %H:%M} is in the future.")
            rec["reported_at"] = reported
        except ValueError as exc:
            bad("reported_at" if "reported_at" in f else "reported_date", f"Reported date {exc}.")

    if "risk" in f:
        raw = text(cell("risk"))
        if raw is None:
            rec["risk"] = "not_assessed"
        else:
            mapped = profile.risk_values.get(norm_header(raw))
            if mapped is None:
                bad("risk", f"Risk '{raw}' is not one of the profile's risk values "
                            f"({', '.join(sorted(set(profile.risk_values)))}).")
            rec["risk"] = mapped
    if "dash_score" in f:
        raw = text(cell("dash_score"))
        if raw is None:
            rec["dash_score"] = None
        else:
            try:
                score = float(raw)
                if not score.is_integer() or not 0 <= score <= 27:
                    raise ValueError
                rec["dash_score"] = int(score)
            except ValueError:
                bad("dash_score", f"DASH score '{raw}' is not a whole number from 0 to 27.")
    for flag in ("flag_pregnancy", "flag_strangulation", "flag_weapons"):
        if flag in f:
            try:
                rec[flag] = parse_yes_no(cell(flag), profile.yes_values, profile.no_values)
            except ValueError as exc:
                bad(flag, f"{exc.args[0]}.")
    if "flags" in f:
        raw = text(cell("flags")) or ""
        found, other = set(), []
        for word in (w.strip() for w in raw.replace(",", ";").split(";")):
            if not word:
                continue
            kind = profile.flag_values.get(norm_header(word))
            if kind:
                found.add(kind)
            else:
                other.append(word)
        for kind in ("pregnancy", "strangulation", "weapons"):
            if f"flag_{kind}" not in f:
                rec[f"flag_{kind}"] = kind in found
        rec["flags_other"] = "; ".join(other) or None

    # people
    people: dict[str, list[dict]] = {}
    for who in ("victim", "perpetrator"):
        if f"{who}_name" not in f and f"{who}_surname" not in f:
            continue
        if f"{who}_name" in f:
            surname, forename = split_name(cell(f"{who}_name"))
        else:
            surname, forename = text(cell(f"{who}_surname")), text(cell(f"{who}_forename"))
        dob = None
        if f"{who}_dob" in f:
            try:
                dob = parse_date(cell(f"{who}_dob"), profile.date_formats)
                if dob and dob > today:
                    bad(f"{who}_dob", f"{who.capitalize()}'s date of birth {dob:%d/%m/%Y} is in the future.")
            except ValueError as exc:
                bad(f"{who}_dob", f"{who.capitalize()}'s date of birth {exc}.")
        person = {
            "surname": surname, "forename": forename, "dob": dob,
            "gender": text(cell(f"{who}_gender")), "person_id": text(cell(f"{who}_person_id")),
            "address": text(cell(f"{who}_address")),
        }
        if surname is None and forename is None and person["person_id"] is None:
            people[who] = []
            if who == "victim":
                warnings.append(RowIssue(excel_row, h.get("victim_name", h.get("victim_surname")),
                                         "No victim name.", group.police_ref, "warning"))
        else:
            people[who] = [person]
    if profile.children and layout.children:
        people["children"] = _parse_children(group, layout, profile, today, issues)
    rec["people"] = people

    # stream
    cls_raw = rec.get("classification")
    cls_as = profile.classification_values.get(norm_header(cls_raw)) if cls_raw else None
    stream, reason, warning = decide_stream(rec.get("crime_ref"), rec.get("ho_code"), cls_raw, cls_as)
    rec["stream"], rec["stream_reason"] = stream.value, reason
    if warning:
        warnings.append(RowIssue(excel_row, h.get("classification"), warning, group.police_ref, "warning"))
    if issues:
        raise _RowErrors(issues)
    return rec, warnings


def _parse_children(group: Group, layout: Layout, profile: Profile, today: dt.date,
                    issues: list[RowIssue]) -> list[dict]:
    spec = profile.children
    slots: list[tuple[int, dict[str, object], dict[str, str]]] = []  # (excel row, part -> raw, part -> header)
    if spec.layout == "wide":
        row = group.cells[0]
        width = len(row)
        for slot in layout.child_slots:
            raw = {p: row[i] for p, i, _ in slot if i < width}
            if any(v is not None and v != "" for v in raw.values()):
                slots.append((group.rows[0], raw, {p: h for p, _, h in slot}))
    elif spec.layout == "rows":
        hdr = {p: h for p, _, h in layout.child_slots[0]}
        for excel_row, row in zip(group.rows, group.cells):
            slots.append((excel_row, {p: (row[i] if i < len(row) else None) for p, i, _ in layout.child_slots[0]}, hdr))
    else:  # list
        row = group.cells[0]
        hdr = {p: h for p, _, h in layout.child_slots[0]}
        split = {p: [v.strip() for v in (text(row[i] if i < len(row) else None) or "").split(spec.separator)]
                 for p, i, _ in layout.child_slots[0]}
        count = max((len(v) for v in split.values()), default=0)
        for n in range(count):
            slots.append((group.rows[0], {p: (v[n] if n < len(v) else None) for p, v in split.items()}, hdr))
    children = []
    for excel_row, raw, hdr in slots:
        if all(text(v) is None for v in raw.values()):
            continue
        if "name" in raw:
            surname, forename = split_name(raw.get("name"))
        else:
            surname, forename = text(raw.get("surname")), text(raw.get("forename"))
        dob = None
        try:
            dob = parse_date(raw.get("dob"), profile.date_formats)
            if dob and dob > today:
                issues.append(RowIssue(excel_row, hdr.get("dob"), f"Child's date of birth {dob:%d/%m/%Y} is in the future.",
                                       group.police_ref))
        except ValueError as exc:
            issues.append(RowIssue(excel_row, hdr.get("dob"), f"Child's date of birth {exc}.", group.police_ref))
        present = None
        try:
            present = parse_yes_no(raw.get("present"), profile.yes_values, profile.no_values)
        except ValueError as exc:
            issues.append(RowIssue(excel_row, hdr.get("present"), f"Child present: {exc.args[0]}.", group.police_ref))
        children.append({"surname": surname, "forename": forename, "dob": dob, "gender": text(raw.get("gender")),
                         "person_id": None, "address": None, "school": text(raw.get("school")), "present": present})
    return children


# ---------------------------------------------------------------------------------------------- writing


def _signature(people: dict[str, list[dict]]) -> dict[str, list[list]]:
    return {
        group: [[p.get("surname"), p.get("forename"), p["dob"].isoformat() if p.get("dob") else None, p.get("gender"),
                 p.get("person_id"), p.get("address"), p.get("school"), p.get("present")] for p in plist]
        for group, plist in people.items()
    }


def _display(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.strftime("%d/%m/%Y %H:%M")
    if isinstance(value, dt.date):
        return value.strftime("%d/%m/%Y")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Enum):
        return value.value
    return str(value)


def _load_existing(session: Session, force: str, refs: list[str]) -> dict[str, dict]:
    table = Notification.__table__
    cols = [table.c.id, table.c.police_ref, table.c.victim_id, table.c.people_signature, table.c.version]
    cols += [table.c[name] for name in NOTIFICATION_FIELDS + DERIVED_FIELDS]
    out: dict[str, dict] = {}
    conn = session.connection()
    for i in range(0, len(refs), CHUNK):
        stmt = select(*cols).where(table.c.force == force, table.c.police_ref.in_(refs[i : i + CHUNK]))
        for row in conn.execute(stmt).mappings():
            out[row["police_ref"]] = dict(row)
    return out


def _apply(session: Session, records: list[dict], profile: Profile, layout: Layout, result: ImportResult,
           user: User | None, file_name: str, sha256: str, actor: str | None, dry_run: bool,
           progress: Progress | None) -> None:
    conn = session.connection()
    carried = [fld for fld in NOTIFICATION_FIELDS if fld in layout.fields]
    if "flags" in layout.fields:
        carried += [f for f in ("flag_pregnancy", "flag_strangulation", "flag_weapons", "flags_other") if f not in carried]
    if "incident_date" in layout.fields:
        carried.append("incident_at")
    if "reported_date" in layout.fields:
        carried.append("reported_at")
    existing = _load_existing(session, profile.force, [r["police_ref"] for r in records])

    creates: list[dict] = []
    updates: list[tuple[dict, dict, dict, dict]] = []  # (record, old row, changed fields, changed people groups)
    for rec in records:
        old = existing.get(rec["police_ref"])
        if old is None:
            creates.append(rec)
            continue
        changes = {}
        for fld in carried + list(DERIVED_FIELDS):
            new_v, old_v = rec.get(fld), old[fld]
            if new_v != old_v:
                changes[fld] = (old_v, new_v)
        old_people = json.loads(old["people_signature"] or "{}")
        new_sig = _signature(rec["people"])
        people_changes = {g: (old_people.get(g, []), sig) for g, sig in new_sig.items() if old_people.get(g, []) != sig}
        if changes or people_changes:
            updates.append((rec, old, changes, people_changes))
        else:
            result.unchanged += 1
    result.created, result.updated = len(creates), len(updates)
    for rec in records:
        result.crime += rec["stream"] == Stream.crime.value
        result.non_crime += rec["stream"] == Stream.non_crime.value
        result.children += len(rec["people"].get("children", []))
    if dry_run:
        return

    if progress:
        progress(0.7, f"Writing {len(creates):,} new and {len(updates):,} changed notifications")
    now = utcnow()
    batch = ImportBatch(file_name=file_name, sha256=sha256, profile_name=profile.name, force=profile.force,
                        encoding=result.encoding, imported_by_id=user.id if user else None,
                        imported_by=user.username if user else actor, started_at_utc=now)
    session.add(batch)
    session.flush()
    result.batch_id = batch.id

    # People: resolve everyone on created notifications and on changed groups of updated ones.
    resolver = PersonResolver(session, profile.force)
    old_links = resolver.previous_links([old["id"] for _, old, _, pc in updates if pc])
    for rec in creates:
        for group, plist in rec["people"].items():
            for p in plist:
                resolver.want(p)
    for rec, old, _, pchanges in updates:
        for group in pchanges:
            for p in rec["people"][group]:
                resolver.want(p, previous=old_links.get((old["id"], PERSON_GROUPS[group].value), []))
    resolver.resolve()

    ntable = Notification.__table__
    if creates:
        rows = []
        for rec in creates:
            victim = rec["people"].get("victim") or []
            row = {fld: rec.get(fld) for fld in NOTIFICATION_FIELDS}
            row.update(force=profile.force, police_ref=rec["police_ref"], stream=rec["stream"],
                       source_hash=rec.get("source_hash"),
                       stream_reason=rec["stream_reason"], victim_id=victim[0]["_person_id"] if victim else None,
                       people_signature=json.dumps(_signature(rec["people"]), sort_keys=True),
                       first_batch_id=batch.id, last_batch_id=batch.id, created_at_utc=now, updated_at_utc=now,
                       version=1)
            if row["risk"] is None:
                row["risk"] = "not_assessed"
            rows.append(row)
        ids = {}
        for row, new_id in zip(rows, reserve_ids(conn, ntable, len(rows))):
            row["id"] = new_id
            ids[row["police_ref"]] = new_id
        bulk_insert(conn, ntable, rows)
        links = []
        for rec in creates:
            links.extend(_links(ids[rec["police_ref"]], rec["people"]))
        bulk_insert(conn, NotificationPerson.__table__, links)

    if updates:
        if progress:
            progress(0.85, f"Recording changes to {len(updates):,} notifications")
        history, new_links, relinked = [], [], []
        for rec, old, changes, pchanges in updates:
            values = {fld: rec.get(fld) for fld in carried + list(DERIVED_FIELDS)}
            if values.get("risk") is None and "risk" in values:
                values["risk"] = "not_assessed"
            old_people = json.loads(old["people_signature"] or "{}")
            old_people.update(_signature(rec["people"]))  # groups this profile does not carry stay as they were
            victim_id = old["victim_id"]
            if "victim" in pchanges:
                victim = rec["people"]["victim"]
                victim_id = victim[0]["_person_id"] if victim else None
            values.update(_id=old["id"], _version=old["version"], victim_id=victim_id, source_hash=rec.get("source_hash"),
                          people_signature=json.dumps(old_people, sort_keys=True), last_batch_id=batch.id,
                          updated_at_utc=now, version=old["version"] + 1)
            relinked.append(values)
            for fld, (o, n) in changes.items():
                history.append({"notification_id": old["id"], "batch_id": batch.id, "field": fld,
                                "old_value": _display(o), "new_value": _display(n), "changed_at_utc": now})
            for group, (o, n) in pchanges.items():
                history.append({"notification_id": old["id"], "batch_id": batch.id, "field": group,
                                "old_value": describe_people(o), "new_value": describe_people(n),
                                "changed_at_utc": now})
                new_links.extend((old["id"], PERSON_GROUPS[group].value, link)
                                 for link in _links(old["id"], {group: rec["people"][group]}))
        # One statement per distinct set of columns (profiles differ in what they carry, rows do not).
        keys = [k for k in relinked[0] if not k.startswith("_")]
        stmt = (update(ntable)
                .where(ntable.c.id == bindparam("_id"), ntable.c.version == bindparam("_version"))
                .values({k: bindparam(f"v_{k}") for k in keys}))
        params = [{"_id": v["_id"], "_version": v["_version"], **{f"v_{k}": v[k] for k in keys}} for v in relinked]
        res = conn.execute(stmt, params)
        if res.rowcount is not None and res.rowcount >= 0 and res.rowcount != len(params):
            raise RuntimeError("Notifications changed while this file was being imported; import again.")
        replaced = {(nid, role) for nid, role, _ in new_links}
        replaced |= {(old["id"], PERSON_GROUPS[g].value) for _, old, _, pc in updates for g in pc}
        nptable = NotificationPerson.__table__
        for nid, role in replaced:
            conn.execute(delete(nptable).where(nptable.c.notification_id == nid, nptable.c.role == role))
        if new_links:
            conn.execute(insert(nptable), [link for _, _, link in new_links])
        if history:
            conn.execute(insert(FieldChange.__table__), history)

    issues = result.errors + result.warnings
    if issues:
        conn.execute(insert(RowError.__table__), [
            {"batch_id": batch.id, "row": i.row, "column": i.column, "police_ref": i.police_ref,
             "severity": i.severity, "message": i.message} for i in issues
        ])
    for name in ("rows_read", "created", "updated", "unchanged", "duplicates_in_file", "rejected", "crime",
                 "non_crime", "children"):
        setattr(batch, name, getattr(result, name))
    batch.warnings = len(result.warnings)
    batch.finished_at_utc = utcnow()
    session.add(batch)


def _links(notification_id: int, people: dict[str, list[dict]]) -> list[dict]:
    out = []
    for group, plist in people.items():
        for pos, p in enumerate(plist):
            out.append({
                "notification_id": notification_id, "person_id": p["_person_id"], "role": PERSON_GROUPS[group].value,
                "position": pos, "surname": p.get("surname"), "forename": p.get("forename"), "dob": p.get("dob"),
                "gender": p.get("gender"), "address": p.get("address"), "school_name": p.get("school"),
                "present": p.get("present"),
            })
    return out


# ---------------------------------------------------------------------------------------------- entry point


def import_file(session: Session, source: str | Path | bytes, profile: Profile, *, user: User | None = None,
                file_name: str | None = None, dry_run: bool = False, progress: Progress | None = None,
                actor: str | None = None, now: dt.datetime | None = None) -> ImportResult:
    """Import one extract into ``session``'s transaction (the caller commits).

    Raises ``FileRejected`` when nothing at all can be imported. ``now`` (Europe/London wall-clock) is for tests.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        file_name = file_name or path.name
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise FileRejected(f"The file could not be read: {exc.strerror or exc}.") from None
    else:
        data = source
        file_name = file_name or "upload"
    result = ImportResult(file=file_name, profile=profile.name, dry_run=dry_run)
    if progress:
        progress(0.05, "Reading the file")
    sheet = read_rows(data, file_name, sheet=profile.sheet, encoding=profile.encoding)
    result.encoding = sheet.encoding
    layout = locate_header(sheet.rows, profile)
    for missing in layout.missing_optional:
        result.warnings.append(RowIssue(layout.header_index + 1, None,
                                        f"Column {missing} is not in this file; those values are left as they were.",
                                        severity="warning"))
    if progress:
        progress(0.2, "Checking rows")
    now = now or london_now()
    with _collector_paused():
        groups = _skip_identical(session, _group_rows(sheet.rows, layout, profile, result), profile, result)
        records = _parse_groups(groups, layout, profile, now, result, progress)
        if not records and not result.rows_read:
            raise FileRejected("The file has a header row but no notifications below it.")
        sha256 = hashlib.sha256(data).hexdigest()
        _apply(session, records, profile, layout, result, user, file_name, sha256, actor, dry_run, progress)
    audit.record(session, user, "import_dry_run" if dry_run else "import", "import_batch", result.batch_id,
                 username=actor, file=file_name, sha256=sha256, profile=profile.name,
                 counts={k: v for k, v in result.to_json().items() if isinstance(v, int) and k != "batch_id"})
    if progress:
        progress(1.0, "Done")
    return result


@contextmanager
def _collector_paused():
    """An import allocates hundreds of thousands of small objects that all live until the end; pausing the cyclic
    garbage collector meanwhile saves ~15% (reference counting still frees everything that can be freed)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _skip_identical(session: Session, groups: list[Group], profile: Profile, result: ImportResult) -> list[Group]:
    """Drop the groups whose source rows are byte-for-byte what was last imported under the same profile: they are
    unchanged without being parsed again (re-importing the same file is then mostly reading it)."""
    for g in groups:
        g.hash = g.source_hash(profile)
    stored: dict[str, tuple[str | None, str, str | None]] = {}
    conn = session.connection()
    refs = [g.police_ref for g in groups]
    for i in range(0, len(refs), CHUNK):
        stmt = select(N_TABLE.c.police_ref, N_TABLE.c.source_hash, N_TABLE.c.stream, N_TABLE.c.people_signature).where(
            N_TABLE.c.force == profile.force, N_TABLE.c.police_ref.in_(refs[i : i + CHUNK]))
        stored.update({r.police_ref: (r.source_hash, r.stream, r.people_signature) for r in conn.execute(stmt)})
    remaining = []
    for g in groups:
        known = stored.get(g.police_ref)
        if known is None or known[0] != g.hash:
            remaining.append(g)
            continue
        result.unchanged += 1
        result.crime += known[1] == Stream.crime
        result.non_crime += known[1] == Stream.non_crime
        result.children += len(json.loads(known[2] or "{}").get("children", []))
    return remaining


def _parse_groups(groups: list[Group], layout: Layout, profile: Profile, now: dt.datetime, result: ImportResult,
                  progress: Progress | None) -> list[dict]:
    records: list[dict] = []
    rejected_rows: set[int] = set()
    for n, group in enumerate(groups):
        try:
            rec, warns = _parse_group(group, layout, profile, now)
            rec["source_hash"] = group.hash
            records.append(rec)
            result.warnings.extend(warns)
        except _RowErrors as exc:
            result.errors.extend(exc.issues)
            rejected_rows.update(group.rows)
        if progress and n % 2000 == 0 and n:
            progress(0.2 + 0.45 * n / len(groups), f"Checked {n:,} of {len(groups):,} notifications")
    result.rejected += len(rejected_rows)
    result.errors.sort(key=lambda e: (e.row or 0, e.column or ""))
    return records


def import_upload(session: Session, user: User | None, data: bytes, file_name: str, profile: Profile, *,
                  dry_run: bool = False, progress: Progress | None = None) -> ImportResult:
    """The Import page's entry: only users allowed to import get past ``require``."""
    require(session, user, "import")
    return import_file(session, data, profile, user=user, file_name=file_name, dry_run=dry_run, progress=progress)


def detect_profiles(data: bytes, file_name: str, profiles: list[Profile]) -> list[tuple[Profile, int]]:
    """Profiles whose required headers are all in the file's first 200 rows, best match (most mapped headers
    found) first. Reads only the top of the file."""
    matches = []
    for profile in profiles:
        try:
            sheet = read_rows(data, file_name, sheet=profile.sheet, encoding=profile.encoding, nrows=200)
        except FileRejected:
            continue
        try:
            layout = locate_header(sheet.rows, profile)
        except FileRejected:
            continue
        matches.append((profile, len(layout.fields) + len(layout.children)))
    return sorted(matches, key=lambda m: -m[1])
