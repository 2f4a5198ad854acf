"""The schools directory (issue 6): GIAS import, name normalisation and resolution, remembered spellings, key
adults, the CLI and the Schools page. Every file here is synthetic (dv.gias)."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import select

from core.auth import create_user
from core.models import AuditEvent, UserRole
from core.scope import Refused
from dv.gias import (
    GIAS_COLUMNS,
    generate_gias_records,
    gias_bytes,
    typed_school_samples,
)
from dv.models import KeyAdult, School, SchoolAlias
from dv.reading import FileRejected
from dv.schools import (
    EHE_URN,
    AliasConflict,
    KeyAdultConflict,
    SchoolResolver,
    deactivate_key_adult,
    forget_resolution,
    import_gias,
    is_home_educated,
    key_adult_emails,
    key_adults_due_review,
    list_key_adults,
    list_resolutions,
    normalise,
    remember_resolution,
    save_key_adult,
    school_by_urn,
    search_schools,
)
from tests.factories import count

ROOT = Path(__file__).resolve().parent.parent
HOME = "Northshire"
OTHER = "Southmoor"


def rec(urn, name, la=HOME, status="Open", *, type_="Community school", phase="Primary", low="4", high="11",
        town="Kexley", postcode="NS1 1AA") -> dict:
    return {"URN": str(urn), "LA (name)": la, "EstablishmentName": name, "TypeOfEstablishment (name)": type_,
            "EstablishmentStatus (name)": status, "PhaseOfEducation (name)": phase, "StatutoryLowAge": low,
            "StatutoryHighAge": high, "Street": "1 School Lane", "Town": town, "Postcode": postcode,
            "TelephoneNum": "01632 960000", "HeadFirstName": "Alex", "HeadLastName": "Smith",
            "OpenDate": "01-09-1990", "CloseDate": "31-08-2019" if status == "Closed" else ""}


DIRECTORY = [
    rec(100001, "St Mary's Church of England Primary School", type_="Voluntary aided school"),
    rec(100002, "St Mary's Church of England Primary School", OTHER, town="Southby"),  # same name, another LA
    rec(100003, "Sherwood Academy", type_="Academy converter", phase="Secondary", low="11", high="18"),
    rec(100004, "Sherwood Academy", status="Closed", phase="Secondary", low="11", high="16"),  # its predecessor
    rec(100005, "Brookfield School", status="Closed", phase="Secondary", low="11", high="16"),
    rec(100006, "Brookfield Academy", type_="Academy sponsor led", phase="Secondary", low="11", high="18"),
    rec(100007, "Kexley Junior School", OTHER, low="7"),  # only outside the hub's local authorities
    rec(100008, "Holmewood Primary School"),
    rec(100009, "Ravenswood Infant School", status="Open, but proposed to close", high="7"),
    rec(100010, "St Thérèse of Lisieux Catholic Primary School", type_="Voluntary aided school"),
    rec(100011, "St John's CofE Primary School", town="Kexley"),
    rec(100012, "St John's CofE Primary School", town="Bramley"),  # two open schools of one name in the LA
    rec(100013, "St Anne’s Nursery School", phase="Nursery", low="2", high="5", type_="Local authority nursery school"),
    rec(100014, "Oakley Hall Preparatory School", type_="Other independent school", phase="Not applicable"),
    rec(100015, "Northshire Pupil Referral Unit", type_="Pupil referral unit", phase="Not applicable", low="11",
        high="16"),
]


def gias(records=DIRECTORY, **kw) -> bytes:
    return gias_bytes(records, **kw)


def user(session, username, role=UserRole.coordinator, **kw):
    u = create_user(session, None, username=username, display_name=username.title(), role=role,
                    password="Tidal-Lantern-Orchard-47", **kw)
    session.commit()
    return u


@pytest.fixture
def coord(session):
    return user(session, "coord")


@pytest.fixture
def directory(session, coord):
    result = import_gias(session, coord, gias(), las=[])
    session.commit()
    return result


def audits(session, action=None, entity=None, outcome=None):
    stmt = select(AuditEvent)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if entity:
        stmt = stmt.where(AuditEvent.entity == entity)
    if outcome:
        stmt = stmt.where(AuditEvent.outcome == outcome)
    return list(session.execute(stmt).scalars())


# ---------------------------------------------------------------------------------------------- normalise


@pytest.mark.parametrize("typed", [
    "St Marys CofE Primary", "St. Mary's C of E Primary School", "Saint Marys Church of England Pri Sch",
    "ST MARY'S C.E. PRIMARY", "st mary’s ce prim", "St Mary's Church of England Primary School", "St. Marys C E Pri",
])
def test_the_issues_variants_are_one_key(typed):
    assert normalise(typed) == "saint marys church of england primary"


@pytest.mark.parametrize("raw,key", [
    ("SHERWOOD ACADEMY", "sherwood academy"),  # case
    ("St Thérèse", "saint therese"),  # accents
    ("Zoë's École", "zoes ecole"),
    ("St Mary's", "saint marys"),  # apostrophes deleted, also curly and backtick
    ("St Mary’s", "saint marys"), ("St Mary`s", "saint marys"),
    ("Kexley-on-the-Hill (Junior)", "kexley on the hill junior"),  # other punctuation separates words
    ("St.Mary's", "saint marys"),
    ("St Anne", "saint anne"), ("St. Anne", "saint anne"), ("Saint Anne", "saint anne"),
    ("X C of E", "x church of england"), ("X CofE", "x church of england"), ("X C.E.", "x church of england"),
    ("X CE", "x church of england"), ("X Church of England", "x church of england"),
    ("X RC", "x roman catholic"), ("X R.C.", "x roman catholic"), ("X Roman Catholic", "x roman catholic"),
    ("X Primary", "x primary"), ("X Pri", "x primary"), ("X Prim", "x primary"),
    ("X Sch Y", "x school y"), ("X School Y", "x school y"),
    ("X Junior", "x junior"), ("X Jnr", "x junior"), ("X Juniors", "x junior"),
    ("X Infant", "x infant"), ("X Infants'", "x infant"), ("X Inf", "x infant"),
    ("X Academy", "x academy"), ("X Acad", "x academy"),
    ("X & Y", "x and y"), ("X and Y", "x and y"),
    ("  Sherwood \t  Academy  ", "sherwood academy"),  # spaces collapsed
    ("The Sherwood Academy", "sherwood academy"),  # a leading "the" dropped ...
    ("Kexley Junior School", "kexley junior"), ("Kexley Junior Sch", "kexley junior"),  # ... and a trailing school
    ("The School", "school"), ("School", "school"),  # never the last word
    ("", ""), (None, ""), ("'", ""),
])
def test_each_normalisation_rule(raw, key):
    assert normalise(raw) == key


_NAME_CHARS = st.sampled_from(list("abcdefghijklmnopqrstuvwxyzéèëïôü ") + ["st", "c", "of", "e", "rc", "the ",
                                                                           " school", "pri", "&", "'", "’", ".",
                                                                           "-", ",", "(", ")", "İ", "ß", "ﬁ"])


@hsettings(max_examples=300, deadline=None)
@given(st.lists(_NAME_CHARS, max_size=30).map("".join) | st.text(max_size=40))
def test_normalise_is_idempotent(name):
    once = normalise(name)
    assert normalise(once) == once


@hsettings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZéÉ", min_size=1, max_size=8),
                min_size=1, max_size=6),
       st.lists(st.sampled_from([" ", ". ", ", ", " - ", " (", ") ", "/", "  "]), min_size=6, max_size=6),
       st.booleans())
def test_normalise_ignores_case_and_punctuation(words, separators, upper):
    plain = " ".join(words)
    punctuated = "".join(w + s for w, s in zip(words, separators))
    if upper:
        punctuated = punctuated.upper()
    assert normalise(punctuated) == normalise(plain) == normalise(plain.swapcase())


@pytest.mark.parametrize("typed", ["Home educated", "home ed", "EHE", "E.H.E.", "Elective home education",
                                   "ELECTIVELY HOME EDUCATED", "Home-schooled", "home education (EHE)"])
def test_home_educated_spellings(typed):
    assert is_home_educated(typed)


@pytest.mark.parametrize("typed", ["Home Farm Primary School", "Homewood School", "", "Ehe Academy"])
def test_not_home_educated(typed):
    assert not is_home_educated(typed)


# ---------------------------------------------------------------------------------------------- resolution


def resolver(session, las=(HOME,)):
    return SchoolResolver(session, preferred_las=list(las))


def test_exact_name_in_the_hubs_local_authority_is_certain(session, directory):
    r = resolver(session).resolve("St Marys CofE Primary")
    assert (r.urn, r.certain, r.home_educated) == ("100001", True, False)
    assert r.name == "St Mary's Church of England Primary School"
    assert HOME in r.reason
    for typed in ("Holmewood Primary", "HOLMEWOOD PRI SCH", "holmewood primary school"):
        assert resolver(session).resolve(typed).urn == "100008"
    # "Open, but proposed to close" is still open; nurseries, independents and PRUs are settings too
    assert resolver(session).resolve("Ravenswood Infants").urn == "100009"
    assert resolver(session).resolve("St Anne's Nursery").urn == "100013"
    assert resolver(session).resolve("Oakley Hall Prep School").certain is False  # "Prep" is not a rule: fuzzy
    assert resolver(session).resolve("Northshire PRU").certain is False
    assert resolver(session).resolve("St Therese of Lisieux Catholic Primary").urn == "100010"


def test_the_same_name_only_in_another_local_authority_is_not_certain(session, directory):
    r = resolver(session).resolve("Kexley Junior")
    assert r.urn is None and not r.certain
    assert [(c["urn"], c["la"], c["why"]) for c in r.candidates] == [("100007", OTHER, "other local authority")]
    # With no local authority preferred, the one open school of that name is certain
    assert resolver(session, las=()).resolve("Kexley Junior").urn == "100007"


def test_the_hubs_own_school_wins_over_a_namesake_elsewhere(session, directory):
    assert resolver(session).resolve("St. Mary's C of E Primary School").urn == "100001"
    assert resolver(session, las=(OTHER,)).resolve("St. Mary's C of E Primary School").urn == "100002"
    both = resolver(session, las=()).resolve("St. Mary's C of E Primary School")
    assert both.urn is None and {c["urn"] for c in both.candidates} == {"100001", "100002"}


def test_several_open_schools_of_one_name_are_all_candidates(session, directory):
    r = resolver(session).resolve("St Johns C of E Primary")
    assert r.urn is None and not r.certain
    assert {c["urn"] for c in r.candidates} == {"100011", "100012"}
    assert {c["town"] for c in r.candidates} == {"Kexley", "Bramley"}
    assert "2 open schools" in r.reason


def test_a_closed_school_is_never_chosen_and_its_successor_is_offered(session, directory):
    res = resolver(session)
    same_name = res.resolve("The Sherwood Academy")  # closed predecessor and open academy share the name
    assert (same_name.urn, same_name.certain) == ("100003", True)
    assert "100004" in same_name.reason and "closed" in same_name.reason
    old_name = res.resolve("Brookfield Sch")  # only the closed school has this name
    assert old_name.urn is None and not old_name.certain
    assert old_name.candidates[0]["urn"] == "100006"
    assert old_name.candidates[0]["why"] == "closed school's successor?"
    assert "100005" not in {c["urn"] for c in old_name.candidates}
    assert "closed" in old_name.reason and "100005" in old_name.reason
    # closed schools are never candidates at all
    for typed in ("Sherwood Acadamy", "Brookfield", "Sherwood", "Brookfield School"):
        assert all(c["status"] != "Closed" for c in res.resolve(typed).candidates)


def test_remembered_spelling(session, directory, coord):
    assert resolver(session).resolve("Brookfield Sch").urn is None
    remember_resolution(session, coord, "Brookfield Sch.", "100006")
    session.commit()
    r = resolver(session).resolve("brookfield school")  # the same key
    assert (r.urn, r.certain, r.reason) == ("100006", True, f"remembered spelling ({HOME})")
    [row] = list_resolutions(session, coord)
    assert (row["name_key"], row["urn"], row["created_by"]) == ("brookfield", "100006", "Coord")
    assert audits(session, "change", "school_alias")
    with pytest.raises(ValueError, match="closed"):
        remember_resolution(session, coord, "Old Sherwood", "100004")
    with pytest.raises(ValueError, match="No school"):
        remember_resolution(session, coord, "Nowhere", "999999")
    session.rollback()
    assert forget_resolution(session, coord, "Brookfield School", expected_version=row["version"]) is True
    session.commit()
    assert resolver(session).resolve("Brookfield Sch").urn is None
    assert forget_resolution(session, coord, "Brookfield School", expected_version=row["version"]) is False


def test_a_spelling_changed_by_a_colleague_meanwhile_is_a_conflict(session, directory, coord):
    other = user(session, "other")
    remember_resolution(session, coord, "Holmewood", "100008")
    session.commit()
    [seen] = list_resolutions(session, coord)  # both coordinators are shown version 1
    assert seen["version"] == 1
    # the other re-points it; the first, still looking at version 1, would redirect it again: refused
    remember_resolution(session, other, "Holmewood", "100006", expected_version=seen["version"])
    session.commit()
    with pytest.raises(AliasConflict, match="Brookfield Academy") as info:
        remember_resolution(session, coord, "Holmewood", "100011", expected_version=seen["version"])
    assert (info.value.current["urn"], info.value.current["version"]) == ("100006", 2)
    # "Forget" with the version shown before the colleague's change deletes nothing
    with pytest.raises(AliasConflict):
        forget_resolution(session, coord, "Holmewood", expected_version=seen["version"])
    # remembering a spelling the coordinator saw none for, when a colleague has remembered it since
    with pytest.raises(AliasConflict):
        remember_resolution(session, coord, "Holmewood", "100011")
    session.rollback()
    [now] = list_resolutions(session, coord)
    assert (now["urn"], now["version"]) == ("100006", 2)
    assert forget_resolution(session, coord, "Holmewood", expected_version=2) is True
    session.commit()
    assert list_resolutions(session, coord) == []


def test_a_remembered_school_that_has_since_closed_is_not_chosen(session, directory, coord):
    remember_resolution(session, coord, "Holmewood", "100008")
    session.commit()
    closed = [dict(r, **{"EstablishmentStatus (name)": "Closed"}) if r["URN"] == "100008" else r for r in DIRECTORY]
    import_gias(session, coord, gias(closed), las=[])
    session.commit()
    r = resolver(session).resolve("Holmewood")
    assert r.urn is None and not r.certain and "closed" in r.reason


def test_home_educated_goes_to_the_elective_home_education_officer(session, directory):
    for typed in ("Home educated", "EHE", "home ed", "Elective Home Education"):
        r = resolver(session).resolve(typed)
        assert (r.urn, r.certain, r.home_educated) == (EHE_URN, True, True)


def test_fuzzy_candidates_are_not_certain(session, directory):
    r = resolver(session).resolve("Holmwood Primry")
    assert r.urn is None and not r.certain
    assert r.candidates[0]["urn"] == "100008" and r.candidates[0]["why"].startswith("similar name")
    nothing = resolver(session).resolve("Zzyzx Qwerty College")
    assert nothing.candidates == [] and nothing.reason == "no school matches this name"


@pytest.mark.parametrize("typed", ["", "   ", None, "'"])
def test_blank_is_no_school(session, directory, typed):
    r = resolver(session).resolve(typed)
    assert (r.urn, r.certain, r.home_educated, r.candidates, r.reason) == (None, False, False, [], "no school given")


def test_resolutions_are_cached_but_each_caller_gets_its_own_copy(session, directory):
    res = resolver(session)
    first = res.resolve("St Johns CofE Primary")
    first.candidates.clear()
    assert len(res.resolve("St Johns CofE Primary").candidates) == 2


def test_preferred_local_authorities_default_to_the_setting(session, directory, monkeypatch):
    monkeypatch.setenv("DV_LOCAL_AUTHORITIES", f"{OTHER}")
    assert SchoolResolver(session).resolve("St Marys CofE Primary").urn == "100002"


# ---------------------------------------------------------------------------------------------- GIAS import


def test_import_keeps_open_and_closed_of_the_chosen_local_authority(session, coord):
    result = import_gias(session, coord, gias(), las=[HOME])
    session.commit()
    assert result["encoding"] == "cp1252"
    assert (result["rows_read"], result["kept"], result["created"], result["skipped_other_la"]) == (15, 13, 13, 2)
    assert result["closed_kept"] == 2 and result["errors"] == []
    assert school_by_urn(session, coord, "100002") is None  # another LA
    assert school_by_urn(session, coord, "100009")["is_open"] is True  # Open, but proposed to close
    assert school_by_urn(session, coord, "100009")["status"] == "Open, but proposed to close"
    closed = school_by_urn(session, coord, "100005")
    assert (closed["is_open"], closed["status"]) == (False, "Closed")
    # the cp1252 characters arrive intact
    assert school_by_urn(session, coord, "100010")["name"] == "St Thérèse of Lisieux Catholic Primary School"
    assert school_by_urn(session, coord, "100013")["name"] == "St Anne’s Nursery School"
    stored = session.get(School, "100001")
    assert stored.name_key == "saint marys church of england primary" and stored.low_age == 4
    [event] = audits(session, "import", "school")
    details = json.loads(event.details)
    assert event.username == "coord" and details["counts"]["created"] == 13
    assert details["local_authorities"] == [HOME.casefold()]


def test_local_authorities_default_to_the_setting(session, coord, monkeypatch):
    monkeypatch.setenv("DV_LOCAL_AUTHORITIES", f" {OTHER.upper()} ")
    result = import_gias(session, coord, gias())
    assert (result["kept"], result["skipped_other_la"]) == (2, 13)
    monkeypatch.setenv("DV_LOCAL_AUTHORITIES", "")
    session.rollback()
    assert import_gias(session, coord, gias())["kept"] == 15  # none configured: all


def test_utf8_files_are_read_too(session, coord):
    result = import_gias(session, coord, gias(encoding="utf-8-sig"), las=[])
    assert result["encoding"] == "utf-8-sig"
    assert school_by_urn(session, coord, "100010")["name"] == "St Thérèse of Lisieux Catholic Primary School"


def test_reimport_updates_names_and_status_and_leaves_vanished_schools(session, coord, directory):
    changed = [dict(r) for r in DIRECTORY if r["URN"] != "100015"]
    for r in changed:
        if r["URN"] == "100008":
            r["EstablishmentName"] = "Holmewood Primary Academy"
        if r["URN"] == "100009":
            r["EstablishmentStatus (name)"] = "Closed"
    result = import_gias(session, coord, gias(changed), las=[])
    session.commit()
    assert (result["created"], result["updated"], result["unchanged"]) == (0, 2, 12)
    renamed = session.get(School, "100008")
    session.refresh(renamed)
    assert (renamed.name, renamed.name_key) == ("Holmewood Primary Academy", "holmewood primary academy")
    assert school_by_urn(session, coord, "100009")["is_open"] is False
    assert school_by_urn(session, coord, "100015") is not None  # not in the new file: left as it is
    assert resolver(session).resolve("Holmewood Primary Academy").urn == "100008"
    assert resolver(session).resolve("Ravenswood Infant").urn is None  # now closed: never chosen


def test_missing_columns_are_named_and_nothing_is_written(session, coord):
    columns = tuple(c for c in GIAS_COLUMNS if c not in ("EstablishmentStatus (name)", "StatutoryLowAge"))
    with pytest.raises(FileRejected) as info:
        import_gias(session, coord, gias(columns=columns), las=[])
    assert "'EstablishmentStatus (name)'" in str(info.value) and "'StatutoryLowAge'" in str(info.value)
    session.rollback()
    assert count(session, School) == 1  # only the elective home education officer (migration 0008)
    assert audits(session, "import", "school") == []


@pytest.mark.parametrize("data,message", [
    (b"URN,Name\r\n1,\x81\x8d\r\n", "neither UTF-8 nor Windows-1252"),  # bytes no encoding accepts
    (b"PK\x03\x04rest", "Excel workbook"),
    (b"", "empty"),
    (b"\x00\x01\x02", "not a text"),
])
def test_unreadable_files_are_refused(session, coord, data, message):
    with pytest.raises(FileRejected, match=message):
        import_gias(session, coord, data, las=[])


def test_gias_text_is_decoded_by_the_importers_own_rule(session, coord, monkeypatch):
    # A byte-order mark means UTF-8: a stray non-UTF-8 byte after it is refused, not read as Windows-1252
    # ("ï»¿URN" and a garbled name), as GIAS's own fallback did before it used dv.reading.decode_text.
    data = b"\xef\xbb\xbf" + gias(encoding="utf-8").replace(b"Sherwood", b"Sherw\x92od", 1)
    with pytest.raises(FileRejected, match="neither UTF-8 nor Windows-1252") as info:
        import_gias(session, coord, data, las=[])
    assert "edubasealldata.csv" in str(info.value)
    # UTF-8 without the mark, "Thérèse" and all, but for one stray Windows byte: refused, saying where
    data = gias(encoding="utf-8").replace(b"Sherwood", b"Sherw\x92od", 1)
    with pytest.raises(FileRejected, match=r"neither UTF-8 nor Windows-1252.*0x92 on line \d"):
        import_gias(session, coord, data, las=[])
    calls = []

    def refusing(data, encoding):
        calls.append(encoding)
        raise FileRejected("stray byte")

    monkeypatch.setattr("dv.schools.decode_text", refusing)
    with pytest.raises(FileRejected, match="GIAS download's encoding"):
        import_gias(session, coord, gias(), las=[])
    assert calls == [None]


def test_bad_rows_are_reported_with_row_and_column_and_the_rest_imported(session, coord):
    rows = [rec(200001, "Alpha Primary School"), rec("", "No Urn School"),
            rec(200003, "Gamma Primary School", low="four"), rec("2000x4", "Delta School"),
            rec(200001, "Alpha Again School"), rec(200006, "", status="Open"),
            rec(200007, "Epsilon School", status="")]
    result = import_gias(session, coord, gias(rows), las=[])
    session.commit()
    errors = [(e["row"], e["column"]) for e in result["errors"]]
    assert errors == [(3, "URN"), (4, "StatutoryLowAge"), (5, "URN"), (6, "URN"), (7, "EstablishmentName"),
                      (8, "EstablishmentStatus (name)")]
    assert "row 2" in result["errors"][3]["message"]
    assert result["kept"] == 2
    gamma = school_by_urn(session, coord, "200003")
    assert (gamma["low_age"], gamma["high_age"]) == (None, 11)  # kept, without the age


def test_only_coordinators_and_admins_import(session):
    agency = user(session, "rep", UserRole.agency, agency_id=6)
    with pytest.raises(Refused):
        import_gias(session, agency, gias(), las=[])
    assert count(session, School) == 1
    [refused] = audits(session, outcome="refused")
    assert refused.username == "rep" and "import_schools" in refused.details
    admin = user(session, "adm", UserRole.admin)
    assert import_gias(session, admin, gias(), las=[])["kept"] == 15
    session.commit()


def test_the_cli_job_imports_without_a_user(session):
    result = import_gias(session, None, gias(), las=[], actor="cli:cron")
    session.commit()
    assert result["kept"] == 15
    [event] = audits(session, "import", "school")
    assert event.username == "cli:cron" and event.user_id is None


def test_search_and_scope(session, coord, directory):
    names = [s["name"] for s in search_schools(session, coord, "st marys")]
    assert names == ["St Mary's Church of England Primary School"] * 2
    assert [s["urn"] for s in search_schools(session, coord, "100006")] == ["100006"]
    sherwood = search_schools(session, coord, "Sherwood")
    assert [s["is_open"] for s in sherwood] == [True, False]  # open first
    assert search_schools(session, coord, "  ") == []
    assert search_schools(session, coord, "100%") == []
    school = user(session, "head", UserRole.school, school_urn="100001")
    assert search_schools(session, school, "st marys") == [] and school_by_urn(session, school, "100001") is None


def test_synthetic_file_has_the_real_shape():
    records = generate_gias_records(3000, seed=5)
    names = [r["EstablishmentName"] for r in records]
    header = gias_bytes(records[:1]).decode("cp1252").splitlines()[0].split(",")
    assert len(header) >= 130 and {"URN", "LA (name)", "HeadLastName", "CloseDate"} <= set(header)
    assert len({r["URN"] for r in records}) == 3000
    assert {"Open", "Closed", "Open, but proposed to close"} <= {r["EstablishmentStatus (name)"] for r in records}
    assert any("’" in n or "é" in n for n in names)
    kinds = {r["TypeOfEstablishment (name)"] for r in records}
    assert {"Pupil referral unit", "Further education", "Other independent school",
            "Local authority nursery school", "Academy converter"} <= kinds
    gias_bytes(records).decode("cp1252")  # all of it encodable in Windows-1252
    samples = typed_school_samples([{"name": n} for n in names[:50]], 200, seed=2)
    assert len(samples) == 200 and any(t == "" or not t.strip() for t, _ in samples)


# ---------------------------------------------------------------------------------------------- key adults


REVIEW = dt.date(2027, 9, 1)


def test_key_adults_add_edit_deactivate(session, coord, directory):
    a = save_key_adult(session, coord, urn="100001", name="  Jo   Green ", email="jo.green@stmarys.example.sch.uk",
                       phone="01632 960001", review_date=REVIEW)
    b = save_key_adult(session, coord, urn="100001", name="Sam Hall", email="s.hall@stmarys.example.sch.uk",
                       phone=None, review_date=dt.date(2026, 1, 1))
    session.commit()
    assert (a["name"], a["version"], a["school"]) == ("Jo Green", 1, "St Mary's Church of England Primary School")
    assert [k["name"] for k in list_key_adults(session, coord, "100001")] == ["Jo Green", "Sam Hall"]
    assert key_adult_emails(session.connection(), "100001") == ["jo.green@stmarys.example.sch.uk",
                                                                "s.hall@stmarys.example.sch.uk"]
    changed = save_key_adult(session, coord, urn="100001", name="Jo Green", email="jo.green@stmarys.example.sch.uk",
                             phone="01632 960009", review_date=REVIEW, key_adult_id=a["id"], expected_version=1)
    session.commit()
    assert (changed["phone"], changed["version"]) == ("01632 960009", 2)
    [change] = [e for e in audits(session, "change", "key_adult") if e.entity_id == str(a["id"]) and
                "960009" in e.details]
    assert json.loads(change.details) == {"old": {"phone": "01632 960001"}, "new": {"phone": "01632 960009"}}
    due = key_adults_due_review(session, coord, dt.date(2026, 11, 22))
    assert [k["name"] for k in due] == ["Sam Hall"]
    assert [k["name"] for k in key_adults_due_review(session, coord, dt.date(2027, 8, 1), within_days=31)] == \
        ["Sam Hall", "Jo Green"]
    deactivate_key_adult(session, coord, b["id"], expected_version=1)
    session.commit()
    assert key_adult_emails(session.connection(), "100001") == ["jo.green@stmarys.example.sch.uk"]
    assert [k["name"] for k in list_key_adults(session, coord, "100001")] == ["Jo Green"]
    assert len(list_key_adults(session, coord, "100001", include_inactive=True)) == 2
    assert key_adults_due_review(session, coord, dt.date(2026, 11, 22)) == []


def test_a_stale_edit_is_a_conflict_with_the_current_values(session, coord, directory):
    a = save_key_adult(session, coord, urn="100008", name="Jo Green", email="jo@holmewood.example.sch.uk",
                       phone=None, review_date=REVIEW)
    session.commit()
    save_key_adult(session, coord, urn="100008", name="Jo Green-Smith", email="jo@holmewood.example.sch.uk",
                   phone=None, review_date=REVIEW, key_adult_id=a["id"], expected_version=1)
    session.commit()
    with pytest.raises(KeyAdultConflict) as info:
        save_key_adult(session, coord, urn="100008", name="Jo Green", email="other@holmewood.example.sch.uk",
                       phone=None, review_date=REVIEW, key_adult_id=a["id"], expected_version=1)
    assert info.value.current["name"] == "Jo Green-Smith" and info.value.current["version"] == 2
    with pytest.raises(KeyAdultConflict):
        deactivate_key_adult(session, coord, a["id"], expected_version=1)
    assert session.get(KeyAdult, a["id"]).active is True


@pytest.mark.parametrize("field,value,message", [
    ("email", "not-an-email", "not an email"), ("email", "a@b", "not an email"),
    ("email", "x@example.com\r\nBcc: y@example.com", "not an email"), ("email", "", "email"),
    ("name", "  ", "name"), ("phone", "call me", "telephone"), ("review_date", None, "review"),
    ("urn", "999999", "No school"), ("urn", "100005", "closed"),
])
def test_key_adult_values_are_checked(session, coord, directory, field, value, message):
    values = dict(urn="100001", name="Jo Green", email="jo@example.sch.uk", phone="+44 (0)1632 960000 ext 12",
                  review_date=REVIEW)
    values[field] = value
    with pytest.raises(ValueError, match=message):
        save_key_adult(session, coord, **values)


@pytest.mark.parametrize("role,kw", [(UserRole.agency, {"agency_id": 6}), (UserRole.school, {"school_urn": "100001"}),
                                     (UserRole.admin, {}), (UserRole.manager, {})])
def test_only_coordinators_manage_key_adults_and_spellings(session, coord, directory, role, kw):
    a = save_key_adult(session, coord, urn="100001", name="Jo Green", email="jo@example.sch.uk", phone=None,
                       review_date=REVIEW)
    session.commit()
    other = user(session, "other", role, **kw)
    before = len(audits(session, outcome="refused"))
    with pytest.raises(Refused):
        save_key_adult(session, other, urn="100001", name="Mallory", email="m@example.com", phone=None,
                       review_date=REVIEW)
    with pytest.raises(Refused):
        save_key_adult(session, other, urn="100001", name="Mallory", email="m@example.com", phone=None,
                       review_date=REVIEW, key_adult_id=a["id"], expected_version=1)
    with pytest.raises(Refused):
        deactivate_key_adult(session, other, a["id"], expected_version=1)
    with pytest.raises(Refused):
        remember_resolution(session, other, "Brookfield", "100006")
    with pytest.raises(Refused):
        forget_resolution(session, other, "Brookfield", expected_version=1)
    refusals = audits(session, outcome="refused")
    assert len(refusals) == before + 5 and all(e.username == "other" for e in refusals[before:])
    stored = session.get(KeyAdult, a["id"])
    session.refresh(stored)
    assert (stored.name, stored.active, stored.version) == ("Jo Green", True, 1)
    assert count(session, SchoolAlias) == 0
    if role != UserRole.admin:  # an admin sees the directory and its key adults; nobody else but coordinators
        assert list_key_adults(session, other) == []


def test_a_forged_key_adult_id_is_refused(session, coord, directory):
    with pytest.raises(Refused):
        save_key_adult(session, coord, urn="100001", name="Jo", email="jo@example.sch.uk", phone=None,
                       review_date=REVIEW, key_adult_id=987654, expected_version=1)
    [refused] = audits(session, outcome="refused")
    assert refused.entity == "key_adult" and refused.entity_id == "987654"


# ---------------------------------------------------------------------------------------------- CLI


def dv(*args, db_url: str, env: dict | None = None):
    full_env = {k: v for k, v in os.environ.items() if k != "DV_LOCAL_AUTHORITIES"}
    full_env.update(DATABASE_URL=db_url, **(env or {}))
    return subprocess.run([sys.executable, "-m", "dv", *args], cwd=ROOT, env=full_env, capture_output=True,
                          text=True, timeout=180)


def test_cli_sample_import_resolve(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    sample = tmp_path / "edubasealldata.csv"
    out = dv("schools", "sample", str(sample), "--rows", "400", db_url=url)
    assert out.returncode == 0, out.stderr
    sample.read_bytes().decode("cp1252")
    out = dv("schools", "import", str(sample), "--la", "Nottinghamshire", "--la", "Nottingham", "--json", db_url=url)
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert set(body) >= {"rows_read", "kept", "created", "updated", "closed_kept", "skipped_other_la", "errors"}
    assert body["rows_read"] == 400 and body["kept"] + body["skipped_other_la"] == 400 and body["kept"] > 10
    again = json.loads(dv("schools", "import", str(sample), "--la", "Nottinghamshire", "--la", "Nottingham",
                          "--json", db_url=url).stdout)
    assert (again["created"], again["unchanged"]) == (0, body["kept"])
    out = dv("schools", "resolve", "Sherwood Acad", "--json", db_url=url,
             env={"DV_LOCAL_AUTHORITIES": "Nottinghamshire"})
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["certain"] is True and r["name"] == "Sherwood Academy"
    out = dv("schools", "resolve", "home ed", db_url=url)
    assert out.returncode == 0 and out.stdout.startswith("EHE")
    out = dv("schools", "resolve", "St Marys C of E Pri", db_url=url)  # several, no LA preferred
    assert out.returncode == 0 and out.stdout.startswith("To resolve")


def test_cli_refuses_unreadable_files_and_missing_columns(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"URN,EstablishmentName\r\n1,Alpha\r\n")
    out = dv("schools", "import", str(bad), db_url=url)
    assert out.returncode == 2 and "'LA (name)'" in out.stderr and "'EstablishmentStatus (name)'" in out.stderr
    out = dv("schools", "import", str(tmp_path / "missing.csv"), db_url=url)
    assert out.returncode == 2 and "could not be read" in out.stderr


# ---------------------------------------------------------------------------------------------- page


@pytest.fixture
def app_db(tmp_path, monkeypatch):
    from core.db import get_engine, migrate

    url = f"sqlite:///{tmp_path / 'app.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DV_LOCAL_AUTHORITIES", HOME)
    migrate(url)
    yield url
    get_engine(url).dispose()


def _signed_in(url, username, role, **kw):
    from streamlit.testing.v1 import AppTest

    from core.db import get_engine, session_scope

    with session_scope(get_engine(url)) as s:
        uid = create_user(s, None, username=username, display_name=username.title(), role=role,
                          password="Tidal-Lantern-Orchard-47", **kw).id
    at = AppTest.from_file("../app.py", default_timeout=60)
    now = time.time()
    at.session_state["auth"] = {"user_id": uid, "login_at": now, "last_seen": now}
    return at


def _go_to_schools(at):
    at.run()
    at.switch_page("pages/schools.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Schools and key adults"
    return at


def test_page_coordinator_imports_and_adds_a_key_adult(app_db):
    from core.db import get_engine, session_scope
    from pages.common import md_escape

    at = _go_to_schools(_signed_in(app_db, "coord", UserRole.coordinator))
    at.file_uploader(key="gias_upload").set_value(("edubasealldata.csv", gias(), "text/csv"))
    at.run()
    at.button(key="gias_import").click().run()
    assert not at.exception, at.exception
    assert "13 kept (2 closed), 13 new" in at.success[0].value
    assert [m.value for m in at.metric][:2] == ["13", "13"]
    at.text_input(key="school_search").input("holmewood").run()
    assert at.dataframe[0].value["urn"].tolist() == ["100008"]
    at.selectbox(key="key_adult_school").select("100008").run()
    at.text_input(key="ka_name_100008_new").input("Jo Green")
    at.text_input(key="ka_email_100008_new").input("jo.green@holmewood.example.sch.uk")
    at.text_input(key="ka_phone_100008_new").input("01632 960001")
    at.button[[b.label for b in at.button].index("Add key adult")].click().run()
    assert not at.exception, at.exception
    assert md_escape("Saved Jo Green.") in [s.value for s in at.success]  # escaped: the name is typed text
    assert any(list(df.value.get("email", [])) == ["jo.green@holmewood.example.sch.uk"] for df in at.dataframe)
    with session_scope(get_engine(app_db)) as s:
        assert key_adult_emails(s.connection(), "100008") == ["jo.green@holmewood.example.sch.uk"]


def test_page_admin_imports_but_does_not_manage_key_adults(app_db):
    at = _go_to_schools(_signed_in(app_db, "adm", UserRole.admin))
    assert at.file_uploader(key="gias_upload") is not None
    # the real download (~60 MB) is over the 50 MB the police extract uploader keeps
    assert at.file_uploader(key="gias_upload").proto.max_upload_size_mb == 200
    assert not [s for s in at.subheader if s.value == "Key adults"]


def test_page_forget_with_a_colleagues_change_meanwhile_keeps_theirs(app_db):
    from core.db import get_engine, session_scope

    at = _go_to_schools(_signed_in(app_db, "coord", UserRole.coordinator))
    with session_scope(get_engine(app_db)) as s:
        import_gias(s, None, gias(), las=[])
        robin = create_user(s, None, username="robin", display_name="Robin", role=UserRole.coordinator,
                            password="Tidal-Lantern-Orchard-47")
        remember_resolution(s, robin, "Holmewood", "100008")
    at.run()
    at.selectbox(key="alias_forget").select("holmewood").run()  # shown: Holmewood Primary, version 1
    with session_scope(get_engine(app_db)) as s:  # Robin re-points it meanwhile
        remember_resolution(s, robin, "Holmewood", "100006", expected_version=1)
    at.button(key="alias_forget_button").click().run()
    assert not at.exception, at.exception
    assert any("changed by someone else" in e.value for e in at.error), [e.value for e in at.error]
    with session_scope(get_engine(app_db)) as s:
        assert [(a.name_key, a.school_urn) for a in s.execute(select(SchoolAlias)).scalars()] == [
            ("holmewood", "100006")]


def test_page_shows_a_refused_file_without_writing(app_db):
    at = _go_to_schools(_signed_in(app_db, "coord", UserRole.coordinator))
    at.file_uploader(key="gias_upload").set_value(("x.csv", b"URN,Name\r\n1,**bold**\r\n", "text/csv"))
    at.run()
    at.button(key="gias_import").click().run()
    assert "Nothing was imported" in at.error[0].value and r"'LA \(name\)'" in at.error[0].value
    from core.db import get_engine, session_scope

    with session_scope(get_engine(app_db)) as s:
        assert count(s, School) == 1  # only the elective home education officer


def test_page_the_server_lets_the_gias_download_through_and_the_extract_keeps_its_cap(app_db):
    """Streamlit's server refuses any upload over server.maxUploadSize whatever a widget asks, so the setting must
    admit the GIAS download; the police extract uploader keeps the importer's own cap (DV_MAX_UPLOAD_MB, 50)."""
    import tomllib
    from pathlib import Path

    from dv.schools import MAX_GIAS_BYTES

    config = tomllib.loads((Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] * 2**20 >= MAX_GIAS_BYTES
    at = _signed_in(app_db, "coord", UserRole.coordinator)
    at.run()
    at.switch_page("pages/import_extract.py").run()
    assert not at.exception, at.exception
    assert at.file_uploader(key="extract_upload").proto.max_upload_size_mb == 50
