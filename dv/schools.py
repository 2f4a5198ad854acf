"""The schools directory (issue 6): the DfE GIAS establishments by URN, each setting's Operation Encompass key
adults, and resolving the school name a police officer typed to a URN.

* ``import_gias`` loads the GIAS download (``edubasealldata*.csv``, Windows-1252, ~130 columns, ~50,000 rows):
  the establishments of the hub's local authorities that are open (or "Open, but proposed to close"), plus the
  closed ones, kept only to explain a name match and never chosen. Upsert by URN; one audit row.
* ``normalise`` turns a school name into its ``name_key``; ``SchoolResolver`` resolves typed names with it.
* Key adults: listed, saved (version-checked), deactivated, due for review; ``key_adult_emails`` for the job that
  sends the alert notice.
* Remembered resolutions (``school_alias``): a coordinator's answer for one spelling, used for every later child.

The directory is public data (GIAS is published by the DfE); reads of it are scoped but not audited. Every change
is audited in the same transaction; refusals in their own.
"""
from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import io
import re
import unicodedata
from operator import itemgetter
from pathlib import Path

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update
from sqlmodel import Session

from core import audit
from core.db import bulk_insert, checked_update
from core.models import User
from core.scope import changeable, refuse, require, visible
from core.settings import get_settings
from core.timeutil import utcnow
from dv.models import KeyAdult, School, SchoolAlias
from dv.reading import FileRejected, decode_text

S = School.__table__
K = KeyAdult.__table__
AL = SchoolAlias.__table__
U = User.__table__

EHE_URN = "EHE"  # the council's elective home education officer (a school row made by migration 0008)

# ---------------------------------------------------------------------------------------------- normalise

CHURCH_OF_ENGLAND = ("church", "of", "england")
ROMAN_CATHOLIC = ("roman", "catholic")
# Word for word (after case, accents and punctuation are gone). Each rule is tested in tests/test_schools.py.
WORDS: dict[str, tuple[str, ...]] = {
    "st": ("saint",),  # "St", "St." -> saint
    "cofe": CHURCH_OF_ENGLAND,  # "CofE"
    "ce": CHURCH_OF_ENGLAND,  # "CE", "C.E." (the dots are gone: "c e" is a phrase below)
    "rc": ROMAN_CATHOLIC,  # "RC", "R.C." (phrase below)
    "pri": ("primary",), "prim": ("primary",),
    "sch": ("school",),
    "jnr": ("junior",), "jun": ("junior",), "juniors": ("junior",),
    "inf": ("infant",), "infants": ("infant",),
    "acad": ("academy",),
}
PHRASES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("c", "of", "e"), CHURCH_OF_ENGLAND),  # "C of E"
    (("c", "e"), CHURCH_OF_ENGLAND),  # "C.E.", "C E"
    (("r", "c"), ROMAN_CATHOLIC),  # "R.C."
)
_APOSTROPHES = dict.fromkeys(map(ord, "'’‘`´ʼ′"), None)  # deleted: "Mary's" = "Marys"
_NOT_WORD = re.compile(r"[\W_]+")


def normalise(name) -> str:
    """The key a school name is matched by. In order:

    1. case is ignored and accents are dropped ("Thérèse" = "therese");
    2. apostrophes are deleted ("St Mary's" = "St Marys", also ’ and `), "&" is "and", and every other
       punctuation mark separates words ("St.Mary's-C.E." = "st marys c e");
    3. word by word: "St"/"Saint" -> saint; "C of E", "CofE", "C.E.", "CE", "Church of England" -> church of
       england; "RC", "R.C.", "Roman Catholic" -> roman catholic; "Pri"/"Prim" -> primary; "Sch" -> school;
       "Jnr"/"Jun"/"Juniors" -> junior; "Inf"/"Infants" -> infant; "Acad" -> academy;
    4. a leading "the" and a trailing "school" are dropped ("The Sherwood Academy" = "Sherwood Academy", "Kexley
       Junior School" = "Kexley Junior"), never the last word;
    5. spaces are collapsed.

    ``normalise(normalise(x)) == normalise(x)``."""
    if name is None:
        return ""
    text = str(name).casefold()
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = text.translate(_APOSTROPHES).replace("&", " and ")
    tokens = _NOT_WORD.sub(" ", text).split()
    out: list[str] = []
    i, n = 0, len(tokens)
    while i < n:
        for phrase, replacement in PHRASES:
            if tuple(tokens[i:i + len(phrase)]) == phrase:
                out.extend(replacement)
                i += len(phrase)
                break
        else:
            out.extend(WORDS.get(tokens[i], (tokens[i],)))
            i += 1
    while len(out) > 1 and (out[0] == "the" or out[-1] == "school"):
        if out[0] == "the":
            out.pop(0)
        else:
            out.pop()
    return " ".join(out)


_HOME_EDUCATED = re.compile(
    r"^(?:(?:elective|electively) )?(?:home (?:ed|educated|education|schooled|schooling)|educated at home)"
    r"(?: e ?h ?e)?$|^e ?h ?e$")


def is_home_educated(typed: str) -> bool:
    """"Home educated", "home ed", "EHE", "E.H.E.", "Elective home education", "Home schooled" (any case or
    punctuation)."""
    return bool(_HOME_EDUCATED.match(normalise(typed)))


# Words that change when a school becomes an academy: "Brookfield School" (closed) -> "Brookfield Academy".
_TYPE_WORDS = frozenset({"the", "academy", "school", "college", "community", "foundation", "trust", "free"})


def _core_key(key: str) -> str:
    return " ".join(w for w in key.split() if w not in _TYPE_WORDS)


# ---------------------------------------------------------------------------------------------- GIAS import

OPEN_STATUSES = frozenset({"open", "open, but proposed to close"})
# GIAS column -> what it fills. All are needed: a file without one of them is not the GIAS download.
COLUMNS = {
    "URN": "urn", "LA (name)": "la_name", "EstablishmentName": "name", "TypeOfEstablishment (name)": "type_name",
    "EstablishmentStatus (name)": "status", "PhaseOfEducation (name)": "phase", "StatutoryLowAge": "low_age",
    "StatutoryHighAge": "high_age", "Town": "town", "Postcode": "postcode",
}
# The directory's fields, in the order import_gias compares and writes them.
FIELDS = ("name", "name_key", "la_name", "type_name", "status", "is_open", "phase", "low_age", "high_age",
          "postcode", "town")
_LENGTHS = {c.name: c.type.length for c in S.c if getattr(c.type, "length", None)}
# The real download is ~60 MB. Streamlit's own cap is server.maxUploadSize in .streamlit/config.toml (50 MB, for
# police extracts), not 200 MB: the Schools page asks its uploader for this cap (max_upload_size), and the server's
# maxUploadSize must be at least as large, since Streamlit's upload endpoint enforces that setting for every widget.
MAX_GIAS_BYTES = 200 * 1024 * 1024


def decode_gias(data: bytes) -> tuple[str, str]:
    """Strict decoding by the importer's own ``dv.reading.decode_text``: a UTF-8 byte-order mark wins, else UTF-8,
    else Windows-1252 (the download's own encoding). Never lenient, and one rule for every file DA Daily reads (a
    UTF-8 file with a stray byte is refused there, not garbled into Windows-1252). Returns (text, encoding used);
    the refusal is worded for the GIAS download."""
    try:
        return decode_text(data, None)
    except FileRejected as exc:  # its advice is for police extracts and their profiles; keep where the bad byte is
        found = re.search(r"byte 0x[0-9A-F]{2} on line [\d,]+", str(exc))
        where = f" (the first bad byte: {found.group(0).removeprefix('byte ')})" if found else ""
        raise FileRejected("The file's text is neither UTF-8 nor Windows-1252 (the GIAS download's encoding), or "
                           f"mixes the two{where}; it was not imported. Download edubasealldata.csv from GIAS again "
                           "and import it unchanged (do not open and re-save it first).") from exc


def _read_source(source: bytes | str | Path) -> tuple[bytes, str]:
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            if path.stat().st_size > MAX_GIAS_BYTES:
                raise FileRejected(f"The file is over {MAX_GIAS_BYTES // 2**20} MB; it was not opened.")
            return path.read_bytes(), path.name
        except OSError as exc:
            raise FileRejected(f"The file could not be read: {exc.strerror or exc}.") from None
    if len(source) > MAX_GIAS_BYTES:
        raise FileRejected(f"The file is over {MAX_GIAS_BYTES // 2**20} MB; it was not opened.")
    return bytes(source), "upload"


def _check_kind(data: bytes) -> None:
    if data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise FileRejected("This is an Excel workbook, not the GIAS CSV: download edubasealldata.csv (CSV) from GIAS.")
    if b"\x00" in data[:65536]:
        raise FileRejected("This is not a text (CSV) file.")
    if not data.strip():
        raise FileRejected("The file is empty.")


def _age(raw: str, row: int, column: str, errors: list[dict]) -> int | None:
    if raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not 0 <= value <= 99:
        errors.append({"row": row, "column": column,
                       "message": f"'{raw[:40]}' is not an age in whole years; the school is kept without it."})
        return None
    return value


def _cut(field: str, value: str | None) -> str | None:
    if not value:
        return None
    limit = _LENGTHS.get(field)
    return value[:limit] if limit else value


def import_gias(session: Session, user: User | None, source: bytes | str | Path, *, las: list[str] | None = None,
                actor: str | None = None, file_name: str | None = None) -> dict:
    """Load a GIAS establishments CSV into the directory, in ``session``'s transaction (the caller commits).

    Keeps the establishments of ``las`` (default: the ``DV_LOCAL_AUTHORITIES`` setting; none = every local
    authority): open and "Open, but proposed to close" ones as open, any other status (closed, proposed to open) with
    ``is_open`` False, kept only to explain a name match. Upsert by URN: a re-import updates names and status, an
    establishment no longer in the file is left as it is. ``user`` None is a CLI job named by ``actor``.

    Raises ``FileRejected`` (nothing written) for an unreadable file or missing columns (named). A bad row (no URN,
    no name, no status, a URN seen twice) is skipped and reported; a non-numeric age is reported and the school kept
    without it. Returns {file, encoding, rows_read, kept, created, updated, unchanged, closed_kept,
    other_status_kept, skipped_other_la, errors: [{row, column, message}]} (row: the CSV's row, the header is 1)."""
    if user is not None:
        require(session, user, "import_schools")
    data, name = _read_source(source)
    file_name = file_name or name
    _check_kind(data)
    sha256 = hashlib.sha256(data).hexdigest()
    text, encoding = decode_gias(data)
    del data
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise FileRejected("The file is empty.") from None
    except csv.Error as exc:
        raise FileRejected(f"The file is not a readable CSV ({exc}).") from None
    position = {h.strip().lstrip("\ufeff").casefold(): i for i, h in enumerate(header)}
    missing = [c for c in COLUMNS if c.casefold() not in position]
    if missing:
        raise FileRejected(
            "This is not the GIAS establishments file: it has no column " + ", ".join(f"'{c}'" for c in missing)
            + ". Download edubasealldata.csv (all establishments, all fields) from GIAS.")
    index = [position[c.casefold()] for c in COLUMNS]
    pick = itemgetter(*index)
    width = max(index) + 1
    wanted = {la.strip().casefold() for la in (get_settings().local_authorities if las is None else las)
              if la and la.strip()}
    max_rows = get_settings().max_rows

    errors: list[dict] = []
    counts = dict(rows_read=0, kept=0, created=0, updated=0, unchanged=0, closed_kept=0, other_status_kept=0,
                  skipped_other_la=0)
    keep: dict[str, tuple] = {}  # urn -> FIELDS values
    first_row: dict[str, int] = {}
    key_cache: dict[str, str] = {}
    row_no = 1
    try:
        for raw in reader:
            row_no += 1
            if not raw or not any(raw):
                continue
            counts["rows_read"] += 1
            if counts["rows_read"] > max_rows:
                raise FileRejected(f"The file has more than {max_rows:,} rows; it was not imported.")
            if len(raw) < width:
                errors.append({"row": row_no, "column": None,
                               "message": f"The row has {len(raw)} columns, the header {len(header)}; skipped."})
                continue
            urn, la_name, est_name, type_name, status, phase, low, high, town, postcode = (v.strip() for v in pick(raw))
            if wanted and la_name.casefold() not in wanted:
                counts["skipped_other_la"] += 1
                continue
            if not urn:
                errors.append({"row": row_no, "column": "URN", "message": "No URN; the row was skipped."})
                continue
            if not urn.isdigit() or len(urn) > 12:
                errors.append({"row": row_no, "column": "URN",
                               "message": f"'{urn[:40]}' is not a URN (a number); the row was skipped."})
                continue
            if urn in first_row:
                errors.append({"row": row_no, "column": "URN", "message": f"URN {urn} is also on row "
                               f"{first_row[urn]}; this row was skipped."})
                continue
            if not est_name:
                errors.append({"row": row_no, "column": "EstablishmentName", "message": "No name; skipped."})
                continue
            if not status:
                errors.append({"row": row_no, "column": "EstablishmentStatus (name)",
                               "message": "No status; skipped."})
                continue
            first_row[urn] = row_no
            low_age = _age(low, row_no, "StatutoryLowAge", errors)
            high_age = _age(high, row_no, "StatutoryHighAge", errors)
            is_open = status.casefold() in OPEN_STATUSES
            if not is_open:
                counts["closed_kept" if status.casefold() == "closed" else "other_status_kept"] += 1
            est_name = _cut("name", est_name)
            key = key_cache.get(est_name)
            if key is None:
                key = key_cache[est_name] = _cut("name_key", normalise(est_name)) or est_name.casefold()[:255]
            keep[urn] = (est_name, key, _cut("la_name", la_name), _cut("type_name", type_name),
                         _cut("status", status), is_open, _cut("phase", phase), low_age, high_age,
                         _cut("postcode", postcode), _cut("town", town))
    except csv.Error as exc:
        raise FileRejected(f"Row {row_no} is not readable CSV ({exc}); nothing was imported.") from None
    del text
    if counts["rows_read"] == 0:
        raise FileRejected("The file has a header row but no establishments below it.")

    conn = session.connection()
    stored = {r[0]: tuple(r[1:]) for r in conn.execute(select(S.c.urn, *(S.c[f] for f in FIELDS)))}
    stamp = utcnow()
    new_rows, changed = [], []
    for urn, values in keep.items():
        old = stored.get(urn)
        if old is None:
            new_rows.append((urn, *values, stamp))
        elif tuple(old) != values:
            changed.append(dict({f"b_{f}": v for f, v in zip(FIELDS, values)}, b_urn=urn, b_stamp=stamp))
    if new_rows:
        bulk_insert(conn, S, new_rows, columns=("urn", *FIELDS, "updated_at_utc"))
    if changed:
        conn.execute(update(S).where(S.c.urn == bindparam("b_urn"))
                     .values({f: bindparam(f"b_{f}") for f in FIELDS} | {"updated_at_utc": bindparam("b_stamp")}),
                     changed)
    counts.update(kept=len(keep), created=len(new_rows), updated=len(changed),
                  unchanged=len(keep) - len(new_rows) - len(changed))
    errors.sort(key=lambda e: (e["row"], e["column"] or ""))
    audit.record(session, user, "import", "school", None, username=actor, file=file_name, sha256=sha256,
                 encoding=encoding, local_authorities=sorted(wanted) or "all", counts=counts, errors=len(errors))
    return {"file": file_name, "encoding": encoding, **counts, "errors": errors}


# ---------------------------------------------------------------------------------------------- resolving names


@dataclasses.dataclass
class Resolution:
    """What a typed school name resolved to. ``certain`` only for a remembered spelling, "home educated", or one
    open school of exactly that name (normalised) in the preferred local authorities. Otherwise ``urn`` is None
    and ``candidates`` ([{urn, name, la, status, why, town}], best first) go to the coordinator's To resolve queue."""

    urn: str | None
    certain: bool
    home_educated: bool = False
    candidates: list[dict] = dataclasses.field(default_factory=list)
    reason: str = ""
    name: str | None = None  # the chosen setting's name (when urn is set)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(slots=True)
class _School:
    urn: str
    name: str
    key: str
    la: str
    la_fold: str
    status: str
    is_open: bool
    low_age: int | None
    high_age: int | None
    town: str | None


FUZZY_MIN_SCORE = 86  # rapidfuzz WRatio on name keys; below this a name is not offered
SUCCESSOR_MIN_SCORE = 90
MAX_CANDIDATES = 8
_COMMON_WORD = 300  # a word in more names than this ("primary", "saint") does not narrow a search
_EDIT_SCREEN_LIMIT = 5000  # pools up to this size are also screened by edit distance (catches misspelt words)
_EDIT_SCREEN_KEEP = 25


class _Pool:
    """Unique name keys of a set of open schools, for fuzzy search. WRatio (which also scores dropped words and
    partial names) costs ~1 µs a comparison, too slow for every key of a county, let alone the country: it runs only
    on the keys that share an uncommon word with the typed name, plus, in a pool of one county's size, the keys
    nearest by plain edit distance (~70 ns a comparison), which catch a misspelt word."""

    def __init__(self, keys: list[str]):
        self.keys = keys
        self._index: dict[str, list[int]] | None = None

    def _words(self) -> dict[str, list[int]]:
        if self._index is None:
            index: dict[str, list[int]] = {}
            for i, k in enumerate(self.keys):
                for word in set(k.split()):
                    index.setdefault(word, []).append(i)
            self._index = {w: ids for w, ids in index.items() if len(ids) <= _COMMON_WORD}
        return self._index

    def search(self, key: str, limit: int) -> list[tuple[str, float]]:
        from rapidfuzz import fuzz, process

        if not self.keys:
            return []
        index = self._words()
        ids: set[int] = set()
        for word in key.split():
            ids.update(index.get(word, ()))
        if len(self.keys) <= _EDIT_SCREEN_LIMIT:
            ids.update(i for _, _, i in process.extract(key, self.keys, scorer=fuzz.ratio, score_cutoff=60,
                                                        limit=_EDIT_SCREEN_KEEP))
        if not ids:
            return []
        choices = [self.keys[i] for i in ids]
        hits = process.extract(key, choices, scorer=fuzz.WRatio, score_cutoff=FUZZY_MIN_SCORE, limit=limit)
        return [(k, score) for k, score, _ in hits]


def _candidate(s: _School, why: str) -> dict:
    return {"urn": s.urn, "name": s.name, "la": s.la, "status": s.status, "why": why, "town": s.town}


def _few(items, shown: int = 3) -> str:
    items = list(items)
    return ", ".join(items[:shown]) + (f" and {len(items) - shown} more" if len(items) > shown else "")


class SchoolResolver:
    """Resolves typed school names against the directory, loaded once (for a whole import). A service, not a
    page's helper: it reads the public directory without a user. ``preferred_las`` default: the
    ``DV_LOCAL_AUTHORITIES`` setting (none = every local authority counts as the hub's own).

    Rules, in order (``resolve``):

    1. blank -> no school (not certain, "no school given");
    2. "home educated", "home ed", "EHE", "elective home education" -> the elective home education officer
       (URN "EHE"), certain;
    3. a remembered spelling -> its school, certain (unless that school has since closed);
    4. exactly one open school of that normalised name in the preferred local authorities -> certain;
       several -> not certain, all of them; only outside them -> not certain ("other local authority");
    5. only a closed school has the name -> never chosen; its successor (an open school of the same local
       authority with the same name but for academy/school/college, or a very similar one) is offered as
       "closed school's successor?";
    6. otherwise similar names (rapidfuzz WRatio >= 86 on the name keys), the preferred local authorities first
       -> not certain.
    """

    def __init__(self, session: Session, *, preferred_las: list[str] | tuple[str, ...] | None = None):
        conn = session.connection()
        las = get_settings().local_authorities if preferred_las is None else preferred_las
        self.preferred = frozenset(la.strip().casefold() for la in las if la and la.strip())
        self.by_urn: dict[str, _School] = {}
        self.by_key: dict[str, list[_School]] = {}
        open_by_core: dict[str, list[_School]] = {}
        open_by_la: dict[str, list[_School]] = {}
        pref_keys: dict[str, None] = {}
        other_keys: dict[str, None] = {}
        rows = conn.execute(select(S.c.urn, S.c.name, S.c.name_key, S.c.la_name, S.c.status, S.c.is_open,
                                   S.c.low_age, S.c.high_age, S.c.town).where(S.c.urn != EHE_URN))
        for urn, name, key, la, status, is_open, low, high, town in rows:
            s = _School(urn, name, key, la or "", (la or "").casefold(), status, bool(is_open), low, high, town)
            self.by_urn[urn] = s
            self.by_key.setdefault(key, []).append(s)
            if s.is_open:
                open_by_core.setdefault(_core_key(key), []).append(s)
                open_by_la.setdefault(s.la_fold, []).append(s)
                (pref_keys if self._preferred(s) else other_keys)[key] = None
        self._open_by_core = open_by_core
        self._open_by_la = open_by_la
        self._pref_pool = _Pool(list(pref_keys))
        self._other_pool = _Pool([k for k in other_keys if k not in pref_keys])
        self.aliases: dict[str, str] = dict(conn.execute(select(AL.c.name_key, AL.c.school_urn)).all())
        ehe = conn.execute(select(S.c.name).where(S.c.urn == EHE_URN)).scalar()
        self._ehe_name = ehe or "Elective home education officer"
        self._cache: dict[str, Resolution] = {}

    def _preferred(self, s: _School) -> bool:
        return not self.preferred or s.la_fold in self.preferred

    def info(self, urn: str) -> dict | None:
        """The loaded school (urn, name, la, status, is_open, low_age, high_age), or None."""
        s = self.by_urn.get(urn)
        return None if s is None else {"urn": s.urn, "name": s.name, "la": s.la, "status": s.status,
                                       "is_open": s.is_open, "low_age": s.low_age, "high_age": s.high_age}

    def resolve(self, typed: str | None) -> Resolution:
        """Resolve one typed name (cached per distinct spelling; each call gets its own copy)."""
        typed = "" if typed is None else str(typed)
        hit = self._cache.get(typed)
        if hit is None:
            key = normalise(typed)
            hit = self._cache.get("\0" + key)
            if hit is None:
                hit = self._cache["\0" + key] = self._resolve_key(key)
            self._cache[typed] = hit
        return dataclasses.replace(hit, candidates=[dict(c) for c in hit.candidates])

    def _resolve_key(self, key: str) -> Resolution:
        if not key:
            return Resolution(None, False, reason="no school given")
        if _HOME_EDUCATED.match(key):
            return Resolution(EHE_URN, True, home_educated=True, name=self._ehe_name,
                              reason="home educated: the elective home education officer")
        closed_note = ""
        alias = self.aliases.get(key)
        if alias is not None:
            if alias == EHE_URN:
                return Resolution(EHE_URN, True, home_educated=True, name=self._ehe_name,
                                  reason="remembered spelling: home educated")
            s = self.by_urn.get(alias)
            if s is not None and s.is_open:
                return Resolution(s.urn, True, name=s.name, reason=f"remembered spelling ({s.la})")
            closed_note = (f"the remembered school for this spelling, URN {alias}, is "
                           f"{'closed' if s is not None else 'no longer in the directory'}; ")
        matches = self.by_key.get(key, ())
        open_m = [s for s in matches if s.is_open]
        closed_m = [s for s in matches if not s.is_open]
        if alias is not None and alias in self.by_urn and not self.by_urn[alias].is_open \
                and self.by_urn[alias] not in closed_m:
            closed_m.append(self.by_urn[alias])
        if open_m:
            inside = [s for s in open_m if self._preferred(s)]
            outside = [s for s in open_m if not self._preferred(s)]
            las_considered = {s.la_fold for s in (inside or outside)}
            near = [c for c in closed_m if c.la_fold in las_considered]  # closed namesakes where the match is
            namesakes = "" if not near else (
                f" (closed, never chosen: the school of the same name with URN {_few(c.urn for c in near)})"
                if len(near) == 1 else f" (closed, never chosen: {len(near)} schools of the same name, URN "
                                       f"{_few(c.urn for c in near)})")
            if len(inside) == 1 and not closed_note:
                s = inside[0]
                return Resolution(s.urn, True, name=s.name, reason=f"exact name match in {s.la}{namesakes}")
            if len(inside) >= 1:
                cands = [_candidate(s, f"same name ({s.la})") for s in inside]
                cands += [_candidate(s, "same name, other local authority") for s in outside]
                reason = (f"{closed_note}exact name match" if len(inside) == 1
                          else f"{closed_note}{len(inside)} open schools have this name")
                return Resolution(None, False, candidates=cands[:MAX_CANDIDATES], reason=reason + namesakes)
            cands = [_candidate(s, "other local authority") for s in outside]
            return Resolution(None, False, candidates=cands[:MAX_CANDIDATES],
                              reason=f"{closed_note}the only open school of this name is outside the hub's local "
                                     f"authorities{namesakes}" if len(outside) == 1 else
                                     f"{closed_note}{len(outside)} open schools of this name, all outside the hub's "
                                     f"local authorities{namesakes}")
        cands: list[dict] = []
        seen: set[str] = set()
        reason = closed_note
        if closed_m:
            for c in closed_m:
                for s in self._successors(c):
                    if s.urn not in seen:
                        seen.add(s.urn)
                        cands.append(_candidate(s, "closed school's successor?"))
            listed = _few([f"{c.name} (URN {c.urn}, {c.la})" for c in closed_m])
            reason += f"only a closed school has this name: {listed}; a closed school is never chosen"
            reason += "; its successor is offered" if cands else ""
        for s, score, why in self._similar(key):
            if s.urn not in seen and len(cands) < MAX_CANDIDATES:
                seen.add(s.urn)
                cands.append(_candidate(s, why))
        if not closed_m:
            reason += "no exact match; similar names offered" if cands else "no school matches this name"
        return Resolution(None, False, candidates=cands, reason=reason)

    def _successors(self, closed: _School) -> list[_School]:
        """Open schools of the closed one's local authority with the same name but for academy/school/college, or
        a very similar name."""
        from rapidfuzz import fuzz, process

        same_la = [s for s in self._open_by_core.get(_core_key(closed.key), ()) if s.la_fold == closed.la_fold]
        if same_la:
            return same_la[:3]
        pool = self._open_by_la.get(closed.la_fold, [])
        hits = process.extract(closed.key, [s.key for s in pool], scorer=fuzz.token_set_ratio,
                               score_cutoff=SUCCESSOR_MIN_SCORE, limit=3)
        return [pool[i] for _, _, i in hits]

    def _similar(self, key: str) -> list[tuple[_School, float, str]]:
        out: list[tuple[_School, float, str]] = []
        for k, score in self._pref_pool.search(key, MAX_CANDIDATES):
            for s in self.by_key.get(k, ()):
                if s.is_open and self._preferred(s):
                    out.append((s, score, f"similar name ({score:.0f}%)"))
        if not out:
            for k, score in self._other_pool.search(key, MAX_CANDIDATES):
                for s in self.by_key.get(k, ()):
                    if s.is_open and not self._preferred(s):
                        out.append((s, score, f"similar name ({score:.0f}%), other local authority"))
        out.sort(key=lambda t: -t[1])
        return out[:MAX_CANDIDATES]


# ---------------------------------------------------------------------------------------------- remembered spellings


def _school_row(conn, urn: str):
    return conn.execute(select(S.c.urn, S.c.name, S.c.is_open, S.c.status).where(S.c.urn == urn)).first()


class AliasConflict(Exception):
    """A remembered spelling was remembered, re-pointed or forgotten by someone else after the coordinator saw it
    (``current``: what is stored now, as ``remembered_spelling`` gives it; None when it is no longer remembered).
    Without the check the last of two coordinators would silently redirect every later child with that spelling,
    or "Forget" delete a mapping a colleague had just re-pointed."""

    def __init__(self, current: dict | None):
        now = (f"It now goes to {current['school']} (URN {current['urn']})." if current
               else "It is no longer remembered.")
        super().__init__(f"The remembered spelling was changed by someone else after you opened it. {now} Nothing "
                         "was saved: look again, and make your change again if it is still needed.")
        self.current = current


def remembered_spelling(session: Session, user: User | None, typed: str | None) -> dict | None:
    """The remembered school of a spelling (``typed`` or its name key), as a page shows it before a change:
    {id, name_key, urn, school, version}; None when none is remembered (or the user may not see them)."""
    key = normalise(typed or "")
    if not key:
        return None
    row = session.connection().execute(
        select(AL.c.id, AL.c.name_key, AL.c.school_urn.label("urn"), S.c.name.label("school"), AL.c.version)
        .outerjoin(S, S.c.urn == AL.c.school_urn)
        .where(AL.c.name_key == key, visible(user, "school_alias"))).mappings().first()
    return dict(row) if row else None


def _alias_conflict(session: Session, user: User | None, key: str) -> AliasConflict:
    """Roll back what the attempt did and return the conflict with what is stored now."""
    session.rollback()
    return AliasConflict(remembered_spelling(session, user, key))


def remember_resolution(session: Session, user: User | None, typed: str, urn: str, *,
                        expected_version: int | None = None) -> dict:
    """Remember that ``typed`` (any spelling with the same normalised key) means the open school ``urn``.
    Refuses (ValueError) a blank name, an unknown URN or a closed school. Audited. Returns {name_key, urn}.

    ``expected_version``: the version of the spelling's remembered school the coordinator saw
    (``remembered_spelling``), None when they saw none. Remembered or re-pointed by someone else since:
    ``AliasConflict`` and nothing written (the caller's transaction is rolled back)."""
    require(session, user, "manage_schools")
    key = normalise(typed)
    if not key:
        raise ValueError("Give the school name as it was typed.")
    urn = (urn or "").strip()
    school = _school_row(session.connection(), urn)
    if school is None:
        raise ValueError(f"No school has URN {urn}.")
    if not school.is_open:
        raise ValueError(f"{school.name} (URN {urn}) is {school.status.lower()}: a closed school is never chosen.")
    conn = session.connection()
    old = conn.execute(select(AL.c.id, AL.c.school_urn, AL.c.version).where(AL.c.name_key == key)).first()
    if old is not None and old.school_urn == urn:
        return {"name_key": key, "urn": urn}  # the same answer: nothing is overwritten
    if (old.version if old is not None else None) != expected_version:
        raise _alias_conflict(session, user, key)
    if old is None:
        from sqlalchemy.exc import IntegrityError

        try:
            alias_id = conn.execute(insert(AL).values(name_key=key, school_urn=urn, created_by_id=user.id,
                                                      created_at_utc=utcnow(), version=1)).inserted_primary_key[0]
        except IntegrityError:  # PostgreSQL: a colleague remembered it in between (unique name_key)
            raise _alias_conflict(session, user, key) from None
    else:
        alias_id = old.id
        if not checked_update(session, update(AL).where(AL.c.id == old.id, AL.c.version == expected_version,
                                                        changeable(user, "school_alias"))
                              .values(school_urn=urn, created_by_id=user.id, created_at_utc=utcnow(),
                                      version=AL.c.version + 1)):
            raise _alias_conflict(session, user, key)
    audit.record(session, user, "change", "school_alias", alias_id, typed=typed, name_key=key,
                 old={"school_urn": old.school_urn} if old else None, new={"school_urn": urn})
    return {"name_key": key, "urn": urn}


def forget_resolution(session: Session, user: User | None, typed: str, *, expected_version: int) -> bool:
    """Forget the remembered school of a spelling (``typed`` or its name key). True when one was forgotten; False
    when none is remembered. ``expected_version``: the version the coordinator saw (``list_resolutions``); re-pointed
    by someone else since: ``AliasConflict`` and nothing deleted."""
    require(session, user, "manage_schools")
    key = normalise(typed)
    conn = session.connection()
    old = conn.execute(select(AL.c.id, AL.c.school_urn).where(AL.c.name_key == key,
                                                              visible(user, "school_alias"))).first()
    if old is None:
        return False
    if conn.execute(delete(AL).where(AL.c.id == old.id, AL.c.version == expected_version,
                                     changeable(user, "school_alias"))).rowcount != 1:
        raise _alias_conflict(session, user, key)
    audit.record(session, user, "change", "school_alias", old.id, name_key=key,
                 old={"school_urn": old.school_urn}, new=None)
    return True


def list_resolutions(session: Session, user: User | None) -> list[dict]:
    """The remembered spellings the user may see: {id, name_key, urn, school, la, created_by, created_at_utc,
    version}."""
    stmt = (select(AL.c.id, AL.c.name_key, AL.c.school_urn.label("urn"), S.c.name.label("school"),
                   S.c.la_name.label("la"), U.c.display_name.label("created_by"), AL.c.created_at_utc, AL.c.version)
            .join(S, S.c.urn == AL.c.school_urn).outerjoin(U, U.c.id == AL.c.created_by_id)
            .where(visible(user, "school_alias"), visible(user, "school")).order_by(AL.c.name_key))
    return [dict(r) for r in session.connection().execute(stmt).mappings()]


# ---------------------------------------------------------------------------------------------- directory reads

_SCHOOL_COLUMNS = (S.c.urn, S.c.name, S.c.la_name, S.c.type_name, S.c.status, S.c.is_open, S.c.phase, S.c.low_age,
                   S.c.high_age, S.c.postcode, S.c.town)


def school_by_urn(session: Session, user: User | None, urn: str) -> dict | None:
    row = session.connection().execute(
        select(*_SCHOOL_COLUMNS).where(S.c.urn == str(urn).strip(), visible(user, "school"))).mappings().first()
    return dict(row) if row else None


def search_schools(session: Session, user: User | None, text: str, limit: int = 20, *,
                   open_only: bool = False) -> list[dict]:
    """Schools whose URN is ``text``, or whose normalised name contains every word of it; open ones first."""
    text = (text or "").strip()
    words = normalise(text).split()
    if not text or (not words and not text.isdigit()):
        return []
    match = S.c.urn == text
    if words:
        match = or_(match, and_(*(S.c.name_key.contains(w, autoescape=True) for w in words)))
    stmt = select(*_SCHOOL_COLUMNS).where(match, visible(user, "school"))
    if open_only:
        stmt = stmt.where(S.c.is_open.is_(True))
    stmt = stmt.order_by(S.c.is_open.desc(), S.c.name, S.c.urn).limit(max(1, min(int(limit), 500)))
    return [dict(r) for r in session.connection().execute(stmt).mappings()]


# ---------------------------------------------------------------------------------------------- key adults

_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
_PHONE = re.compile(r"^\+?[0-9 ()\-]{6,30}(?:\s*(?:ext\.?|x)\s*[0-9]{1,6})?$", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class KeyAdultConflict(Exception):
    """The key adult was changed by someone else after the editor loaded it. ``current`` holds what is stored."""

    def __init__(self, current: dict):
        super().__init__("This key adult was changed by someone else after you opened it. Their version is shown; "
                         "make your change again if it is still needed.")
        self.current = current


def _key_adult_select():
    return (select(K.c.id, K.c.school_urn.label("urn"), S.c.name.label("school"), K.c.name, K.c.email, K.c.phone,
                   K.c.review_date, K.c.active, K.c.version, K.c.updated_at_utc)
            .join(S, S.c.urn == K.c.school_urn))


def get_key_adult(session: Session, user: User | None, key_adult_id: int) -> dict | None:
    row = session.connection().execute(_key_adult_select().where(
        K.c.id == key_adult_id, visible(user, "key_adult"))).mappings().first()
    return dict(row) if row else None


def list_key_adults(session: Session, user: User | None, urn: str | None = None, *,
                    include_inactive: bool = False) -> list[dict]:
    """Key adults the user may see ({id, urn, school, name, email, phone, review_date, active, version}), of one
    school or all, by school then name."""
    stmt = _key_adult_select().where(visible(user, "key_adult"))
    if urn is not None:
        stmt = stmt.where(K.c.school_urn == str(urn).strip())
    if not include_inactive:
        stmt = stmt.where(K.c.active.is_(True))
    stmt = stmt.order_by(S.c.name, K.c.school_urn, K.c.name, K.c.id)
    return [dict(r) for r in session.connection().execute(stmt).mappings()]


def _clean_key_adult(name, email, phone, review_date) -> dict:
    name = " ".join((name or "").split())
    if not name:
        raise ValueError("Give the key adult's name.")
    if len(name) > 200 or _CONTROL.search(name):
        raise ValueError("The name is too long or has control characters.")
    email = (email or "").strip()
    if not email:
        raise ValueError("Give the key adult's email: the alert notice is sent to it.")
    if len(email) > 320 or not _EMAIL.match(email) or ".." in email:
        raise ValueError(f"'{email[:80]}' is not an email address.")
    phone = " ".join((phone or "").split()) or None
    if phone is not None and not _PHONE.match(phone):
        raise ValueError(f"'{phone[:40]}' is not a telephone number (digits, spaces, + ( ) -).")
    if isinstance(review_date, dt.datetime):
        review_date = review_date.date()
    if not isinstance(review_date, dt.date):
        raise ValueError("Give the date by which this key adult is to be reviewed.")
    return {"name": name, "email": email, "phone": phone, "review_date": review_date}


def _key_adult_urn(conn, key_adult_id: int) -> str | None:
    return conn.execute(select(K.c.school_urn).where(K.c.id == key_adult_id)).scalar()


def _text(v):
    return v.isoformat() if isinstance(v, dt.date) else v


def save_key_adult(session: Session, user: User | None, *, urn: str, name: str, email: str, phone: str | None,
                   review_date: dt.date, key_adult_id: int | None = None,
                   expected_version: int | None = None) -> dict:
    """Add a key adult to the open school ``urn`` (``key_adult_id`` None), or change one (``key_adult_id`` and the
    ``expected_version`` the editor saw). ValueError for a missing name, an invalid email or phone, no review date,
    an unknown or closed school; ``KeyAdultConflict`` when someone saved it in between; refused and audited outside
    ``manage_schools`` or for an id the user may not change. Audited with old and new values."""
    if not can_manage(user):
        raise refuse(session, user, "manage_schools", "key_adult", key_adult_id)
    values = _clean_key_adult(name, email, phone, review_date)
    conn = session.connection()
    school = _school_row(conn, (urn or "").strip())
    if school is None:
        raise ValueError(f"No school has URN {urn}.")
    values["school_urn"] = school.urn
    if not school.is_open and (key_adult_id is None or _key_adult_urn(conn, key_adult_id) != school.urn):
        raise ValueError(f"{school.name} is {school.status.lower()}: key adults are added to open settings only.")
    if key_adult_id is None:
        new_id = conn.execute(insert(K).values(**values, active=True, version=1,
                                               updated_at_utc=utcnow())).inserted_primary_key[0]
        audit.record(session, user, "change", "key_adult", new_id, new={k: _text(v) for k, v in values.items()})
        return get_key_adult(session, user, new_id)
    if expected_version is None:
        raise ValueError("expected_version is needed to change a key adult.")
    old = get_key_adult(session, user, key_adult_id)
    if old is None:
        raise refuse(session, user, "change_key_adult", "key_adult", key_adult_id)
    before = {"school_urn": old["urn"], **{k: old[k] for k in ("name", "email", "phone", "review_date")}}
    changed = {k: v for k, v in values.items() if before[k] != v}
    if not changed:
        if old["version"] != expected_version:
            raise KeyAdultConflict(old)
        return old
    if not checked_update(session, update(K).where(K.c.id == key_adult_id, K.c.version == expected_version,
                                                   changeable(user, "key_adult"))
                          .values(**changed, version=K.c.version + 1, updated_at_utc=utcnow())):
        current = get_key_adult(session, user, key_adult_id)
        session.rollback()
        if current is None:
            raise refuse(session, user, "change_key_adult", "key_adult", key_adult_id)
        raise KeyAdultConflict(current)
    audit.record(session, user, "change", "key_adult", key_adult_id,
                 old={k: _text(before[k]) for k in changed}, new={k: _text(v) for k, v in changed.items()})
    return get_key_adult(session, user, key_adult_id)


def deactivate_key_adult(session: Session, user: User | None, key_adult_id: int, *, expected_version: int) -> dict:
    """The key adult no longer receives alert notices (kept for the record). Version-checked and audited."""
    if not can_manage(user):
        raise refuse(session, user, "manage_schools", "key_adult", key_adult_id)
    old = get_key_adult(session, user, key_adult_id)
    if old is None:
        raise refuse(session, user, "change_key_adult", "key_adult", key_adult_id)
    if not old["active"] and old["version"] == expected_version:
        return old
    if not checked_update(session, update(K).where(K.c.id == key_adult_id, K.c.version == expected_version,
                                                   changeable(user, "key_adult"))
                          .values(active=False, version=K.c.version + 1, updated_at_utc=utcnow())):
        current = get_key_adult(session, user, key_adult_id)
        session.rollback()
        if current is None:
            raise refuse(session, user, "change_key_adult", "key_adult", key_adult_id)
        raise KeyAdultConflict(current)
    audit.record(session, user, "change", "key_adult", key_adult_id, old={"active": True}, new={"active": False})
    return get_key_adult(session, user, key_adult_id)


def key_adults_due_review(session: Session, user: User | None, today: dt.date, *, within_days: int = 0) -> list[dict]:
    """Active key adults whose review date is on or before ``today`` + ``within_days`` (or has never been set),
    soonest first."""
    due = today + dt.timedelta(days=within_days)
    stmt = (_key_adult_select().where(visible(user, "key_adult"), K.c.active.is_(True),
                                      or_(K.c.review_date.is_(None), K.c.review_date <= due))
            .order_by(K.c.review_date.is_not(None), K.c.review_date, S.c.name, K.c.name))
    return [dict(r) for r in session.connection().execute(stmt).mappings()]


def key_adult_emails(conn, urn: str) -> list[str]:
    """The active key adults' email addresses of ``urn`` (the alert notice's recipients), for the scheduled job:
    no user, no audit (the caller audits what it sends). ``conn`` is a Connection or a Session."""
    if isinstance(conn, Session):
        conn = conn.connection()
    rows = conn.execute(select(K.c.email).where(K.c.school_urn == urn, K.c.active.is_(True),
                                                K.c.email.is_not(None)).order_by(K.c.id)).scalars()
    seen: dict[str, None] = {}
    for email in rows:
        if email and email.casefold() not in {e.casefold() for e in seen}:
            seen[email] = None
    return list(seen)


def can_manage(user: User | None) -> bool:
    from core.scope import can

    return can(user, "manage_schools")


def count_schools(session: Session, user: User | None) -> dict:
    """{open, closed} in the directory the user may see (not counting the elective home education officer)."""
    rows = session.connection().execute(select(S.c.is_open, func.count()).where(
        visible(user, "school"), S.c.urn != EHE_URN).group_by(S.c.is_open)).all()
    counts = {bool(o): n for o, n in rows}
    return {"open": counts.get(True, 0), "closed": counts.get(False, 0)}
