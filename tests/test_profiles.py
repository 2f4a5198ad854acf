"""Profiles: loading, validation messages, detection from a file's headers, and the builder's save."""
from __future__ import annotations

import io
import tomllib

import openpyxl
import pytest

from dv.import_service import guess_header_row, issues_workbook, preview_rows, suggest_mapping
from dv.importer import ImportResult, RowIssue, detect_profiles
from dv.profiles import ProfileError, list_profiles, load_profile, parse_profile, profile_to_toml, save_profile
from tests.factories import extract, records


def test_shipped_profiles_load_by_stem_name_and_path():
    stems = {p.path.stem for p in list_profiles()}
    assert stems == {"niche_wide", "athena_list", "merlin_rows"}
    by_name = load_profile("Northshire Constabulary - Athena PPN")
    assert by_name.path.stem == "athena_list" and load_profile(str(by_name.path)).name == by_name.name
    assert {p.children.layout for p in list_profiles()} == {"wide", "list", "rows"}


def test_template_is_a_valid_profile():
    data = tomllib.loads(open("data/profiles/TEMPLATE.toml.txt", encoding="utf-8").read())
    assert parse_profile(data).children.layout == "wide"


@pytest.mark.parametrize("data,message", [
    ({"profile": {"name": "x"}, "columns": {}}, "needs \\[profile\\] name and force"),
    ({"profile": {"name": "x", "force": "f"}, "columns": {"police_ref": "A", "incident_at": "B", "victim_name": "C",
                                                         "colour": "D"}}, "Unknown DA Daily field"),
    ({"profile": {"name": "x", "force": "f"}, "columns": {"incident_at": "B", "victim_name": "C"}}, "must map police_ref"),
    ({"profile": {"name": "x", "force": "f"}, "columns": {"police_ref": "A", "incident_at": "B", "victim_name": "C"},
      "values": {"risk": {"severe": ["S"]}}}, "may only map high, medium"),
    ({"profile": {"name": "x", "force": "f"}, "columns": {"police_ref": "A", "incident_at": "B", "victim_name": "C"},
      "children": {"layout": "wide", "name": "Child Name"}}, "needs \\{n\\}"),
])
def test_profile_errors_say_what_is_wrong(data, message):
    with pytest.raises(ProfileError, match=message):
        parse_profile(data)


@pytest.mark.parametrize("stem", ["niche_wide", "athena_list", "merlin_rows"])
def test_detection_picks_the_matching_profile(tmp_path, stem):
    path = extract(tmp_path, stem, records(3))
    matches = detect_profiles(path.read_bytes(), path.name, list_profiles())
    assert matches and matches[0][0].path.stem == stem


def test_builder_suggests_saves_and_the_saved_profile_imports(tmp_path, session):
    path = extract(tmp_path, "niche_wide", records(4))
    rows = preview_rows(path.read_bytes(), path.name, nrows=30)
    header_row = guess_header_row(rows)
    assert header_row == 4
    headers = [h for h in rows[header_row - 1] if h]
    mapping = {f: h for f, h in suggest_mapping(headers).items() if h}
    mapping.update(police_ref="Occurrence No", incident_at="Occ Date/Time", victim_name="Victim Name")
    text = profile_to_toml("Test Force - built", "Test Force", mapping, header_row=header_row)
    saved = save_profile(text, tmp_path / "profiles")
    assert saved.name == "test_force_built.toml"
    with pytest.raises(ProfileError, match="already exists"):
        save_profile(text, tmp_path / "profiles")
    from dv.importer import import_file
    from tests.factories import NOW

    result = import_file(session, path, load_profile(str(saved)), now=NOW)
    assert result.created == 4 and result.errors == []


def test_row_errors_workbook_is_formula_safe():
    result = ImportResult(file="x", profile="p")
    result.errors.append(RowIssue(7, "Victim Name", "=cmd|' /C calc'!A0 is odd", "=REF"))
    book = openpyxl.load_workbook(io.BytesIO(issues_workbook(result)))
    ws = book["Row errors"]
    assert [c.value for c in ws[2]] == [7, "Victim Name", "'=REF", "error", "'=cmd|' /C calc'!A0 is odd"]
