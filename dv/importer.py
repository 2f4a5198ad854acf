"""Importing a police extract: read, find the header, validate every row, split into streams, link people and
write it all in one transaction (or, with ``dry_run``, write nothing and say what would happen).

The flow, top to bottom:

1. ``open_sheet`` (dv.reading) – the checked file, or FileRejected. Its rows are walked, never all held as lists.
2. ``locate_header`` – the header row and which column holds each mapped field; missing required columns reject
   the file.
3. ``_scan`` – a first walk over the rows, keeping one police reference per row: blank and "Total records" rows
   dropped silently, a missing reference rejected. References found on more than one row are then sorted out
   (``_group_repeated``): exact repeats counted as duplicates, one police reference with two different contents
   rejected (both rows named), the rows of one notification grouped (children "rows" layout).
4. ``_stored`` – what the database holds for those references: rows byte-for-byte what was last imported are
   counted unchanged without being parsed.
5. A second walk (``_groups``), in chunks of ``CHUNK_NOTIFICATIONS`` notifications: ``_Import.prepare`` parses
   each notification (a bad value rejects its row(s) with row, column, message) and compares it with what is
   stored; ``_Import.finish`` links people and hands creates, updates (with field-level history) to the writer,
   with the Operation Encompass alerts of the created notifications' children, made from the parsed values
   (``dv.encompass.AlertRows.rows_for``: no second pass reading the children back).
6. Row errors, the batch's counts, the alerts of changed notifications (``dv.encompass.generate_alerts``, which
   also writes the one audit row of all the alerts raised) and the import's audit row.

Nothing is written before the first walk has judged every reference, and everything goes into the caller's
transaction, so a failure anywhere leaves nothing behind. Memory stays flat with the file's size: only a reference
per row and one chunk of notifications are held besides the reader's own cells.

The writes run on one worker thread (``_DbWorker``) while the main thread parses the next chunk: SQLite and the
PostgreSQL driver release the GIL while they work, so the two overlap on a second core. The main thread never
uses the connection while the worker lives; it asks the worker instead, and the worker runs everything in the
order it was asked.
"""
from __future__ import annotations

import datetime as dt
import gc
import hashlib
import json
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from itertools import islice
from operator import itemgetter
from pathlib import Path

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from core import audit
from core.db import bulk_insert, defer_checkpoint, reserve_ids
from core.models import User
from core.scope import require
from core.timeutil import LONDON, UTC, london_now, utcnow
from core.settings import get_settings
from dv.encompass import ALERT_COLUMNS, AlertRows, generate_alerts
from dv.models import (EncompassAlert, FieldChange, ImportBatch, Notification, NotificationPerson, Person,
                       PersonRole, RowError, Stream)
from dv.parsing import parse_date, parse_datetime, parse_time, parse_yes_no, split_name, text
from dv.people import PersonLinker, describe_people, lookup_people, previous_links
from dv.profiles import Profile, norm_header
from dv.reading import FileRejected, Sheet, open_file, read_rows
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
ROLES = {group: role.value for group, role in PERSON_GROUPS.items()}
CRIME, NON_CRIME = Stream.crime.value, Stream.non_crime.value
CHUNK = 500  # bound parameters per IN (...) query, well inside SQLite's limit
CHUNK_NOTIFICATIONS = 500  # notifications parsed, linked and written at a time (1,000 held ~25 MB more at 100k rows)
N_TABLE = Notification.__table__
ALERT_TABLE = EncompassAlert.__table__
NOTIFICATION_COLUMNS = ("id", "force", "police_ref", *NOTIFICATION_FIELDS, "stream", "stream_reason", "victim_id",
                        "people_signature", "source_hash", "first_batch_id", "last_batch_id", "created_at_utc",
                        "updated_at_utc", "version")
PERSON_COLUMNS = ("id", "force", "police_person_id", "surname", "forename", "dob", "gender", "match_key",
                  "created_at_utc")
LINK_COLUMNS = ("id", "notification_id", "person_id", "role", "position", "surname", "forename", "dob", "gender",
                "address", "school_name", "present")


class ImportInterrupted(RuntimeError):
    """The import stopped part-way for a reason that is not the file's (someone changed a notification meanwhile,
    a row could not be written): the transaction is rolled back, and importing the file again is the remedy."""


# What the Import page reports as "nothing was imported; import again" rather than as a crash: the importer's own
# interruptions, the database being busy past its timeout ("database is locked") or gone, and a concurrent import
# of the same references committing first (a unique key then refuses this one). All leave nothing written.
INTERRUPTIONS = (ImportInterrupted, OperationalError, IntegrityError)


def interruption_message(exc: BaseException) -> str:
    """What to tell the user about one of ``INTERRUPTIONS``: plain words, never the SQL or the driver's text."""
    if isinstance(exc, ImportInterrupted):
        return str(exc)
    if isinstance(exc, IntegrityError):
        reason = "another import wrote the same notifications at the same time"
    else:
        reason = "the database was busy or could not be reached"
    return f"Nothing was imported: {reason}. Import the file again."


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
    alerts: dict = field(default_factory=dict)  # Operation Encompass alerts raised (dv.encompass.generate_alerts)

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

HEADER_SEARCH_ROWS = 200


def locate_header(rows: list[list], profile: Profile) -> Layout:
    """``rows``: the file's first rows (at least the first 200, or up to the profile's header row)."""
    ref_header = norm_header(profile.columns["police_ref"])
    if profile.header_row:
        idx = profile.header_row - 1
        if idx >= len(rows):
            raise FileRejected(f"The profile says the header is on row {profile.header_row}, but the file has {len(rows)} rows.")
    else:
        idx = next((i for i, r in enumerate(rows[:HEADER_SEARCH_ROWS]) if ref_header in {norm_header(c) for c in r}), None)
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
        return _source_hash(self.cells, profile.fingerprint.encode())


def _source_hash(cells: list[list], fingerprint: bytes) -> str:
    """sha1 of the profile and the source row(s) as text: equal when a row is byte-for-byte what was imported."""
    h = hashlib.sha1(fingerprint)
    for row in cells:
        if None in row:
            line = "\x1f".join([c if c.__class__ is str else "" if c is None else str(c) for c in row])
        else:  # the usual row (an xlsx reader gives '' for an empty cell): the same text, joined in C
            line = "\x1f".join(map(str, row))
        h.update(line.encode("utf-8", "surrogatepass"))
        h.update(b"\x1e")
    return h.hexdigest()


@dataclass
class _Scan:
    first: dict[str, int]  # police reference -> the first row it is on
    repeated: set[str]  # references on more than one row (sorted out by _group_repeated)
    by_row: dict[int, Group]  # rows of those references that are read: row -> its accepted group
    accepted: list[str]  # references with something to import, in file order


def _reference(row: list, ref_col: int) -> tuple[object, str | None]:
    ref_cell = row[ref_col] if ref_col < len(row) else None
    return ref_cell, (ref_cell.strip() or None) if ref_cell.__class__ is str else text(ref_cell)


def _data_rows(sheet: Sheet, layout: Layout) -> Iterator[tuple[int, list]]:
    """(spreadsheet row number, row) for every row below the header."""
    start = layout.header_index + 1
    return enumerate(islice(sheet.iter_rows(), start, None), start + 1)


def _scan(sheet: Sheet, layout: Layout, profile: Profile, result: ImportResult) -> _Scan:
    """First walk: which rows hold notifications, keeping only each row's police reference."""
    ref_col = layout.fields["police_ref"]
    ref_header = layout.headers["police_ref"]
    first: dict[str, int] = {}
    repeated: set[str] = set()
    rejected_rows: set[int] = set()
    rows_read = 0
    for excel_row, row in _data_rows(sheet, layout):
        ref_cell = row[ref_col] if ref_col < len(row) else None
        ref = (ref_cell.strip() or None) if ref_cell.__class__ is str else text(ref_cell)
        if ref is None or ref.casefold().startswith("total"):  # the uncommon rows, judged as they always were
            if _is_blank(row) or _is_total(row, ref_cell):
                continue
            if ref is None:
                rows_read += 1
                result.errors.append(RowIssue(excel_row, ref_header, "Police reference is missing."))
                rejected_rows.add(excel_row)
                continue
        rows_read += 1
        if first.setdefault(ref, excel_row) != excel_row:
            repeated.add(ref)
    result.rows_read += rows_read
    by_row: dict[int, Group] = {}
    rejected_refs: set[str] = set()
    if repeated:
        for group in _group_repeated(sheet, layout, profile, result, repeated, rejected_rows):
            if group.rejected:
                rejected_refs.add(group.police_ref)
            else:
                by_row.update(dict.fromkeys(group.rows, group))
    result.rejected = len(rejected_rows)
    accepted = [ref for ref in first if ref not in rejected_refs] if rejected_refs else list(first)
    return _Scan(first, repeated, by_row, accepted)


def _row_digest(cells: Iterable) -> bytes:
    """Stands for a row's exact content (type and value of every cell) in the duplicate check, so only a digest,
    never the row, is kept per row. Numbers are compared by value as Python compares them (1 == 1.0 == True)."""
    norm = []
    for c in cells:
        if (c.__class__ is float and c.is_integer()) or c.__class__ is bool:
            c = int(c)
        norm.append(c)
    return hashlib.blake2b(repr(tuple(norm)).encode("utf-8", "surrogatepass"), digest_size=20).digest()


def _group_repeated(sheet: Sheet, layout: Layout, profile: Profile, result: ImportResult, repeated: set[str],
                    rejected_rows: set[int]) -> list[Group]:
    """The rows of references that appear more than once: an exact repeat is a duplicate; the rows of one
    notification in the "rows" children layout are grouped; otherwise different content rejects every row of that
    reference. Only the rows' numbers and digests are kept (the cells are read again in the second walk)."""
    ref_col = layout.fields["police_ref"]
    ref_header = layout.headers["police_ref"]
    rows_layout = profile.children is not None and profile.children.layout == "rows"
    child_cols = {i for cols in layout.children.values() for i in cols} if rows_layout else set()
    groups: dict[str, Group] = {}
    seen_full: set[bytes] = set()
    notif_key: dict[str, bytes] = {}
    for excel_row, row in _data_rows(sheet, layout):
        ref_cell, ref = _reference(row, ref_col)
        if ref not in repeated or (ref.casefold().startswith("total") and _is_total(row, ref_cell)):
            continue
        full = tuple(row)
        while full and full[-1] in ("", None):  # a file may pad some rows with empty cells
            full = full[:-1]
        digest = _row_digest(full)
        if digest in seen_full:
            result.duplicates_in_file += 1
            continue
        seen_full.add(digest)
        nkey = (_row_digest(text(v) for i, v in enumerate(full) if i not in child_cols) if rows_layout else digest)
        group = groups.get(ref)
        if group is None:
            groups[ref] = Group(ref, [excel_row], [])
            notif_key[ref] = nkey
            continue
        if rows_layout and nkey == notif_key[ref]:
            group.rows.append(excel_row)
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
    return list(groups.values())


def _groups(sheet: Sheet, layout: Layout, scan: _Scan) -> Iterator[Group]:
    """Second walk: each accepted notification with its row(s), as soon as its last row has been read."""
    ref_col = layout.fields["police_ref"]
    first, repeated, by_row = scan.first, scan.repeated, scan.by_row
    for excel_row, row in _data_rows(sheet, layout):
        ref_cell = row[ref_col] if ref_col < len(row) else None
        ref = (ref_cell.strip() or None) if ref_cell.__class__ is str else text(ref_cell)
        at = first.get(ref)
        if at is None:
            continue
        if repeated and ref in repeated:
            group = by_row.get(excel_row)
            if group is not None:
                group.cells.append(row)
                if len(group.cells) == len(group.rows):
                    yield group
        elif at == excel_row:
            yield Group(ref, [excel_row], [row])


def _batched(items: Iterator, size: int) -> Iterator[list]:
    while batch := list(islice(items, size)):
        yield batch


# ---------------------------------------------------------------------------------------------- parsing


class _RowErrors(Exception):
    def __init__(self, issues: list[RowIssue]):
        self.issues = issues


TEXT_FIELDS = ("crime_ref", "classification", "offence", "ho_code", "location", "officer", "circumstances",
               "relationship")


def _remembered(cache: dict, parse: Callable[[object], tuple], value: object) -> tuple:
    """``parse(value)``, worked out once per distinct cell (keyed by type too: 1 and "1" may read differently)."""
    key = (value.__class__, value)
    known = cache.get(key)
    if known is None:
        known = cache[key] = parse(value)
    return known


def _instants(wall: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants a naive London wall-clock time can mean: two in October's repeated hour (BST, then GMT),
    one otherwise (fold 0 and 1 agree)."""
    a, b = (wall.replace(tzinfo=LONDON, fold=f).astimezone(UTC) for f in (0, 1))
    return (a, b) if a <= b else (b, a)


def _in_future(wall: dt.datetime, now: dt.datetime) -> bool:
    """Whether a police wall-clock time is later than ``now`` (London wall-clock) however either is read. An import
    at 01:10 GMT, in the second pass through October's repeated hour, must accept an incident at 01:50 BST (the
    first pass, 40 minutes earlier), though 01:50 > 01:10 on the wall: so the earliest reading of the incident is
    compared with the latest reading of now. The wall-clock comparison settles nearly every row first."""
    return wall > now and _instants(wall)[0] > _instants(now)[1]


class _Parser:
    """One notification's values from its row(s). Built once per import: where each field sits, and the answers
    for values that repeat on every row ("Y", "Standard"), are worked out once."""

    def __init__(self, layout: Layout, profile: Profile, now: dt.datetime):
        self.layout, self.profile, self.now, self.today = layout, profile, now, now.date()
        f = self.f = layout.fields
        self.h = layout.headers
        columns = list(f.values()) + [i for cols in layout.children.values() for i in cols]
        self.min_width = max(columns, default=-1) + 1  # shorter rows are padded with empty cells
        self.text_fields = tuple((fld, f[fld]) for fld in TEXT_FIELDS if fld in f)
        self.flags = tuple((flag, f[flag]) for flag in ("flag_pregnancy", "flag_strangulation", "flag_weapons")
                           if flag in f)
        self.people = []
        for who in ("victim", "perpetrator"):
            if f"{who}_name" not in f and f"{who}_surname" not in f:
                continue
            self.people.append((who, f.get(f"{who}_name"), f.get(f"{who}_surname"), f.get(f"{who}_forename"),
                                f.get(f"{who}_dob"), f.get(f"{who}_gender"), f.get(f"{who}_person_id"),
                                f.get(f"{who}_address")))
        self.risk_choices = ", ".join(sorted(set(profile.risk_values)))
        self._yes_no: dict[str, tuple[bool, object]] = {}
        self._risk: dict[tuple, tuple] = {}  # (cell type, cell) -> _parse_risk's answer
        self._classification: dict[str, str | None] = {}  # classification as given -> as the profile maps it
        self._dash: dict[tuple, tuple] = {}  # (cell type, cell) -> _parse_dash's answer
        # wide children: per slot, its cells in one call and what an empty slot looks like
        self.wide = []
        if profile.children and profile.children.layout == "wide":
            for slot in layout.child_slots:
                parts = tuple(p for p, _, _ in slot)
                idxs = [i for _, i, _ in slot]
                get = (lambda row, i=idxs[0]: (row[i],)) if len(idxs) == 1 else itemgetter(*idxs)
                self.wide.append((get, parts, ("",) * len(idxs), {p: h for p, _, h in slot}))

    def _parse_risk(self, value: object) -> tuple[str | None, str | None]:
        """(risk, error message or None) of a risk cell; remembered per value (a file has a handful)."""
        raw = text(value)
        if raw is None:
            return "not_assessed", None
        mapped = self.profile.risk_values.get(norm_header(raw))
        if mapped is None:
            return None, f"Risk '{raw}' is not one of the profile's risk values ({self.risk_choices})."
        return mapped, None

    @staticmethod
    def _parse_dash(value: object) -> tuple[int | None, str | None]:
        """(DASH score, error message or None) of a score cell; remembered per value (0 to 27)."""
        raw = text(value)
        if raw is None:
            return None, None
        try:
            score = float(raw)
            if not score.is_integer() or not 0 <= score <= 27:
                raise ValueError
            return int(score), None
        except ValueError:
            return None, f"DASH score '{raw}' is not a whole number from 0 to 27."

    def yes_no(self, value: object) -> bool | None:
        """``parse_yes_no`` with the profile's spellings, remembered per text."""
        if value.__class__ is not str:
            return parse_yes_no(value, self.profile.yes_values, self.profile.no_values)
        known = self._yes_no.get(value)
        if known is None:
            try:
                known = (True, parse_yes_no(value, self.profile.yes_values, self.profile.no_values))
            except ValueError as exc:
                known = (False, exc)
            self._yes_no[value] = known
        if known[0]:
            return known[1]
        raise ValueError(*known[1].args)

    def parse(self, group: Group) -> tuple[dict, list[RowIssue]]:
        """Raises _RowErrors naming every bad cell."""
        row = group.cells[0]
        if len(row) < self.min_width:
            row = list(row) + [None] * (self.min_width - len(row))
        excel_row = group.rows[0]
        issues: list[RowIssue] = []
        warnings: list[RowIssue] = []
        f, h, profile, now, today = self.f, self.h, self.profile, self.now, self.today

        def bad(fld: str, message: str, r: int = excel_row):
            issues.append(RowIssue(r, h.get(fld, fld), message, group.police_ref))

        rec: dict = {"police_ref": group.police_ref, "_row": excel_row}
        for fld, i in self.text_fields:
            v = row[i]
            rec[fld] = (v.strip() or None) if v.__class__ is str else text(v)
        if "postcode" in f:
            pc = text(row[f["postcode"]])
            rec["postcode"] = pc.upper() if pc else None
        if "ho_code" in f and rec.get("ho_code"):
            rec["ho_code"] = rec["ho_code"].upper()

        # incident: one column, or a date and a time
        try:
            if "incident_at" in f:
                incident = parse_datetime(row[f["incident_at"]], profile.date_formats)
                if incident is None:
                    bad("incident_at", "Incident date/time is missing.")
            else:
                day = parse_date(row[f["incident_date"]], profile.date_formats)
                if day is None:
                    bad("incident_date", "Incident date is missing.")
                    incident = None
                else:
                    try:
                        at = parse_time(row[f["incident_time"]], profile.time_formats) if "incident_time" in f else None
                    except ValueError as exc:
                        bad("incident_time", f"Incident time {exc}.")
                        at = None
                    if at is None and not issues:
                        warnings.append(RowIssue(excel_row, h.get("incident_time", h["incident_date"]),
                                                 "No incident time: 00:00 assumed.", group.police_ref, "warning"))
                    incident = dt.datetime.combine(day, at or dt.time())
            if incident is not None and _in_future(incident, now):
                fld = "incident_at" if "incident_at" in f else "incident_date"
                bad(fld, f"Incident date/time {incident:%d/%m/%Y %H:%M} is in the future.")
            rec["incident_at"] = incident
        except ValueError as exc:
            bad("incident_at" if "incident_at" in f else "incident_date", f"Incident date {exc}.")

        if "reported_at" in f or "reported_date" in f:
            try:
                if "reported_at" in f:
                    reported = parse_datetime(row[f["reported_at"]], profile.date_formats)
                else:
                    day = parse_date(row[f["reported_date"]], profile.date_formats)
                    at = parse_time(row[f["reported_time"]], profile.time_formats) if "reported_time" in f else None
                    reported = dt.datetime.combine(day, at or dt.time()) if day else None
                if reported is not None and _in_future(reported, now):
                    bad("reported_at" if "reported_at" in f else "reported_date",
                        f"Reported date/time {reported:%d/%m/%Y %H:%M} is in the future.")
                rec["reported_at"] = reported
            except ValueError as exc:
                bad("reported_at" if "reported_at" in f else "reported_date", f"Reported date {exc}.")

        if "risk" in f:
            risk, problem = _remembered(self._risk, self._parse_risk, row[f["risk"]])
            if problem is not None:
                bad("risk", problem)
            rec["risk"] = risk
        if "dash_score" in f:
            score, problem = _remembered(self._dash, self._parse_dash, row[f["dash_score"]])
            if problem is not None:
                bad("dash_score", problem)
            else:
                rec["dash_score"] = score
        yes_no = self._yes_no
        for flag, i in self.flags:
            value = row[i]
            known = yes_no.get(value) if value.__class__ is str else None
            if known is not None and known[0]:
                rec[flag] = known[1]
                continue
            try:
                rec[flag] = self.yes_no(value)
            except ValueError as exc:
                bad(flag, f"{exc.args[0]}.")
        if "flags" in f:
            raw = text(row[f["flags"]]) or ""
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
        for who, name_i, surname_i, forename_i, dob_i, gender_i, pid_i, address_i in self.people:
            if name_i is not None:
                surname, forename = split_name(row[name_i])
            else:
                surname = text(row[surname_i])
                forename = None if forename_i is None else text(row[forename_i])
            dob = None
            if dob_i is not None:
                try:
                    dob = parse_date(row[dob_i], profile.date_formats)
                    if dob and dob > today:
                        bad(f"{who}_dob", f"{who.capitalize()}'s date of birth {dob:%d/%m/%Y} is in the future.")
                except ValueError as exc:
                    bad(f"{who}_dob", f"{who.capitalize()}'s date of birth {exc}.")
            pid = None if pid_i is None else text(row[pid_i])
            if surname is None and forename is None and pid is None:
                people[who] = []
                if who == "victim":
                    warnings.append(RowIssue(excel_row, h.get("victim_name", h.get("victim_surname")),
                                             "No victim name.", group.police_ref, "warning"))
            else:
                gender = None if gender_i is None else text(row[gender_i])
                address = None if address_i is None else text(row[address_i])
                people[who] = [{
                    "surname": surname, "forename": forename, "dob": dob, "gender": gender, "person_id": pid,
                    "address": address, "school": None, "present": None,
                    "_sig": [surname, forename, dob.isoformat() if dob else None, gender, pid, address, None, None],
                }]
        if profile.children and self.layout.children:
            people["children"] = self._children(group, row, issues)
        rec["people"] = people

        # stream
        cls_raw = rec.get("classification")
        if cls_raw:
            cls_as = self._classification.get(cls_raw, False)
            if cls_as is False:
                cls_as = self._classification[cls_raw] = profile.classification_values.get(norm_header(cls_raw))
        else:
            cls_as = None
        stream, reason, warning = decide_stream(rec.get("crime_ref"), rec.get("ho_code"), cls_raw, cls_as)
        rec["stream"], rec["stream_reason"] = stream.value, reason
        if warning:
            warnings.append(RowIssue(excel_row, h.get("classification"), warning, group.police_ref, "warning"))
        if issues:
            raise _RowErrors(issues)
        return rec, warnings

    def _children(self, group: Group, row: list, issues: list[RowIssue]) -> list[dict]:
        spec, layout, profile, today = self.profile.children, self.layout, self.profile, self.today
        slots: list[tuple[int, dict[str, object], dict[str, str]]] = []  # (excel row, part -> raw, part -> header)
        if spec.layout == "wide":
            for get, parts, empty, hdr in self.wide:
                values = get(row)
                if values == empty or all(v == "" or v is None for v in values):  # most slots are empty
                    continue
                slots.append((group.rows[0], dict(zip(parts, values)), hdr))
        elif spec.layout == "rows":
            hdr = {p: h for p, _, h in layout.child_slots[0]}
            for excel_row, cells in zip(group.rows, group.cells):
                slots.append((excel_row, {p: (cells[i] if i < len(cells) else None) for p, i, _ in layout.child_slots[0]},
                              hdr))
        else:  # list
            hdr = {p: h for p, _, h in layout.child_slots[0]}
            split = {p: [v.strip() for v in (text(row[i]) or "").split(spec.separator)]
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
                    issues.append(RowIssue(excel_row, hdr.get("dob"),
                                           f"Child's date of birth {dob:%d/%m/%Y} is in the future.", group.police_ref))
            except ValueError as exc:
                issues.append(RowIssue(excel_row, hdr.get("dob"), f"Child's date of birth {exc}.", group.police_ref))
            present = None
            try:
                present = self.yes_no(raw.get("present"))
            except ValueError as exc:
                issues.append(RowIssue(excel_row, hdr.get("present"), f"Child present: {exc.args[0]}.",
                                       group.police_ref))
            gender, school = text(raw.get("gender")), text(raw.get("school"))
            children.append({"surname": surname, "forename": forename, "dob": dob, "gender": gender,
                             "person_id": None, "address": None, "school": school, "present": present,
                             "_sig": [surname, forename, dob.isoformat() if dob else None, gender, None, None, school,
                                      present]})
        return children


# ---------------------------------------------------------------------------------------------- writing


def _signature(people: dict[str, list[dict]]) -> dict[str, list[list]]:
    """The people as stored in ``people_signature`` (the parser makes each person's entry once, as ``_sig``)."""
    return {
        group: [p["_sig"] if "_sig" in p else
                [p.get("surname"), p.get("forename"), p["dob"].isoformat() if p.get("dob") else None, p.get("gender"),
                 p.get("person_id"), p.get("address"), p.get("school"), p.get("present")] for p in plist]
        for group, plist in people.items()
    }


# json.dumps(value, sort_keys=True), without building an encoder for every notification
_to_json = json.JSONEncoder(sort_keys=True, check_circular=False).encode


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


def _stored(conn, force: str, refs: list[str]) -> dict[str, tuple[str | None, Stream, int]]:
    """police reference -> (source hash, stream, children) of the notifications already stored."""
    out: dict[str, tuple[str | None, Stream, int]] = {}
    if not refs or conn.execute(select(N_TABLE.c.id).where(N_TABLE.c.force == force).limit(1)).first() is None:
        return out  # nothing stored for this force yet (a first import): no need to look each reference up
    for i in range(0, len(refs), CHUNK):
        stmt = select(N_TABLE.c.police_ref, N_TABLE.c.source_hash, N_TABLE.c.stream, N_TABLE.c.people_signature).where(
            N_TABLE.c.force == force, N_TABLE.c.police_ref.in_(refs[i : i + CHUNK]))
        for r in conn.execute(stmt):
            out[r.police_ref] = (r.source_hash, r.stream, len(json.loads(r.people_signature or "{}").get("children", [])))
    return out


def _load_existing(conn, force: str, refs: list[str]) -> dict[str, dict]:
    table = Notification.__table__
    cols = [table.c.id, table.c.police_ref, table.c.victim_id, table.c.people_signature, table.c.version]
    cols += [table.c[name] for name in NOTIFICATION_FIELDS + DERIVED_FIELDS]
    out: dict[str, dict] = {}
    for i in range(0, len(refs), CHUNK):
        stmt = select(*cols).where(table.c.force == force, table.c.police_ref.in_(refs[i : i + CHUNK]))
        for row in conn.execute(stmt).mappings():
            out[row["police_ref"]] = dict(row)
    return out


def _links(notification_id: int, people: dict[str, list[dict]], ids: Iterator[int]) -> list[tuple]:
    """notification_person rows (LINK_COLUMNS) for one notification's people, their ids taken from ``ids``; each
    person dict gets its link's id as ``_link_id``."""
    out = []
    for group, plist in people.items():
        role = ROLES[group]
        for pos, p in enumerate(plist):
            link_id = p["_link_id"] = next(ids)
            out.append((link_id, notification_id, p["_person_id"], role, pos, p["surname"], p["forename"], p["dob"],
                        p["gender"], p["address"], p["school"], p["present"]))
    return out


def _people_count(people: dict[str, list[dict]]) -> int:
    return sum(len(plist) for plist in people.values())


@dataclass
class _Updates:
    """What one chunk changes on notifications that were already stored."""

    params: list[dict]  # one version-checked UPDATE per notification
    keys: list[str]
    replaced: set[tuple[int, str]]  # (notification id, role) whose people links are replaced
    links: list[tuple]
    history: list[dict]


def _write_updates(conn, updates: _Updates) -> None:
    """One chunk's changes to stored notifications, on the worker thread (after its new people are written)."""
    stmt = (update(N_TABLE)
            .where(N_TABLE.c.id == bindparam("_id"), N_TABLE.c.version == bindparam("_version"))
            .values({k: bindparam(f"v_{k}") for k in updates.keys}))
    res = conn.execute(stmt, updates.params)
    if res.rowcount is not None and res.rowcount >= 0 and res.rowcount != len(updates.params):
        raise ImportInterrupted("Nothing was imported: notifications changed while this file was being imported. "
                                "Import the file again.")
    nptable = NotificationPerson.__table__
    for nid, role in updates.replaced:
        conn.execute(delete(nptable).where(nptable.c.notification_id == nid, nptable.c.role == role))
    bulk_insert(conn, nptable, updates.links, columns=LINK_COLUMNS)
    if updates.history:
        conn.execute(insert(FieldChange.__table__), updates.history)


class _DbWorker:
    """One thread that runs the import's database calls, in the order they were asked for, on the caller's
    connection, so the main thread can parse the next chunk meanwhile. After a failure nothing more runs, and the
    failure is raised in the main thread at its next ``result`` or at ``close``."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dv-import-db")
        self._failed: BaseException | None = None

    def submit(self, fn: Callable, *args) -> Future:
        return self._pool.submit(self._run, fn, args)

    def call(self, fn: Callable, *args):
        return self.result(self.submit(fn, *args))

    def result(self, future: Future):
        try:
            return future.result()
        except _Skipped:
            raise self._failed from None

    def _run(self, fn: Callable, args: tuple):
        if self._failed is not None:
            raise _Skipped
        try:
            return fn(*args)
        except BaseException as exc:
            self._failed = exc
            raise

    def close(self, abandon: bool = False) -> None:
        """Wait until the worker is idle (dropping what is still queued when ``abandon``); then raise its
        failure, if any, unless the caller is already raising one."""
        self._pool.shutdown(wait=True, cancel_futures=abandon)
        if self._failed is not None and not abandon:
            raise self._failed


class _Skipped(Exception):
    """A call queued after an earlier one failed."""


class _Ids:
    """Fresh primary keys for one table, for rows the worker writes later. SQLite: max(id) + 1 once, then counted
    on (the import's transaction holds SQLite's only write lock, so nobody else inserts meanwhile). PostgreSQL: the
    table's sequence, a block at a time (safe under concurrent imports)."""

    BLOCK = 5000

    def __init__(self, worker: _DbWorker, conn, table):
        self.worker, self.conn, self.table = worker, conn, table
        self.sqlite = conn.dialect.name == "sqlite"
        self.next: int | None = None
        self.pool: list[int] = []

    def take(self, n: int) -> list[int] | range:
        if n <= 0:
            return []
        if self.sqlite:
            if self.next is None:
                self.next = self.worker.call(reserve_ids, self.conn, self.table, 1)[0]
            out = range(self.next, self.next + n)
            self.next += n
            return out
        while len(self.pool) < n:
            self.pool.extend(self.worker.call(reserve_ids, self.conn, self.table, max(self.BLOCK, n - len(self.pool))))
        out, self.pool = self.pool[:n], self.pool[n:]
        return out


@dataclass
class _Prepared:
    creates: list[dict]
    updates: list[tuple[dict, dict, dict, dict]]  # (record, old row, changed fields, changed people groups)
    wanted: list[tuple[dict, list]]  # (person, who this notification's role was linked to before)
    lookup: Future | None  # the people look-up, queued on the worker
    visible_upto: int  # the people this import created that the look-up sees: those with ids below this


class _Import:
    """The second walk, a chunk at a time: ``prepare`` parses and compares (main thread, while the worker writes
    the previous chunk); ``finish`` links the chunk's people and queues its writes."""

    def __init__(self, session: Session, worker: _DbWorker, profile: Profile, layout: Layout, result: ImportResult,
                 now: dt.datetime, batch: ImportBatch | None):
        self.conn = session.connection()
        self.worker, self.profile, self.layout, self.result = worker, profile, layout, result
        self.now, self.batch, self.dry_run = now, batch, batch is None
        self.stored: dict[str, tuple[str | None, Stream, int]] = {}
        self.fingerprint = profile.fingerprint.encode()
        carried = [fld for fld in NOTIFICATION_FIELDS if fld in layout.fields]
        if "flags" in layout.fields:
            carried += [f for f in ("flag_pregnancy", "flag_strangulation", "flag_weapons", "flags_other") if f not in carried]
        if "incident_date" in layout.fields:
            carried.append("incident_at")
        if "reported_date" in layout.fields:
            carried.append("reported_at")
        self.compared = carried + list(DERIVED_FIELDS)
        self.parser = _Parser(layout, profile, now)
        self.utc_now = utcnow()
        self.notification_ids = _Ids(worker, self.conn, N_TABLE)
        self.link_ids = _Ids(worker, self.conn, NotificationPerson.__table__)
        self.link_ids.BLOCK = 4 * _Ids.BLOCK  # PostgreSQL: about three links a notification, fewer waits on the worker
        self.session = session
        self.updated_ids: list[int] = []
        # Operation Encompass: the alerts of the notifications created here are made from the parsed values and
        # written with them (dv.encompass.AlertRows); those of changed notifications after the walk
        # (generate_alerts, which checks the alerts they already have).
        self.settings = get_settings()
        self.alert_rows = None if self.dry_run else AlertRows(self.settings, self._resolver, self._school_name)
        self._resolver_job: Future | None = None
        self._resolver_answer: tuple | None = None
        self.linker = PersonLinker(profile.force, _Ids(worker, self.conn, Person.__table__).take, self.utc_now)
        self.sqlite = self.conn.dialect.name == "sqlite"
        self.cursor = self.conn.connection.driver_connection.cursor() if self.sqlite else None
        # rows made but not queued yet (see flush)
        self.people: list[tuple] = []
        # per chunk: (people ids needed below, notification ids needed below, notifications, links, link ids
        # needed below, alerts)
        self.waiting: deque[tuple[int, int, list[tuple], list[tuple], int, list[tuple]]] = deque()
        self.notifications: list[tuple] = []
        self.links_waiting: deque[tuple[int, list[tuple], int, list[tuple]]] = deque()
        self.links: list[tuple] = []
        self.alerts_waiting: deque[tuple[int, list[tuple]]] = deque()
        self.alerts: list[tuple] = []
        self.links_top = 0
        self.people_top = 0  # ids of the people this import created are below this
        self.people_queued_upto = 0  # ... and those below this are queued for writing
        self.notifications_top = 0  # the same for notifications

    def prepare(self, chunk: list[Group]) -> _Prepared | None:
        result, stored, profile, parser = self.result, self.stored, self.profile, self.parser
        records: list[dict] = []
        for group in chunk:
            group.hash = _source_hash(group.cells, self.fingerprint)
            known = stored.get(group.police_ref)
            if known is not None and known[0] == group.hash:
                # byte-for-byte what was last imported under this profile: unchanged, not parsed again
                result.unchanged += 1
                result.crime += known[1] == Stream.crime
                result.non_crime += known[1] == Stream.non_crime
                result.children += known[2]
                continue
            try:
                rec, warns = parser.parse(group)
            except _RowErrors as exc:
                result.errors.extend(exc.issues)
                result.rejected += len(group.rows)
                continue
            rec["source_hash"] = group.hash
            records.append(rec)
            result.warnings.extend(warns)

        known_refs = [rec["police_ref"] for rec in records if rec["police_ref"] in stored]
        existing = self.worker.call(_load_existing, self.conn, profile.force, known_refs) if known_refs else {}
        creates: list[dict] = []
        updates: list[tuple[dict, dict, dict, dict]] = []
        for rec in records:
            result.crime += rec["stream"] == CRIME
            result.non_crime += rec["stream"] == NON_CRIME
            result.children += len(rec["people"].get("children", []))
            old = existing.get(rec["police_ref"])
            if old is None:
                creates.append(rec)
                continue
            changes = {}
            for fld in self.compared:
                new_v, old_v = rec.get(fld), old[fld]
                if new_v != old_v:
                    changes[fld] = (old_v, new_v)
            old_people = json.loads(old["people_signature"] or "{}")
            new_sig = _signature(rec["people"])
            people_changes = {g: (old_people.get(g, []), sig) for g, sig in new_sig.items() if old_people.get(g, []) != sig}
            if changes or people_changes:
                updates.append((rec, old, changes, people_changes))
                self.updated_ids.append(old["id"])
            else:
                result.unchanged += 1
        result.created += len(creates)
        result.updated += len(updates)
        if self.dry_run:
            return None

        # People: everyone on created notifications and on changed groups of updated ones.
        relinked = [old["id"] for _, old, _, pc in updates if pc]
        old_links = self.worker.call(previous_links, self.conn, relinked) if relinked else {}
        wanted: list[tuple[dict, list]] = []
        for rec in creates:
            for plist in rec["people"].values():
                wanted.extend((p, []) for p in plist)
        for rec, old, _, pchanges in updates:
            for group in pchanges:
                previous = old_links.get((old["id"], PERSON_GROUPS[group].value), [])
                wanted.extend((p, previous) for p in rec["people"][group])
        pids, keys = self.linker.keys(wanted)
        lookup = self.worker.submit(lookup_people, self.conn, profile.force, pids, keys) if pids or keys else None
        # the look-up sees the people queued before it, not those still waiting here or made by the chunk before
        return _Prepared(creates, updates, wanted, lookup, self.people_queued_upto)

    def finish(self, prep: _Prepared) -> None:
        """Link the chunk's people and queue its writes."""
        by_pid, by_key = self.worker.result(prep.lookup) if prep.lookup is not None else ({}, {})
        new_people = self.linker.link(prep.wanted, by_pid, by_key, prep.visible_upto)
        if new_people:
            self.people_top = new_people[-1][0] + 1
        batch_id, now, force = self.batch.id, self.utc_now, self.profile.force
        rows, links, alerts = [], [], []
        link_ids = iter(self.link_ids.take(sum(_people_count(rec["people"]) for rec in prep.creates)))
        alert_rows = self.alert_rows
        for rec, new_id in zip(prep.creates, self.notification_ids.take(len(prep.creates))):
            people = rec["people"]
            victim = people.get("victim")
            get = rec.get
            rows.append((new_id, force, rec["police_ref"], get("crime_ref"), get("classification"), get("offence"),
                         get("ho_code"), get("incident_at"), get("reported_at"), get("location"), get("postcode"),
                         get("risk") or "not_assessed", get("dash_score"), get("flag_pregnancy"),
                         get("flag_strangulation"), get("flag_weapons"), get("flags_other"), get("officer"),
                         get("circumstances"), get("relationship"), rec["stream"], rec["stream_reason"],
                         victim[0]["_person_id"] if victim else None,
                         _to_json(_signature(people)), get("source_hash"), batch_id, batch_id, now,
                         now, 1))
            links.extend(_links(new_id, people, link_ids))
            children = people.get("children")
            if children and alert_rows is not None:
                alerts.extend(self._alerts(new_id, rec, children))
        if rows:
            self.notifications_top = rows[-1][0] + 1
        if links:
            self.links_top = links[-1][0] + 1
        self.people.extend(new_people)
        self.waiting.append((self.people_top, self.notifications_top, rows, links, self.links_top, alerts))
        self.flush(everything=bool(prep.updates))
        if prep.updates:
            self.worker.submit(_write_updates, self.conn, self._updates(prep.updates))

    def flush(self, everything: bool = False) -> None:
        """Queue rows for the worker: a notification only once the people it points at are queued, a person link
        once its person and notification are. On SQLite only whole statements are queued until the end
        (``everything``), so the driver caches a few prepared statements, not one per chunk."""
        if self.sqlite:
            def write(table, rows, columns):
                return bulk_insert(self.conn, table, rows, columns, execute=self._queue, leave_rest=not everything,
                                   rest_in_one=everything)
        else:
            def write(table, rows, columns):
                if rows:
                    self.worker.submit(bulk_insert, self.conn, table, rows, columns)
                return []
        self.people = write(Person.__table__, self.people, PERSON_COLUMNS)
        self.people_queued_upto = self.people[0][0] if self.people else self.people_top
        while self.waiting and self.waiting[0][0] <= self.people_queued_upto:
            _, notifications_needed, rows, links, links_needed, alerts = self.waiting.popleft()
            self.notifications.extend(rows)
            self.links_waiting.append((notifications_needed, links, links_needed, alerts))
        self.notifications = write(N_TABLE, self.notifications, NOTIFICATION_COLUMNS)
        queued_upto = self.notifications[0][0] if self.notifications else self.notifications_top
        while self.links_waiting and self.links_waiting[0][0] <= queued_upto:
            _, links, links_needed, alerts = self.links_waiting.popleft()
            self.links.extend(links)
            self.alerts_waiting.append((links_needed, alerts))
        self.links = write(NotificationPerson.__table__, self.links, LINK_COLUMNS)
        queued_upto = self.links[0][0] if self.links else self.links_top
        while self.alerts_waiting and self.alerts_waiting[0][0] <= queued_upto:
            self.alerts.extend(self.alerts_waiting.popleft()[1])
        self.alerts = write(ALERT_TABLE, self.alerts, ALERT_COLUMNS)

    def start_resolver(self) -> None:
        """Load the schools directory on the worker while the first chunk is parsed (files with children only)."""
        if self.alert_rows is not None and self.profile.children:
            self._resolver_job = self.worker.submit(_load_resolver, self.session, self.settings)

    def _resolver(self):
        if self._resolver_answer is None:
            if self._resolver_job is not None:
                self._resolver_answer = self.worker.result(self._resolver_job)
            else:  # after the walk (the worker is closed): changed notifications' alerts, on this thread
                self._resolver_answer = _load_resolver(self.session, self.settings)
        return self._resolver_answer[0]

    def _school_name(self, urn: str) -> str | None:
        resolver, ehe = self._resolver_answer
        school = resolver.by_urn.get(urn)
        return school.name if school is not None else ehe.get(urn)

    def _alerts(self, notification_id: int, rec: dict, children: list[dict]) -> list[tuple]:
        """The alert rows of one new notification's children (their links are new, so no alert exists yet)."""
        get = rec.get
        return self.alert_rows.rows_for(
            {"police_ref": rec["police_ref"], "incident_at": get("incident_at"), "location": get("location"),
             "postcode": get("postcode"), "circumstances": get("circumstances"), "risk": get("risk") or "not_assessed"},
            [(notification_id, c["_link_id"], c["surname"], c["forename"], c["dob"], c["school"], c["present"])
             for c in children])

    def _queue(self, statement: str, params: tuple) -> None:
        """SQLite: the worker runs the statement on the driver's own cursor (the Python work is done), so it needs
        the GIL only to bind values."""
        self.worker.submit(self.cursor.execute, statement, params)

    def _updates(self, updates: list[tuple[dict, dict, dict, dict]]) -> _Updates:
        batch_id, now = self.batch.id, self.utc_now
        history, new_links, relinked = [], [], []
        link_ids = iter(self.link_ids.take(sum(len(rec["people"][g]) for rec, _, _, pc in updates for g in pc)))
        for rec, old, changes, pchanges in updates:
            values = {fld: rec.get(fld) for fld in self.compared}
            if values.get("risk") is None and "risk" in values:
                values["risk"] = "not_assessed"
            old_people = json.loads(old["people_signature"] or "{}")
            old_people.update(_signature(rec["people"]))  # groups this profile does not carry stay as they were
            victim_id = old["victim_id"]
            if "victim" in pchanges:
                victim = rec["people"]["victim"]
                victim_id = victim[0]["_person_id"] if victim else None
            values.update(_id=old["id"], _version=old["version"], victim_id=victim_id, source_hash=rec.get("source_hash"),
                          people_signature=_to_json(old_people), last_batch_id=batch_id,
                          updated_at_utc=now, version=old["version"] + 1)
            relinked.append(values)
            for fld, (o, n) in changes.items():
                history.append({"notification_id": old["id"], "batch_id": batch_id, "field": fld,
                                "old_value": _display(o), "new_value": _display(n), "changed_at_utc": now})
            for group, (o, n) in pchanges.items():
                history.append({"notification_id": old["id"], "batch_id": batch_id, "field": group,
                                "old_value": describe_people(o), "new_value": describe_people(n),
                                "changed_at_utc": now})
                new_links.extend(_links(old["id"], {group: rec["people"][group]}, link_ids))
        # One statement per distinct set of columns (profiles differ in what they carry, rows do not).
        keys = [k for k in relinked[0] if not k.startswith("_")]
        params = [{"_id": v["_id"], "_version": v["_version"], **{f"v_{k}": v[k] for k in keys}} for v in relinked]
        replaced = {(old["id"], PERSON_GROUPS[g].value) for _, old, _, pc in updates for g in pc}
        return _Updates(params, keys, replaced, new_links, history)


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
    sha256 = hashlib.sha256(data).hexdigest()
    opened = open_file(data, file_name, encoding=profile.encoding)
    del data, source  # the reader has its own copy: ours is not held while the sheet's cells are loaded
    sheet = opened.sheet(profile.sheet)
    del opened
    result.encoding = sheet.encoding
    layout = locate_header(sheet.head(max(HEADER_SEARCH_ROWS, profile.header_row or 0)), profile)
    for missing in layout.missing_optional:
        result.warnings.append(RowIssue(layout.header_index + 1, None,
                                        f"Column {missing} is not in this file; those values are left as they were.",
                                        severity="warning"))
    if progress:
        progress(0.15, "Checking rows")
    now = now or london_now()
    with _collector_paused():
        scan = _scan(sheet, layout, profile, result)
        if not result.rows_read:
            raise FileRejected("The file has a header row but no notifications below it.")
        batch = None
        if not dry_run:
            defer_checkpoint(session)
            batch = ImportBatch(file_name=file_name, sha256=sha256, profile_name=profile.name, force=profile.force,
                                encoding=result.encoding, imported_by_id=user.id if user else None,
                                imported_by=user.username if user else actor, started_at_utc=utcnow())
            session.add(batch)
            session.flush()
            result.batch_id = batch.id
        # From here until the worker is closed, only the worker uses the session's connection.
        worker = _DbWorker()
        try:
            with _quick_thread_switches():
                job = _Import(session, worker, profile, layout, result, now, batch)
                _second_walk(job, sheet, scan, progress)
        except BaseException:
            worker.close(abandon=True)
            raise
        worker.close()
    result.errors.sort(key=lambda e: (e.row or 0, e.column or ""))
    result.warnings.sort(key=lambda w: w.row or 0)  # the header's warnings, then each notification's, in file order
    if batch is not None:
        _finish_batch(session, batch, result)
        _raise_alerts(session, job, result, user, actor, progress)
    audit.record(session, user, "import_dry_run" if dry_run else "import", "import_batch", result.batch_id,
                 username=actor, file=file_name, sha256=sha256, profile=profile.name,
                 counts={k: v for k, v in result.to_json().items() if isinstance(v, int) and k != "batch_id"})
    if progress:
        progress(1.0, "Done")
    return result


def _raise_alerts(session: Session, job: _Import, result: ImportResult, user: User | None, actor: str | None,
                  progress: Progress | None) -> None:
    """Operation Encompass: the notifications this batch created or changed get their children's alerts in the
    same transaction, so no child is ever imported without one. Those of created notifications were written with
    them; changed ones go through ``dv.encompass.generate_alerts``, which also writes the one audit row for all."""
    if progress:
        progress(0.97, "Raising Operation Encompass alerts")
    result.alerts = generate_alerts(session, job.updated_ids, user=user, actor=actor or "import", rows=job.alert_rows,
                                    notifications=result.created + result.updated)


def _second_walk(job: _Import, sheet: Sheet, scan: _Scan, progress: Progress | None) -> None:
    """Parse chunk n+1 while the worker writes chunk n."""
    job.start_resolver()
    job.stored = job.worker.call(_stored, job.conn, job.profile.force, scan.accepted)
    total, done = len(scan.accepted), 0
    pending: _Prepared | None = None
    for chunk in _batched(_groups(sheet, job.layout, scan), CHUNK_NOTIFICATIONS):
        prepared = job.prepare(chunk)
        if pending is not None:
            job.finish(pending)
        pending = prepared
        done += len(chunk)
        if progress:
            progress(0.15 + 0.8 * done / max(total, 1), f"Imported {done:,} of {total:,} notifications")
    if pending is not None:
        job.finish(pending)
    if not job.dry_run:
        job.flush(everything=True)
        if job.waiting or job.links_waiting or job.alerts_waiting:  # never silently leave rows unwritten
            raise ImportInterrupted("Nothing was imported: the import could not write every row. "
                                    "Import the file again.")


def _load_resolver(session: Session, settings) -> tuple:
    """The schools directory for resolving typed school names, and the elective home education officer's setting
    name as stored (None when it is not in the directory), as ``generate_alerts`` would read them."""
    from dv.encompass import EHE_URN, S
    from dv.schools import SchoolResolver

    resolver = SchoolResolver(session, preferred_las=list(settings.local_authorities) or None)
    ehe = dict(session.connection().execute(select(S.c.urn, S.c.name).where(S.c.urn == EHE_URN)).all())
    return resolver, ehe


def _finish_batch(session: Session, batch: ImportBatch, result: ImportResult) -> None:
    conn = session.connection()
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


_switch_lock = threading.Lock()
_switch_users = 0
_switch_saved = 0.005


@contextmanager
def _quick_thread_switches(interval: float = 0.001):
    """While the main thread parses, the worker gets the GIL back after each statement only when the interpreter
    switches threads (every 5 ms by default), so every statement would cost it up to 5 ms of waiting. A shorter
    switch interval while an import runs lets the worker keep up. The interval is process-wide: the first import
    to start sets it and the last to finish puts it back."""
    global _switch_users, _switch_saved
    with _switch_lock:
        if _switch_users == 0:
            _switch_saved = sys.getswitchinterval()
            sys.setswitchinterval(min(interval, _switch_saved))
        _switch_users += 1
    try:
        yield
    finally:
        with _switch_lock:
            _switch_users -= 1
            if _switch_users == 0:
                sys.setswitchinterval(_switch_saved)


@contextmanager
def _collector_paused():
    """An import allocates hundreds of thousands of small objects; pausing the cyclic garbage collector meanwhile
    saves ~15% (reference counting still frees everything that can be freed)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


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
            sheet = read_rows(data, file_name, sheet=profile.sheet, encoding=profile.encoding, nrows=HEADER_SEARCH_ROWS)
        except FileRejected:
            continue
        try:
            layout = locate_header(sheet.rows, profile)
        except FileRejected:
            continue
        matches.append((profile, len(layout.fields) + len(layout.children)))
    return sorted(matches, key=lambda m: -m[1])
