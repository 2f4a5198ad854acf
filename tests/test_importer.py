"""The importer on generated files: each children layout, each defect the issue names, re-import and history.
Runs on SQLite and on the PostgreSQL server the test run starts (the ``session`` fixture)."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import func, select

from core.models import AuditEvent
from dv.importer import import_file
from dv.models import FieldChange, ImportBatch, Notification, NotificationPerson, Person, RowError
from dv.people import prior_incident_counts
from dv.profiles import load_profile
from dv.reading import FileRejected
from tests.factories import NOW, col, count, extract, records


def run(session, path, stem, **kw):
    kw.setdefault("now", NOW)
    result = import_file(session, path, load_profile(stem), actor="test", **kw)
    session.commit()
    return result


@pytest.mark.parametrize("stem", ["niche_wide", "athena_list", "merlin_rows"])
def test_each_children_layout_imports_every_notification(session, tmp_path, stem):
    recs = records(30, seed=3)
    path = extract(tmp_path, stem, recs)
    result = run(session, path, stem)
    profile = load_profile(stem)
    cap = profile.children.max if profile.children.layout == "wide" else 99
    assert result.errors == []
    assert result.created == 30 and result.rejected == 0
    assert result.crime == sum(r["classification"] == "crime" for r in recs)
    assert result.non_crime == 30 - result.crime
    assert result.children == sum(min(len(r["children"]), cap) for r in recs)
    assert count(session, Notification) == 30
    kids = session.exec(select(NotificationPerson).where(NotificationPerson.role == "child")).all()
    assert len(kids) == result.children
    # the school as typed and presence survive every layout
    typed = sorted((c["school"] or "") for r in recs for c in r["children"][:cap])
    assert sorted((k.school_name or "") for k in kids) == typed


def test_title_and_totals_rows_are_not_errors(session, tmp_path):
    path = extract(tmp_path, "niche_wide", records(5), title_rows=["Example Police", "Run 22/11/2026"], totals_row=True)
    result = run(session, path, "niche_wide")
    assert (result.rows_read, result.created, result.rejected, result.errors) == (5, 5, 0, [])


def _bad(header, rows, name, row_index, value):
    rows[row_index][col(header, name)] = value


@pytest.mark.parametrize("column,value,message", [
    ("Occurrence No", None, "Police reference is missing."),
    ("Occ Date/Time", "32/13/2026 10:00", "Incident date '32/13/2026 10:00' is not a date"),
    ("Occ Date/Time", dt.datetime(2026, 11, 23, 9, 0), "Incident date/time 23/11/2026 09:00 is in the future."),
    ("Victim DOB", "yesterday", "Victim's date of birth 'yesterday' is not a date"),
    ("Victim DOB", dt.date(2027, 1, 1), "Victim's date of birth 01/01/2027 is in the future."),
    ("Child 1 DOB", "31/02/2019", "Child's date of birth '31/02/2019' is not a date"),
    ("DASH Risk", "Very high", "Risk 'Very high' is not one of the profile's risk values"),
])
def test_a_bad_cell_rejects_its_row_naming_row_and_column(session, tmp_path, column, value, message):
    recs = records(6, seed=4)
    for r in recs:
        r["children"] = r["children"] or [{"surname": "Test", "forename": "Kid", "dob": dt.date(2018, 5, 1),
                                           "gender": "F", "school": "Hillside Primary", "present": True}]
    path = extract(tmp_path, "niche_wide", recs, mutate=lambda h, rows: _bad(h, rows, column, 2, value))
    result = run(session, path, "niche_wide")
    assert result.rejected == 1 and result.created == 5
    [error] = result.errors
    assert error.row == 4 + 3  # two title rows and a blank row above the header on row 4; the third data row
    assert error.column == column
    assert error.message.startswith(message)
    assert count(session, RowError) == 1
    assert session.exec(select(RowError)).one().row == 7


def test_same_reference_twice_with_different_content_rejects_both_rows(session, tmp_path):
    recs = records(4, seed=5)

    def twice(header, rows):
        changed = list(rows[1])
        changed[col(header, "DASH Risk")] = "High" if changed[col(header, "DASH Risk")] != "High" else "Standard"
        rows.append(changed)

    result = run(session, extract(tmp_path, "niche_wide", recs, mutate=twice), "niche_wide")
    assert result.created == 3 and result.rejected == 2
    assert sorted(e.row for e in result.errors) == [6, 9]
    assert all("rows 6 and 9" in e.message for e in result.errors)


def test_an_exact_repeat_is_a_duplicate_not_an_error(session, tmp_path):
    recs = records(4, seed=6)
    result = run(session, extract(tmp_path, "niche_wide", recs, mutate=lambda h, rows: rows.append(list(rows[0]))),
                 "niche_wide")
    assert (result.created, result.duplicates_in_file, result.rejected, result.errors) == (4, 1, 0, [])


def test_rows_layout_groups_children_and_rejects_conflicting_notification_columns(session, tmp_path):
    recs = [r for r in records(40, seed=7) if len(r["children"]) >= 2][:3]

    def conflict(header, rows):
        rows[0][col(header, "Risk Assessment")] = "High" if rows[0][col(header, "Risk Assessment")] != "High" else "Medium"

    result = run(session, extract(tmp_path, "merlin_rows", recs, mutate=conflict), "merlin_rows")
    assert result.created == 2
    assert result.rejected == len(recs[0]["children"])
    assert result.children == sum(len(r["children"]) for r in recs[1:])


@pytest.mark.parametrize("content,name,expected", [
    (b"", "x.csv", "The file is empty."),
    (b"PK\x03\x04garbage-not-a-zip", "x.xlsx", "corrupt"),
    (b"\x00\x01\x02binary\x00", "x.csv", "not a spreadsheet or CSV"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1rest", "x.xls", "old Excel 97-2003"),
    (b"just some text\nno header here\n", "x.csv", "No header row found"),
])
def test_unreadable_files_write_nothing(session, tmp_path, content, name, expected):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(FileRejected, match=expected):
        import_file(session, path, load_profile("niche_wide"), now=NOW)
    session.rollback()
    assert count(session, Notification) == 0 and count(session, ImportBatch) == 0


def test_missing_required_columns_are_listed(session, tmp_path):
    def drop(header, rows):
        for name in ("Occ Date/Time", "Victim Name"):
            i = col(header, name)
            header[i] = f"Renamed {i}"

    path = extract(tmp_path, "niche_wide", records(3), mutate=drop)
    with pytest.raises(FileRejected) as exc:
        import_file(session, path, load_profile("niche_wide"), now=NOW)
    assert "'Occ Date/Time' (incident_at)" in str(exc.value) and "'Victim Name' (victim_name)" in str(exc.value)
    session.rollback()
    assert count(session, Notification) == 0


def test_cp1252_csv_keeps_accents_and_utf8_with_bom_too(session, tmp_path):
    recs = records(3, seed=8)
    recs[0]["victim"]["forename"] = "Zoë"
    recs[1]["victim"]["surname"] = "Ó Súilleabháin"
    for enc in ("cp1252", "utf-8-sig"):
        path = extract(tmp_path, "athena_list", recs, name=f"a-{enc}.csv", encoding=enc)
        result = run(session, path, "athena_list")
        assert result.errors == []
        assert result.encoding == enc  # a byte-order mark wins over the profile's cp1252
    names = {p.forename for p in session.exec(select(Person)).all()}
    assert "Zoë" in names


def test_default_encoding_detects_utf8_then_cp1252(tmp_path):
    from dv.reading import read_rows

    assert read_rows("Zoë,1\n".encode("utf-8-sig"), "a.csv").encoding == "utf-8-sig"
    assert read_rows("Zoë,1\n".encode("cp1252"), "a.csv").encoding == "cp1252"
    assert read_rows("Zoë,1\n".encode("cp1252"), "a.csv").rows[0][0] == "Zoë"
    with pytest.raises(FileRejected, match="could not be decoded"):
        read_rows(b"\x81\x8d\x8f\x90\xff\xfe", "a.csv")


def test_excel_serial_numbers_and_day_first_text_are_both_dates(session, tmp_path):
    recs = records(3, seed=9)

    def serials(header, rows):
        rows[0][col(header, "Occ Date/Time")] = 46300.75  # 05/10/2026 18:00 as an Excel serial
        rows[1][col(header, "Occ Date/Time")] = "03/04/2026 10:15"  # 3 April, never 4 March
        rows[2][col(header, "Victim DOB")] = "32000"  # a serial typed into a text cell: 11/08/1987

    run(session, extract(tmp_path, "niche_wide", recs, mutate=serials), "niche_wide")
    got = {n.police_ref: n.incident_at for n in session.exec(select(Notification)).all()}
    assert got[recs[0]["police_ref"]] == dt.datetime(2026, 10, 5, 18, 0)
    assert got[recs[1]["police_ref"]] == dt.datetime(2026, 4, 3, 10, 15)
    victim = session.exec(select(NotificationPerson).where(NotificationPerson.role == "victim",
                                                           NotificationPerson.surname == recs[2]["victim"]["surname"].upper())).first()
    assert victim.dob == dt.date(1987, 8, 11)


def test_clock_changes_never_shift_an_incident(session, tmp_path):
    recs = records(2, seed=10)

    def clock(header, rows):
        rows[0][col(header, "Occ Date/Time")] = "25/10/2026 01:30"  # the repeated hour in October
        rows[1][col(header, "Occ Date/Time")] = "29/03/2026 01:30"  # the hour that does not exist in March

    run(session, extract(tmp_path, "niche_wide", recs, mutate=clock, excel_dates=False), "niche_wide")
    got = sorted(n.incident_at for n in session.exec(select(Notification)).all())
    assert got == [dt.datetime(2026, 3, 29, 1, 30), dt.datetime(2026, 10, 25, 1, 30)]


def test_reimporting_the_same_file_changes_nothing(session, tmp_path):
    path = extract(tmp_path, "niche_wide", records(25, seed=11))
    first = run(session, path, "niche_wide")
    before = [(n.id, n.version, n.updated_at_utc) for n in session.exec(select(Notification).order_by(Notification.id))]
    again = run(session, path, "niche_wide")
    assert (again.created, again.updated, again.unchanged) == (0, 0, first.created)
    after = [(n.id, n.version, n.updated_at_utc) for n in session.exec(select(Notification).order_by(Notification.id))]
    assert before == after
    assert count(session, FieldChange) == 0
    assert count(session, Person) == len({p.id for p in session.exec(select(Person))})


def test_reimport_updates_changed_rows_with_history_including_a_stream_move(session, tmp_path):
    recs = records(10, seed=12)
    target = next(r for r in recs if r["classification"] == "non_crime")
    run(session, extract(tmp_path, "niche_wide", recs), "niche_wide")
    target.update(classification="crime", crime_ref="CR/99999/26", ho_code="8N", risk="high", dash_score=15)
    result = run(session, extract(tmp_path, "niche_wide", recs, name="day2.xlsx"), "niche_wide")
    assert (result.created, result.updated, result.unchanged) == (0, 1, 9)
    n = session.exec(select(Notification).where(Notification.police_ref == target["police_ref"])).one()
    assert n.stream == "crime" and n.stream_reason == "crime reference CR/99999/26" and n.version == 2
    changes = {c.field: (c.old_value, c.new_value) for c in session.exec(select(FieldChange))}
    assert changes["stream"] == ("non_crime", "crime")
    assert changes["crime_ref"] == (None, "CR/99999/26")
    assert changes["risk"][1] == "high"
    assert {c.batch_id for c in session.exec(select(FieldChange))} == {result.batch_id}


def test_a_profile_that_does_not_carry_a_field_never_blanks_it(session, tmp_path):
    recs = records(3, seed=13)
    run(session, extract(tmp_path, "niche_wide", recs), "niche_wide")

    def drop_officer(header, rows):
        header[col(header, "OIC")] = "Something else"

    result = run(session, extract(tmp_path, "niche_wide", recs, name="b.xlsx", mutate=drop_officer), "niche_wide")
    assert result.unchanged == 3
    assert any("'OIC' (officer)" in w.message for w in result.warnings)
    assert all(n.officer for n in session.exec(select(Notification)))


def test_people_link_by_name_and_dob_ignoring_case_accents_and_punctuation(session, tmp_path):
    recs = records(2, seed=14, repeat_share=0.0)
    recs[0]["victim"].update(surname="O'Brien", forename="Zoë", dob=dt.date(1990, 2, 1))
    recs[1]["victim"].update(surname="OBRIEN", forename="Zoe", dob=dt.date(1990, 2, 1))
    recs[1]["incident_at"] = recs[0]["incident_at"] + dt.timedelta(days=3)
    run(session, extract(tmp_path, "niche_wide", recs), "niche_wide")
    victims = session.exec(select(Notification.victim_id)).all()
    assert len(set(victims)) == 1
    ids = [n.id for n in session.exec(select(Notification).order_by(Notification.incident_at))]
    assert prior_incident_counts(session, ids) == {ids[0]: 0, ids[1]: 1}


def test_people_without_a_date_of_birth_are_not_linked_by_name_alone(session, tmp_path):
    recs = records(2, seed=15, repeat_share=0.0)
    for r in recs:
        r["victim"].update(surname="Smith", forename="John", dob=None)
    run(session, extract(tmp_path, "niche_wide", recs), "niche_wide")
    assert len(set(session.exec(select(Notification.victim_id)).all())) == 2
    # a re-import keeps each notification's own person instead of creating more
    persons = count(session, Person)
    run(session, extract(tmp_path, "niche_wide", recs, name="again.xlsx"), "niche_wide")
    assert count(session, Person) == persons


def test_people_link_by_police_person_id_when_the_profile_maps_one(session, tmp_path):
    recs = records(2, seed=16, repeat_share=0.0)
    recs[1]["victim"] = dict(recs[0]["victim"], surname="Different-Spelling")
    run(session, extract(tmp_path, "athena_list", recs), "athena_list")
    assert len(set(session.exec(select(Notification.victim_id)).all())) == 1


@pytest.mark.parametrize("crime_ref,ho_code,classification,stream,reason,warned", [
    ("CR/1/26", None, "Non-crime", "crime", "crime reference CR/1/26", True),
    (None, "8N", None, "crime", "Home Office offence code 8N", False),
    (None, None, "Crimed", "crime", "classified 'Crimed'", False),
    (None, None, "Incident", "non_crime", "no crime reference or offence code; classified 'Incident'", False),
    (None, None, None, "non_crime", "no crime reference or offence code", False),
])
def test_stream_rules(session, tmp_path, crime_ref, ho_code, classification, stream, reason, warned):
    recs = records(1, seed=17)

    def set_(header, rows):
        rows[0][col(header, "Crime No")] = crime_ref
        rows[0][col(header, "HO Code")] = ho_code
        rows[0][col(header, "Classification")] = classification
        rows[0][col(header, "Circumstances")] = "The victim said it was a crime."  # free text never decides

    result = run(session, extract(tmp_path, "niche_wide", recs, mutate=set_), "niche_wide")
    n = session.exec(select(Notification)).one()
    assert (n.stream, n.stream_reason) == (stream, reason)
    assert any("crime stream" in w.message for w in result.warnings) == warned


def test_dry_run_writes_nothing_but_counts(session, tmp_path):
    result = run(session, extract(tmp_path, "niche_wide", records(8)), "niche_wide", dry_run=True)
    assert result.created == 8 and result.batch_id is None
    assert count(session, Notification) == 0 and count(session, ImportBatch) == 0


def test_a_failure_while_writing_leaves_nothing_half_written(session, tmp_path, monkeypatch):
    import dv.importer as importer

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(importer, "_links", boom)
    with pytest.raises(RuntimeError):
        import_file(session, extract(tmp_path, "niche_wide", records(5)), load_profile("niche_wide"), now=NOW)
    session.rollback()
    assert count(session, Notification) == 0 and count(session, Person) == 0 and count(session, ImportBatch) == 0


def test_import_is_audited_with_the_batch(session, tmp_path):
    result = run(session, extract(tmp_path, "niche_wide", records(2)), "niche_wide")
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "import")).one()
    assert event.entity_id == str(result.batch_id)


def test_header_row_set_in_the_profile(session, tmp_path):
    from dataclasses import replace

    path = extract(tmp_path, "niche_wide", records(2), title_rows=["A title", "Another"])
    profile = replace(load_profile("niche_wide"), header_row=4)
    result = import_file(session, path, profile, now=NOW)
    assert result.created == 2
    with pytest.raises(FileRejected, match="Required column"):
        import_file(session, path, replace(profile, header_row=2), now=NOW)


# ---------------------------------------------------------------------------------------------- chunked import
# The importer reads the file twice (references first, then notifications in chunks), writes behind on a worker
# thread and holds back rows until whole INSERT statements are full. With chunks of 3 notifications and statements
# of a few rows, a small file crosses every one of those boundaries many times.


@pytest.fixture
def tiny_chunks(monkeypatch):
    import core.db
    import dv.importer

    monkeypatch.setattr(dv.importer, "CHUNK_NOTIFICATIONS", 3)
    monkeypatch.setattr(core.db, "_MAX_PARAMS_PER_INSERT", 64)  # 2 notifications, 5 links, 7 people a statement


def _duplicate_keys(session) -> list:
    return session.exec(select(Person.match_key).where(Person.match_key.is_not(None))
                        .group_by(Person.match_key).having(func.count() > 1)).all()


def test_chunks_link_people_across_chunks_and_write_everything(session, tmp_path, tiny_chunks):
    recs = records(30, seed=21, repeat_share=0.5)  # half the victims come back in later notifications
    result = run(session, extract(tmp_path, "niche_wide", recs), "niche_wide")
    assert (result.created, result.rejected, result.errors) == (30, 0, [])
    assert count(session, Notification) == 30
    assert count(session, NotificationPerson) == sum(2 + min(len(r["children"]), 6) for r in recs)
    assert _duplicate_keys(session) == []  # one person per name and date of birth, whichever chunk they came in
    victims = {r["victim"]["person_id"] for r in recs}
    assert len(victims) < 30 and len(set(session.exec(select(Notification.victim_id)).all())) == len(victims)
    for link in session.exec(select(NotificationPerson)).all():  # every link points at its own person
        person = session.get(Person, link.person_id)
        assert (person.dob, (person.surname or "").casefold()) == (link.dob, (link.surname or "").casefold())
    again = run(session, extract(tmp_path, "niche_wide", recs, name="again.xlsx"), "niche_wide")
    assert (again.created, again.updated, again.unchanged) == (0, 0, 30)


def test_chunks_duplicate_and_conflicting_references_far_apart(session, tmp_path, tiny_chunks):
    recs = records(9, seed=22)

    def repeat_late(header, rows):
        rows.append(list(rows[0]))  # an exact repeat of the first row, four chunks later
        changed = list(rows[1])
        changed[col(header, "DASH Risk")] = "High" if changed[col(header, "DASH Risk")] != "High" else "Standard"
        rows.append(changed)  # the second reference again with different content

    result = run(session, extract(tmp_path, "niche_wide", recs, mutate=repeat_late), "niche_wide")
    assert (result.rows_read, result.created, result.duplicates_in_file, result.rejected) == (11, 8, 1, 2)
    assert sorted(e.row for e in result.errors) == [6, 15]  # header on row 4: data rows 5..15
    assert all("rows 6 and 15" in e.message for e in result.errors)
    assert recs[1]["police_ref"] not in set(session.exec(select(Notification.police_ref)).all())


def test_chunks_total_row_at_a_chunk_edge_is_not_an_error(session, tmp_path, tiny_chunks):
    recs = records(6, seed=23)

    def total_in_the_middle(header, rows):
        rows.insert(2, ["Total records: 2"] + [None] * (len(header) - 1))  # right after the first chunk
        rows.insert(5, [None] * len(header))  # and a blank row

    result = run(session, extract(tmp_path, "niche_wide", recs, mutate=total_in_the_middle, totals_row=True),
                 "niche_wide")
    assert (result.rows_read, result.created, result.rejected, result.errors) == (6, 6, 0, [])


def test_chunks_error_row_in_the_last_chunk(session, tmp_path, tiny_chunks):
    recs = records(7, seed=24)
    path = extract(tmp_path, "niche_wide", recs, mutate=lambda h, rows: _bad(h, rows, "Occ Date/Time", 6, "31/02/2026"))
    result = run(session, path, "niche_wide")
    assert (result.created, result.rejected) == (6, 1)
    [error] = result.errors
    assert (error.row, error.column) == (4 + 7, "Occ Date/Time")
    assert session.exec(select(RowError)).one().row == 11


def test_chunks_rows_layout_notification_rows_far_apart(session, tmp_path, tiny_chunks):
    recs = [r for r in records(60, seed=25) if len(r["children"]) >= 2][:5]

    def split(header, rows):
        rows.append(rows.pop(1))  # the first notification's second child row, moved to the end of the file

    result = run(session, extract(tmp_path, "merlin_rows", recs, mutate=split), "merlin_rows")
    assert (result.created, result.rejected, result.errors) == (5, 0, [])
    assert result.children == sum(len(r["children"]) for r in recs)
    first = session.exec(select(Notification).where(Notification.police_ref == recs[0]["police_ref"])).one()
    kids = session.exec(select(NotificationPerson).where(NotificationPerson.notification_id == first.id,
                                                         NotificationPerson.role == "child")).all()
    assert len(kids) == len(recs[0]["children"])


def test_chunks_reimport_updates_a_late_row_with_history(session, tmp_path, tiny_chunks):
    recs = records(9, seed=26)
    run(session, extract(tmp_path, "niche_wide", recs), "niche_wide")
    recs[-1].update(risk="high", dash_score=20)
    recs[-1]["victim"]["surname"] = "Changed-Name"
    result = run(session, extract(tmp_path, "niche_wide", recs, name="day2.xlsx"), "niche_wide")
    assert (result.created, result.updated, result.unchanged) == (0, 1, 8)
    fields = {c.field for c in session.exec(select(FieldChange))}
    assert {"risk", "dash_score", "victim"} <= fields
    assert _duplicate_keys(session) == []


def test_a_failure_on_the_writer_thread_leaves_nothing_half_written(session, tmp_path, monkeypatch, tiny_chunks):
    import sys

    import dv.importer as importer

    def boom(*a, **k):
        raise RuntimeError("disk full")

    interval = sys.getswitchinterval()
    monkeypatch.setattr(importer, "lookup_people", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        import_file(session, extract(tmp_path, "niche_wide", records(9)), load_profile("niche_wide"), now=NOW)
    session.rollback()
    assert count(session, Notification) == 0 and count(session, Person) == 0 and count(session, ImportBatch) == 0
    assert sys.getswitchinterval() == interval


def test_bulk_insert_converts_values_exactly_as_sqlalchemy_does():
    from sqlalchemy.dialects import sqlite

    from core.db import _convert

    dialect = sqlite.dialect()
    table = Notification.__table__
    samples = {
        "incident_at": [dt.datetime(2026, 11, 21, 23, 15), dt.datetime(2026, 1, 2, 3, 4, 5, 6)],
        "created_at_utc": [dt.datetime(2026, 11, 21, 23, 15)] * 3,
        "flag_weapons": [True, False, None],
        "risk": ["high", "not_assessed", None],
        "stream": ["crime", "non_crime"],
        "dash_score": [1, None],
    }
    for name, values in samples.items():
        proc = table.c[name].type._cached_bind_processor(dialect)
        expected = [None if v is None or proc is None else proc(v) for v in values] if proc else values
        assert list(_convert(tuple(values), table.c[name].type, dialect)) == expected, name
    dob = Person.__table__.c.dob.type
    days = (dt.date(1990, 2, 1), dt.date(2001, 12, 31))
    assert list(_convert(days, dob, dialect)) == [dob._cached_bind_processor(dialect)(d) for d in days]
    with pytest.raises(ValueError):
        _convert(("very high",), table.c.risk.type, dialect)


# ---------------------------------------------------------------------------------------------- alerts at import
# The import makes the Operation Encompass alerts of the notifications it creates from the values it parsed, as it
# writes them (dv.encompass.AlertRows.rows_for); generate_alerts makes them from what the database holds. The two
# must agree to the byte.


def test_alerts_made_while_importing_are_those_generate_alerts_makes(session, tmp_path, tiny_chunks):
    import json

    from sqlalchemy import delete, insert

    from dv import encompass as enc
    from dv.models import EncompassAlert, School
    from dv.schools import normalise
    from tests.factories import unaudited

    schools = [("900001", "St Mary's CofE Primary School", "Northshire", True),
               ("900002", "Hillside Primary School", "Northshire", True),
               ("900003", "Sherwood Academy", "Northshire", True),
               ("900004", "Northtown High School", "Northshire", True),
               ("900005", "Northtown High School", "Southshire", True),  # two of one name: to resolve
               ("900006", "Oakfield Junior School", "Northshire", False)]  # closed: never chosen
    if session.get(School, "EHE") is None:
        schools.append(("EHE", "Elective home education officer (Northshire)", "Northshire", True))
    with unaudited():
        session.execute(insert(School), [
            {"urn": u, "name": n, "name_key": normalise(n), "la_name": la, "status": "Open" if op else "Closed",
             "is_open": op, "type_name": "Academy converter"} for u, n, la, op in schools])
        session.commit()
    recs = records(120, seed=31, repeat_share=0.3)
    with_children = [r for r in recs if r["children"]]
    with_children[0]["children"][0]["school"] = "Home educated"
    with_children[1]["children"][0].update(dob=None, school="Sherwood Acad")  # no date of birth, a setting typed
    with_children[2]["children"][0].update(dob=None, school=None)  # neither: no alert
    result = run(session, extract(tmp_path, "niche_wide", recs), "niche_wide")
    assert result.created == 120 and result.alerts["created"] > 20
    assert {"to_resolve", "home_educated"} <= {k for k, v in result.alerts.items() if v}
    columns = [c for c in EncompassAlert.__table__.c if c.name not in ("id", "created_at_utc")]

    def snapshot():
        rows = session.execute(select(*columns)).all()
        return sorted(tuple(json.loads(v) if c.name in ("disclosed", "candidates") and v else
                            getattr(v, "value", v) for c, v in zip(columns, r)) for r in rows)

    def raw():
        return sorted(session.execute(select(EncompassAlert.child_link_id, EncompassAlert.disclosed,
                                             EncompassAlert.candidates)).all())

    made_while_importing, texts = snapshot(), raw()
    urns = {r[[c.name for c in columns].index("school_urn")] for r in made_while_importing}
    assert {"900001", "EHE", None} <= urns
    session.execute(delete(EncompassAlert))
    ids = session.exec(select(Notification.id)).all()
    counts = enc.generate_alerts(session, ids, actor="test")
    assert counts == result.alerts
    assert snapshot() == made_while_importing
    assert raw() == texts  # the JSON text itself, not only its meaning
    session.rollback()
