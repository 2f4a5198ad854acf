"""The synthetic extract generator (dv.synthetic): determinism, realism constraints, profile layouts, writers."""
from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
from pathlib import Path

import openpyxl
import pytest

from dv import synthetic
from dv.profiles import load_profile
from dv.synthetic import generate_notifications, rows_for, write_extract, write_rows, write_samples

START = dt.date(2026, 1, 5)
PROFILES = ("niche_wide", "athena_list", "merlin_rows")


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return generate_notifications(400, seed=11, start=START, days=30)


def _notification_headers(profile) -> list[str]:
    return list(profile.columns.values())


# ---------------------------------------------------------------------------------------------- generation


def test_same_seed_same_records_and_other_seed_differs():
    a = generate_notifications(150, seed=3, start=START)
    b = generate_notifications(150, seed=3, start=START)
    c = generate_notifications(150, seed=4, start=START)
    assert a == b
    assert a != c


def test_records_are_canonical_and_consistent(records):
    refs = [r["police_ref"] for r in records]
    assert len(set(refs)) == len(refs)
    crime_refs = [r["crime_ref"] for r in records if r["crime_ref"]]
    assert len(set(crime_refs)) == len(crime_refs)
    dash_ranges = {"standard": range(1, 10), "medium": range(10, 14), "high": range(14, 28)}
    for r in records:
        assert r["classification"] in ("crime", "non_crime")
        if r["classification"] == "crime":
            assert r["crime_ref"] and r["ho_code"]
        else:
            assert r["crime_ref"] is None and r["ho_code"] is None
        if r["risk"] == "not_assessed":
            assert r["dash_score"] is None
        else:
            assert r["dash_score"] in dash_ranges[r["risk"]]
        assert dt.timedelta(0) <= r["reported_at"] - r["incident_at"] <= dt.timedelta(hours=48)
        assert START <= r["incident_at"].date() < START + dt.timedelta(days=30)
        assert 150 <= len(r["circumstances"]) <= 400
        assert r["officer"].split()[0] in ("PC", "DC", "PS")
        assert 0 <= len(r["children"]) <= 4
        for child in r["children"]:
            age_days = (r["incident_at"].date() - child["dob"]).days
            assert 0 <= age_days < 18 * 365.25
            if age_days < 4 * 365:
                assert child["school"] is None
            assert isinstance(child["present"], bool)
        for who in ("victim", "perpetrator"):
            person = r[who]
            assert person["person_id"].startswith("P") and len(person["person_id"]) == 8
            assert person["gender"] in ("Female", "Male")


def test_distribution_repeats_and_children(records):
    n = len(records)
    share_with_children = sum(1 for r in records if r["children"]) / n
    assert 0.45 <= share_with_children <= 0.75
    risks = Counter(r["risk"] for r in records)
    assert set(risks) <= {"high", "medium", "standard", "not_assessed"}
    assert risks["standard"] > risks["high"]
    victims = Counter(r["victim"]["person_id"] for r in records)
    assert sum(c - 1 for c in victims.values()) / n > 0.1  # repeat victims exist
    # The same person id always comes with the same name and date of birth.
    seen: dict[str, tuple] = {}
    for r in records:
        for person in (r["victim"], r["perpetrator"]):
            key = (person["surname"], person["forename"], person["dob"])
            assert seen.setdefault(person["person_id"], key) == key
    assert any(c["dob"] > r["incident_at"].date() - dt.timedelta(days=365) for r in records for c in r["children"])


def test_no_future_dates():
    now = dt.datetime.now()
    # A window reaching past today is cut at now; the default window ends at midnight last night.
    for recs in (generate_notifications(300, seed=1, start=dt.date.today() - dt.timedelta(days=2), days=30),
                 generate_notifications(300, seed=2)):
        for r in recs:
            assert r["incident_at"] <= r["reported_at"] <= now
            for person in [r["victim"], r["perpetrator"], *r["children"]]:
                assert person["dob"] <= r["incident_at"].date()
    with pytest.raises(ValueError):
        generate_notifications(5, start=dt.date.today() + dt.timedelta(days=1))


def test_every_name_is_encodable_in_cp1252():
    pools = (synthetic.FEMALE_FORENAMES, synthetic.MALE_FORENAMES, synthetic.GIRL_FORENAMES,
             synthetic.BOY_FORENAMES, synthetic.SURNAMES, synthetic.STREETS, synthetic.BLOCKS)
    for pool in pools:
        for name in pool:
            name.encode("cp1252")  # raises if not
    assert {"Zoë", "Siân"} <= set(synthetic.FEMALE_FORENAMES)
    assert {"O'Brien", "Smith-Jones", "McDonald", "Nowak", "Okafor", "Begum"} <= set(synthetic.SURNAMES)


# ---------------------------------------------------------------------------------------------- layouts


@pytest.mark.parametrize("name", PROFILES)
def test_rows_for_emits_exactly_the_profiles_headers(records, name):
    profile = load_profile(name)
    header, rows = rows_for(records, profile)
    assert len(header) == len(profile.all_headers())
    assert sorted(header) == sorted(profile.all_headers())
    assert header[:len(profile.columns)] == _notification_headers(profile)
    assert all(len(row) == len(header) for row in rows)
    allowed = (str, int, dt.datetime, dt.date, dt.time, type(None))
    assert all(isinstance(v, allowed) and not isinstance(v, bool) for row in rows for v in row)


def test_niche_wide_layout(records):
    profile = load_profile("niche_wide")
    header, rows = rows_for(records, profile)
    assert len(rows) == len(records)
    col = {h: i for i, h in enumerate(header)}
    spellings = {"high": "High", "medium": "Medium", "standard": "Standard", "not_assessed": "Not assessed"}
    for rec, row in zip(records, rows):
        assert row[col["Occurrence No"]] == rec["police_ref"]
        assert row[col["Victim Name"]] == f"{rec['victim']['surname'].upper()}, {rec['victim']['forename']}"
        assert row[col["DASH Risk"]] == spellings[rec["risk"]]
        assert row[col["Classification"]] == ("Crime" if rec["classification"] == "crime" else "Non-crime")
        assert row[col["Occ Date/Time"]] == rec["incident_at"]
        assert row[col["Strangulation"]] == ("Y" if rec["flag_strangulation"] else "N")
        for k, child in enumerate(rec["children"], 1):
            assert row[col[f"Child {k} Name"]] == f"{child['surname'].upper()}, {child['forename']}"
            assert row[col[f"Child {k} DOB"]] == child["dob"]
            assert row[col[f"Child {k} Present"]] == ("Y" if child["present"] else "N")
        for k in range(len(rec["children"]) + 1, profile.children.max + 1):
            assert row[col[f"Child {k} Name"]] is None


def test_athena_list_layout(records):
    profile = load_profile("athena_list")
    header, rows = rows_for(records, profile)
    assert len(rows) == len(records)
    col = {h: i for i, h in enumerate(header)}
    for rec, row in zip(records, rows):
        assert row[col["Victim Surname"]] == rec["victim"]["surname"]
        assert row[col["Incident Date"]] == rec["incident_at"].date()
        assert row[col["Incident Time"]] == rec["incident_at"].time()
        risk_letters = {"high": "H", "medium": "M", "standard": "S", "not_assessed": "N/A"}
        assert row[col["Risk Level"]] == risk_letters[rec["risk"]]
        assert row[col["Outcome Type"]] == ("Crime Recorded" if rec["classification"] == "crime" else "Non Crime")
        words = {"Pregnant": "flag_pregnancy", "NFS": "flag_strangulation", "Weapon": "flag_weapons"}
        flags = row[col["Risk Flags"]]
        assert set(flags.split("; ") if flags else []) == {w for w, f in words.items() if rec[f]}
        kids = rec["children"]
        if not kids:
            assert row[col["Children Names"]] is None
            continue
        # Every list column has one (possibly empty) entry per child, in the same order.
        parts = {h: row[col[h]].split("; ") for h in ("Children Names", "Children DOBs", "Children Schools",
                                                      "Children Present")}
        assert all(len(p) == len(kids) for p in parts.values())
        assert parts["Children Names"] == [f"{c['forename']} {c['surname']}" for c in kids]
        assert parts["Children DOBs"] == [f"{c['dob']:%d/%m/%Y}" for c in kids]
        assert parts["Children Present"] == ["Y" if c["present"] else "N" for c in kids]


def test_merlin_rows_layout_repeats_the_notification_per_child(records):
    profile = load_profile("merlin_rows")
    header, rows = rows_for(records, profile)
    assert len(rows) == sum(max(1, len(r["children"])) for r in records)
    width = len(profile.columns)
    col = {h: i for i, h in enumerate(header)}
    by_ref: dict[str, list[list]] = {}
    for row in rows:
        by_ref.setdefault(row[col["CRIS/CAD Ref"]], []).append(row)
    for rec in records:
        group = by_ref[rec["police_ref"]]
        assert all(r[:width] == group[0][:width] for r in group)  # notification columns repeated verbatim
        assert group[0][col["Victim"]] == f"{rec['victim']['forename']} {rec['victim']['surname']}"
        if rec["children"]:
            assert [r[col["Child Name"]] for r in group] == [f"{c['forename']} {c['surname']}" for c in rec["children"]]
            assert [r[col["Child DOB"]] for r in group] == [c["dob"] for c in rec["children"]]
        else:
            assert len(group) == 1 and all(v is None for v in group[0][width:])
        if rec["risk"] == "not_assessed":  # the profile has no spelling for it: blank, as the template says
            assert group[0][col["Risk Assessment"]] is None


# ---------------------------------------------------------------------------------------------- writers


def test_write_rows_xlsx_reads_back_with_title_and_totals(tmp_path, records):
    profile = load_profile("niche_wide")
    header, rows = rows_for(records[:25], profile)
    titles = ["Example Police — Domestic Abuse Notifications", "Extract produced 05/02/2026 06:30"]
    path = write_rows(header, rows, tmp_path / "extract.xlsx", sheet="DA Notifications", title_rows=titles)
    wb = openpyxl.load_workbook(path)
    ws = wb["DA Notifications"]
    values = [[c.value for c in row] for row in ws.iter_rows()]
    assert values[0][0] == "Example Police — Domestic Abuse Notifications"
    assert values[1][0] == "Extract produced 05/02/2026 06:30"
    assert all(v is None for v in values[2])
    assert values[3][:len(header)] == header
    assert len(values) == 4 + 25 + 2
    assert all(v is None for v in values[-2])
    assert values[-1][0] == "Total records: 25"
    first = ws.cell(row=5, column=header.index("Occ Date/Time") + 1)
    assert first.is_date and first.value == records[0]["incident_at"]
    assert first.number_format == "dd/mm/yyyy hh:mm"
    dob = ws.cell(row=5, column=header.index("Victim DOB") + 1)
    assert dob.is_date and dob.value.date() == records[0]["victim"]["dob"] and dob.number_format == "dd/mm/yyyy"


def test_write_rows_xlsx_dates_as_text(tmp_path, records):
    header, rows = rows_for(records[:3], load_profile("niche_wide"))
    path = write_rows(header, rows, tmp_path / "text.xlsx", excel_dates=False, title_rows=[], totals_row=False)
    ws = openpyxl.load_workbook(path).active
    assert [c.value for c in ws[1]] == header
    incident = ws.cell(row=2, column=header.index("Occ Date/Time") + 1)
    assert incident.value == f"{records[0]['incident_at']:%d/%m/%Y %H:%M}"
    assert ws.max_row == 4


def test_write_rows_csv_cp1252_reads_back(tmp_path, records):
    recs = [dict(r) for r in records[:20]]
    recs[0] = dict(recs[0], victim=dict(recs[0]["victim"], forename="Zoë", surname="O'Brien"))
    recs[1] = dict(recs[1], victim=dict(recs[1]["victim"], forename="Siân", surname="Smith-Jones"))
    header, rows = rows_for(recs, load_profile("athena_list"))
    path = write_rows(header, rows, tmp_path / "extract.csv", encoding="cp1252",
                      title_rows=["Northshire Constabulary — PPN export", "Extract produced 05/02/2026 06:30"])
    raw = path.read_bytes()
    assert "Zoë".encode("cp1252") in raw and not raw.startswith(b"\xef\xbb\xbf")
    with open(path, encoding="cp1252", newline="") as fh:
        lines = list(csv.reader(fh))
    assert lines[0] == ["Northshire Constabulary — PPN export"]
    assert lines[2] == []
    assert lines[3] == header
    data = lines[4:-2]
    assert len(data) == 20
    assert lines[-2] == [] and lines[-1] == ["Total records: 20"]
    col = {h: i for i, h in enumerate(header)}
    assert data[0][col["Victim Forename"]] == "Zoë" and data[1][col["Victim Forename"]] == "Siân"
    assert data[0][col["Incident Date"]] == f"{recs[0]['incident_at']:%d/%m/%Y}"
    assert data[0][col["Incident Time"]] == f"{recs[0]['incident_at']:%H:%M}"
    assert data[0][col["Victim Date of Birth"]] == f"{recs[0]['victim']['dob']:%d/%m/%Y}"


def test_csv_encoding_is_strict(tmp_path):
    with pytest.raises(UnicodeEncodeError):
        write_rows(["Name"], [["Łukasz"]], tmp_path / "bad.csv", encoding="cp1252", title_rows=[])


def test_write_extract_follows_the_profile(tmp_path, records):
    merlin = write_extract(records[:10], load_profile("merlin_rows"), tmp_path / "merlin.csv", title_rows=[],
                           totals_row=False)
    with open(merlin, encoding="utf-8-sig", newline="") as fh:
        lines = list(csv.reader(fh))
    col = {h: i for i, h in enumerate(lines[0])}
    assert lines[1][col["Incident DateTime"]] == f"{records[0]['incident_at']:%Y-%m-%d %H:%M}"  # its first format
    assert lines[1][col["Victim DOB"]] == f"{records[0]['victim']['dob']:%Y-%m-%d}"
    niche = write_extract(records[:10], load_profile("niche_wide"), tmp_path / "niche.xlsx")
    wb = openpyxl.load_workbook(niche)
    assert wb.sheetnames == ["DA Notifications"]
    assert wb.active["A1"].value == "Example Police — Domestic Abuse Notifications"


def test_write_samples_is_deterministic(tmp_path):
    first = write_samples(tmp_path / "a")
    second = write_samples(tmp_path / "b")
    assert [p.name for p in first] == ["niche_wide_sample.xlsx", "athena_list_sample.csv", "merlin_rows_sample.xlsx"]
    for a, b in zip(first, second):
        if a.suffix == ".csv":
            assert a.read_bytes() == b.read_bytes()
            a.read_bytes().decode("cp1252")
        else:  # xlsx zips carry timestamps; compare what is in the cells
            assert _cells(a) == _cells(b)
    niche = _cells(first[0])
    assert niche[-1][0] == "Total records: 60"
    merlin = _cells(first[2])
    assert merlin[0][0] == "CRIS/CAD Ref" and len({row[0] for row in merlin[1:]}) == 40


def _cells(path: Path) -> list[list]:
    ws = openpyxl.load_workbook(path, read_only=True).active
    return [list(row) for row in ws.iter_rows(values_only=True)]
