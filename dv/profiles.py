"""Import profiles: TOML files that map one force's extract layout to DA Daily's fields.

See ``data/profiles/TEMPLATE.toml.txt`` for the commented format.
"""
from __future__ import annotations

import logging
import os
import re
import secrets
import tomllib
from functools import lru_cache
from dataclasses import dataclass, field
from pathlib import Path

from core.settings import get_settings

log = logging.getLogger(__name__)

PERSON_PARTS = ("name", "surname", "forename", "dob", "gender", "person_id", "address")

# DA Daily field -> what it means (shown in the profile builder and checked when a profile loads)
FIELDS: dict[str, str] = {
    "police_ref": "Police reference (occurrence / incident number) – required",
    "crime_ref": "Crime reference number",
    "classification": "Classification as given (crime / non-crime / incident)",
    "offence": "Offence description",
    "ho_code": "Home Office offence code (e.g. 8N, 105A, 8U)",
    "incident_at": "Incident date and time (one column)",
    "incident_date": "Incident date (with incident_time)",
    "incident_time": "Incident time (with incident_date)",
    "reported_at": "Reported date and time (one column)",
    "reported_date": "Reported date (with reported_time)",
    "reported_time": "Reported time (with reported_date)",
    "location": "Location of the incident",
    "postcode": "Postcode of the incident",
    "risk": "DASH / DARA risk grade",
    "dash_score": "DASH score (number of ticks)",
    "flag_pregnancy": "Pregnancy flag (yes/no)",
    "flag_strangulation": "Strangulation / non-fatal strangulation flag (yes/no)",
    "flag_weapons": "Weapons flag (yes/no)",
    "flags": "A list of flags in one column (see [values.flags])",
    "officer": "Attending / reporting officer",
    "circumstances": "Brief circumstances (free text)",
    "relationship": "Relationship between victim and perpetrator",
}
for _who in ("victim", "perpetrator"):
    for _part in PERSON_PARTS:
        FIELDS[f"{_who}_{_part}"] = f"{_who.capitalize()}: {_part.replace('_', ' ')}"

CHILD_PARTS = ("name", "surname", "forename", "dob", "gender", "school", "present")
LAYOUTS = ("wide", "list", "rows")

DEFAULT_YES = ["y", "yes", "true", "1", "x", "present"]
DEFAULT_NO = ["n", "no", "false", "0", "not present", "absent"]
DEFAULT_RISK = {
    "high": ["high", "h"],
    "medium": ["medium", "med", "m"],
    "standard": ["standard", "std", "s", "low"],
    "not_assessed": ["not assessed", "n/a", "na", "refused", "not known", "unknown", "-"],
}
DEFAULT_CLASSIFICATION = {
    "crime": ["crime", "crimed", "recorded crime"],
    "non_crime": ["non-crime", "non crime", "noncrime", "incident", "non-crime incident"],
}
DEFAULT_FLAGS = {
    "pregnancy": ["pregnancy", "pregnant"],
    "strangulation": ["strangulation", "non-fatal strangulation", "nfs", "choking"],
    "weapons": ["weapon", "weapons", "knife"],
}


class ProfileError(ValueError):
    """The profile itself is wrong or cannot be found."""


def norm_header(text: object) -> str:
    """Headers (and value spellings) compare trimmed, case-insensitively and with runs of white space folded."""
    if text is None:
        return ""
    if isinstance(text, str):
        return _norm_str(text)
    return _norm_str(str(text))


@lru_cache(maxsize=4096)  # the same few spellings ("High", "Y") on every row
def _norm_str(text: str) -> str:
    return " ".join(text.split()).casefold()


def _norm_values(mapping: dict, defaults: dict) -> dict[str, str]:
    """{'high': ['High','H']} -> {'high': 'high', 'h': 'high'}; the profile's spellings win over defaults."""
    out: dict[str, str] = {}
    for canonical, spellings in defaults.items():
        for s in spellings:
            out[norm_header(s)] = canonical
    for canonical, spellings in mapping.items():
        if isinstance(spellings, str):
            spellings = [spellings]
        for s in spellings:
            out[norm_header(s)] = canonical
    return out


@dataclass(frozen=True)
class ChildrenSpec:
    layout: str
    max: int
    columns: dict[str, str]  # part -> header (wide: with {n})
    separator: str = ";"

    def headers(self) -> dict[str, list[str]]:
        """part -> the concrete headers it occupies."""
        if self.layout == "wide":
            return {p: [h.replace("{n}", str(n)) for n in range(1, self.max + 1)] for p, h in self.columns.items()}
        return {p: [h] for p, h in self.columns.items()}


@dataclass(frozen=True)
class Profile:
    name: str
    force: str
    columns: dict[str, str]
    path: Path | None = None
    sheet: str | None = None
    header_row: int | None = None
    encoding: str | None = None
    date_formats: tuple[str, ...] = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")
    time_formats: tuple[str, ...] = ("%H:%M:%S", "%H:%M", "%H%M")
    risk_values: dict[str, str] = field(default_factory=lambda: _norm_values({}, DEFAULT_RISK))
    classification_values: dict[str, str] = field(default_factory=lambda: _norm_values({}, DEFAULT_CLASSIFICATION))
    flag_values: dict[str, str] = field(default_factory=lambda: _norm_values({}, DEFAULT_FLAGS))
    yes_values: frozenset[str] = frozenset(DEFAULT_YES)
    no_values: frozenset[str] = frozenset(DEFAULT_NO)
    children: ChildrenSpec | None = None
    fingerprint: str = ""  # hash of the profile's content: a row imported under another mapping is re-read

    def carries(self, fld: str) -> bool:
        return fld in self.columns

    def required_headers(self) -> dict[str, str]:
        """DA Daily field -> header that must be in the file."""
        req = {"police_ref": self.columns["police_ref"]}
        for group in (("incident_at",), ("incident_date",)):
            if group[0] in self.columns:
                req[group[0]] = self.columns[group[0]]
        for f in ("incident_time", "victim_name", "victim_surname", "victim_forename"):
            if f in self.columns:
                req[f] = self.columns[f]
        return req

    def all_headers(self) -> list[str]:
        heads = list(self.columns.values())
        if self.children:
            for hs in self.children.headers().values():
                heads.extend(hs)
        return heads


def parse_profile(data: dict, path: Path | None = None) -> Profile:
    where = f" in {path.name}" if path else ""
    head = data.get("profile") or {}
    cols = data.get("columns") or {}
    if not head.get("name") or not head.get("force"):
        raise ProfileError(f"The profile{where} needs [profile] name and force.")
    unknown = sorted(set(cols) - set(FIELDS))
    if unknown:
        raise ProfileError(f"Unknown DA Daily field(s){where}: {', '.join(unknown)}. Known fields: {', '.join(FIELDS)}.")
    if "police_ref" not in cols:
        raise ProfileError(f"The profile{where} must map police_ref.")
    if "incident_at" not in cols and "incident_date" not in cols:
        raise ProfileError(f"The profile{where} must map incident_at, or incident_date (+ incident_time).")
    if "victim_name" not in cols and "victim_surname" not in cols:
        raise ProfileError(f"The profile{where} must map victim_name, or victim_surname + victim_forename.")
    for k, v in cols.items():
        if not isinstance(v, str) or not v.strip():
            raise ProfileError(f"Column {k}{where} must be a header name.")
    values = data.get("values") or {}
    for k in values:
        if k not in ("risk", "classification", "flags", "yes_no"):
            raise ProfileError(f"Unknown [values.{k}]{where}; use risk, classification, flags or yes_no.")
    risk_map = values.get("risk") or {}
    bad = set(risk_map) - {"high", "medium", "standard", "not_assessed"}
    if bad:
        raise ProfileError(f"[values.risk]{where} may only map high, medium, standard, not_assessed (not {', '.join(sorted(bad))}).")
    cls_map = values.get("classification") or {}
    bad = set(cls_map) - {"crime", "non_crime"}
    if bad:
        raise ProfileError(f"[values.classification]{where} may only map crime and non_crime.")
    yes_no = values.get("yes_no") or {}
    children = None
    ch = data.get("children")
    if ch:
        layout = ch.get("layout", "wide")
        if layout not in LAYOUTS:
            raise ProfileError(f"[children] layout{where} must be one of {', '.join(LAYOUTS)}.")
        parts = {p: ch[p] for p in CHILD_PARTS if ch.get(p)}
        if "name" not in parts and "surname" not in parts:
            raise ProfileError(f"[children]{where} must map name (or surname + forename).")
        if layout == "wide" and not all("{n}" in h for h in parts.values()):
            raise ProfileError(f"[children] layout 'wide'{where}: every header needs {{n}}, e.g. \"Child {{n}} Name\".")
        children = ChildrenSpec(layout=layout, max=int(ch.get("max", 6)), columns=parts, separator=ch.get("separator", ";"))
    kwargs = {}
    if head.get("date_formats"):
        kwargs["date_formats"] = tuple(head["date_formats"])
    if head.get("time_formats"):
        kwargs["time_formats"] = tuple(head["time_formats"])
    header_row = head.get("header_row")
    if header_row is not None and (not isinstance(header_row, int) or header_row < 1):
        raise ProfileError(f"header_row{where} must be a row number from 1.")
    import hashlib
    import json

    return Profile(
        fingerprint=hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16],
        name=str(head["name"]),
        force=str(head["force"]),
        columns={k: v.strip() for k, v in cols.items()},
        path=path,
        sheet=head.get("sheet"),
        header_row=header_row,
        encoding=head.get("encoding"),
        risk_values=_norm_values(risk_map, DEFAULT_RISK),
        classification_values=_norm_values(cls_map, DEFAULT_CLASSIFICATION),
        flag_values=_norm_values(values.get("flags") or {}, DEFAULT_FLAGS),
        yes_values=frozenset(norm_header(v) for v in (yes_no.get("yes") or DEFAULT_YES)),
        no_values=frozenset(norm_header(v) for v in (yes_no.get("no") or DEFAULT_NO)),
        children=children,
        **kwargs,
    )


def load_profile_file(path: Path) -> Profile:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProfileError(f"No profile file at {path}.") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(f"The profile {path.name} is not valid TOML: {exc}") from None
    return parse_profile(data, path)


def list_profiles(directory: Path | None = None, problems: list[str] | None = None) -> list[Profile]:
    """Every profile that loads. One unreadable file (hand-edited badly, or half-copied in) must not stop imports
    with every other profile: it is skipped, and what is wrong with it is appended to ``problems`` (the Import page
    shows them) or, when no list is given, logged as a warning."""
    directory = directory or get_settings().profiles_dir
    profiles = []
    for path in sorted(Path(directory).glob("*.toml")):
        try:
            profiles.append(load_profile_file(path))
        except (ProfileError, OSError) as exc:
            message = f"The profile file {path.name} was skipped: {exc}"
            if problems is None:
                log.warning(message)
            else:
                problems.append(message)
    return profiles


def load_profile(name_or_path: str, directory: Path | None = None) -> Profile:
    """A profile by file path, by file stem (``niche_wide``) or by its [profile] name."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" and candidate.exists():
        return load_profile_file(candidate)
    directory = Path(directory or get_settings().profiles_dir)
    by_stem = directory / f"{name_or_path}.toml"
    if by_stem.exists():
        return load_profile_file(by_stem)
    for prof in list_profiles(directory):
        if prof.name.casefold() == name_or_path.strip().casefold():
            return prof
    known = ", ".join(f"{p.path.stem if p.path else p.name} ({p.name})" for p in list_profiles(directory)) or "none"
    raise ProfileError(f"Unknown profile '{name_or_path}'. Known profiles: {known}.")


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.casefold()).strip("_")[:60] or "profile"


def profile_to_toml(name: str, force: str, columns: dict[str, str], children: dict | None = None,
                    header_row: int | None = None, sheet: str | None = None) -> str:
    """TOML text for a profile built in the Import page's form."""
    import tomli_w

    data: dict = {"profile": {"name": name, "force": force}, "columns": dict(columns)}
    if header_row:
        data["profile"]["header_row"] = header_row
    if sheet:
        data["profile"]["sheet"] = sheet
    if children:
        data["children"] = children
    parse_profile(data)  # never save a profile that would not load
    return tomli_w.dumps(data)


def save_profile(toml_text: str, directory: Path | None = None, overwrite: bool = False) -> Path:
    import tomllib as _t

    data = _t.loads(toml_text)
    prof = parse_profile(data)
    directory = Path(directory or get_settings().profiles_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{slugify(prof.name)}.toml"
    # Written whole to a temporary file (not *.toml, so list_profiles never sees it half-written), then put in
    # place in one step: os.link refuses a name that exists, so of two coordinators saving names that slugify
    # alike at the same moment one gets "already exists" instead of silently replacing the other's profile.
    # (os.open with 0o666 rather than mkstemp's 0o600, so the file gets the umask's usual permissions)
    tmp = directory / f".{path.stem}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(toml_text)
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise ProfileError(f"A profile file {path.name} already exists; choose another name.") from None
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:  # moved into place by os.replace
            pass
    return path
